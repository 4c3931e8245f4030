"""The run coordinator: what a run means, written once, for every backend.

- `executor`: the interface a backend implements (`Executor`, `Capacity`, `AttemptEnded`,
  `KnownAttempt`): where attempts run, never whether
- `run`: `Coordinator` — deciding each step, gates, retries, parallelism, fail-fast and
  keep-going, `finally`, cancellation, lineage, the report and the progress events
- `preflight`: what every run checks before it starts, and `mlc plan`
- `units`, `waiting`: the coordinator's book-keeping
- `apply_run`: a whole run on an executor, from preflight to report

It imports neither a backend nor the CLI (an import-linter contract says so): a backend
imports it, never the other way round.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from mlc.coordinator.executor import Executor
from mlc.coordinator.preflight import absolute, preflight_run
from mlc.coordinator.run import Coordinator, RunSettings
from mlc.ir.model import IRDocument
from mlc.runtime.report import RunObserver, RunReport, SilentObserver
from mlc.store.base import Store
from mlc.store.leases import RunLease
from mlc.store.lineage import Lineage, new_run_id, open_lineage


def apply_run(
    document: IRDocument,
    executor: Executor,
    *,
    store: Store,
    environ: Mapping[str, str],
    settings: RunSettings,
    observer: RunObserver | None = None,
    run_id: str | None = None,
    resume: Collection[str] | None = None,
) -> RunReport:
    """Runs a document on an executor: preflight (a `PreflightError` means nothing ran), then
    the coordinator to the end.

    `resume` names earlier runs whose attempts the executor may still be running: they are
    adopted, not started again. By default, the runs of the same pipeline on the same target
    and backend that lineage records as never finished (their coordinator was killed)."""
    document = absolute(document)
    run_id = run_id or new_run_id()
    # The run is alive from before its first write (a dataset's snapshot in preflight) until
    # after its end is recorded: `mlc gc` keeps what it uses, `mlc runs` sees it running.
    lease = RunLease(store, run_id)
    lease.acquire()
    try:
        checked = preflight_run(document, store, executor, environ)
        lineage = open_lineage(store)
        try:
            if resume is None:
                resume = unfinished_runs(lineage, document.pipeline.name, settings.target, executor)
            coordinator = Coordinator(
                document,
                run_id=run_id,
                store=store,
                lineage=lineage,
                executor=executor,
                preflight=checked,
                settings=settings,
                observer=observer or SilentObserver(),
            )
            coordinator.resume(list(resume))
            return coordinator.execute()
        finally:
            lineage.close()
    finally:
        lease.release()


def unfinished_runs(
    lineage: Lineage, pipeline: str, target: str, executor: Executor, *, recent: int = 20
) -> list[str]:
    """The ids of the recent runs of a pipeline on this target and backend that never
    finished."""
    return [
        run.run_id
        for run in lineage.list_runs(limit=recent, pipeline=pipeline)
        if run.status in ("running", "interrupted")
        and run.target == target
        and run.backend == executor.backend
    ]


__all__ = ["Coordinator", "RunSettings", "apply_run", "unfinished_runs"]
