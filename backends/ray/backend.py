"""`RayBackend`: runs an IR document on a Ray cluster, this process being the Ray driver.

The run is the coordinator's (`mlc.coordinator`); this backend contributes the Ray executor
(`mlc.backends.ray.executor`). See `docs/ray.md`.
"""

from __future__ import annotations

from mlc.backends.ray.capabilities import DESCRIPTION
from mlc.backends.ray.executor import RayExecutor
from mlc.coordinator.backend import CoordinatedBackend
from mlc.ir.model import IRDocument


class RayBackend(CoordinatedBackend):
    """Runs pipelines as Ray tasks (see the module docstring)."""

    description = DESCRIPTION

    def executor(self, document: IRDocument) -> RayExecutor:
        """Ray tasks on the target's cluster (joined, or started, when a step must run)."""
        return RayExecutor(self.store, document.target)
