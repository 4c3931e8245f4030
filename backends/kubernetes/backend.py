"""`KubernetesBackend`: runs an IR document as Kubernetes Jobs, coordinated from here.

The run is the coordinator's (`mlc.coordinator`), on the machine that runs `mlc apply`; this
backend contributes the Kubernetes executor (`mlc.backends.kubernetes.executor`). See
`docs/kubernetes.md`.
"""

from __future__ import annotations

from mlc.backends.kubernetes.capabilities import DESCRIPTION
from mlc.backends.kubernetes.executor import KubernetesExecutor
from mlc.coordinator.backend import CoordinatedBackend
from mlc.ir.model import IRDocument


class KubernetesBackend(CoordinatedBackend):
    """Runs pipelines as Kubernetes Jobs (see the module docstring)."""

    description = DESCRIPTION

    def executor(self, document: IRDocument) -> KubernetesExecutor:
        """Jobs in the target's namespace (the cluster is contacted when a step must run)."""
        return KubernetesExecutor(self.store, document.target, document.base_dir)
