"""`KubernetesBackend`: runs an IR document as Kubernetes Jobs, coordinated from here.

The run is the coordinator's (`mlc.coordinator`), on the machine that runs `mlc apply`; this
backend contributes the Kubernetes executor (`mlc.backends.kubernetes.executor`). See
`docs/kubernetes.md`.
"""

from __future__ import annotations

from collections.abc import Collection

from mlc.backends.kubernetes.api import KubeApi, KubeError
from mlc.backends.kubernetes.capabilities import DESCRIPTION
from mlc.backends.kubernetes.dry_run import dry_run, store_text
from mlc.backends.kubernetes.executor import KubernetesExecutor, pod_store_address
from mlc.coordinator.backend import CoordinatedBackend
from mlc.ir.model import IRDocument
from mlc.runtime.errors import PreflightError
from mlc.runtime.plan import Plan


class KubernetesBackend(CoordinatedBackend):
    """Runs pipelines as Kubernetes Jobs (see the module docstring)."""

    description = DESCRIPTION

    def executor(self, document: IRDocument) -> KubernetesExecutor:
        """Jobs in the target's namespace (the cluster is contacted when a step must run)."""
        return KubernetesExecutor(self.store, document.target, document.base_dir)

    def plan(self, document: IRDocument, *, rerun: Collection[str] = ()) -> Plan:
        """What `apply` would do, and the API server's verdict on each step's Job (a server-side
        dry run of each distinct pod template: refusals fail the plan at the step's line)."""
        made = super().plan(document, rerun=rerun)
        executor = self.executor(document)
        try:
            api = KubeApi(executor.settings)
        except (KubeError, ValueError) as exc:
            made.warnings.append(f"the Jobs were not checked by the cluster: {exc}")
            return made
        try:
            verdicts = dry_run(
                api, document, executor.settings, store_text(pod_store_address(self.store))
            )
        except KubeError as exc:
            made.warnings.append(f"the Jobs were not checked by the cluster: {exc}")
            return made
        finally:
            api.close()
        if verdicts.problems:
            raise PreflightError("\n".join(verdicts.problems))
        made.warnings += verdicts.warnings
        return made
