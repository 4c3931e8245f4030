"""`RayBackend`: runs an IR document on a Ray cluster, this process being the Ray driver.

The run is the coordinator's (`mlc.coordinator`); this backend contributes the Ray executor
(`mlc.backends.ray.executor`). For a Jobs API address the coordinator runs on the cluster, as
the driver of one Ray Job (`mlc.backends.ray.jobs`). See `docs/ray.md`.
"""

from __future__ import annotations

from collections.abc import Collection

from mlc.backends.ray.capabilities import DESCRIPTION
from mlc.backends.ray.executor import RayExecutor
from mlc.backends.ray.jobs import JobRun, is_jobs_address
from mlc.coordinator.backend import CoordinatedBackend
from mlc.ir.model import IRDocument
from mlc.runtime.report import RunObserver, RunReport, SilentObserver
from mlc.store.lineage import new_run_id


class RayBackend(CoordinatedBackend):
    """Runs pipelines as Ray tasks (see the module docstring)."""

    description = DESCRIPTION

    def executor(self, document: IRDocument) -> RayExecutor:
        """Ray tasks on the target's cluster (joined, or started, when a step must run)."""
        return RayExecutor(self.store, document.target)

    def apply(
        self,
        document: IRDocument,
        *,
        rerun: Collection[str] = (),
        keep_going: bool = False,
        observer: RunObserver | None = None,
        run_id: str | None = None,
        detach: bool = False,
    ) -> RunReport:
        """Drives the run from here, or, for a Jobs API address, submits it as a Ray Job
        whose driver runs on the cluster (`detach`: without waiting for it)."""
        target = document.target
        if target is None or not is_jobs_address(target.address):
            return super().apply(
                document,
                rerun=rerun,
                keep_going=keep_going,
                observer=observer,
                run_id=run_id,
                detach=detach,
            )
        return JobRun(self.store, document, kill_grace_seconds=self.kill_grace(document)).apply(
            run_id=run_id or new_run_id(),
            rerun=rerun,
            keep_going=keep_going,
            observer=observer or SilentObserver(),
            detach=detach,
        )
