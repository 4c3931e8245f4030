"""`Lineage`: the lineage of one store, the object backends and the CLI use.

Facts always go into the SQLite database (`lineage.sqlite` in the store root for a local store,
in the store's local cache directory for a remote one). For a remote store they are also
written as records into the store, and `sync()` imports the records other machines wrote, so
every machine sharing the store can answer the same queries.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from mlc.store import layout
from mlc.store.base import Store
from mlc.store.digest import Digest
from mlc.store.lineage import sync as records
from mlc.store.lineage.db import LineageDB
from mlc.store.lineage.model import Dataset, ProvenanceNode, Run, RunStatus, StepExecution
from mlc.store.lineage.provenance import provenance, step_provenance


class Lineage:
    """Records and queries runs, step executions and datasets for one store."""

    def __init__(
        self, store: Store, db_path: str | None = None, *, write_records: bool | None = None
    ) -> None:
        self.store = store
        if db_path is None:
            os.makedirs(store.local_dir, exist_ok=True)
            db_path = os.path.join(store.local_dir, layout.LINEAGE_DB)
        self.db = LineageDB(db_path)
        self.write_records = store.is_remote if write_records is None else write_records

    def start_run(self, run: Run) -> None:
        """Records the start of a run."""
        self.db.start_run(run)
        if self.write_records:
            records.export_run(self.store, run)

    def finish_run(self, run_id: str, status: RunStatus, ended_at: float) -> None:
        """Records the end of a run."""
        self.db.finish_run(run_id, status, ended_at)
        if self.write_records:
            records.export_run_end(self.store, run_id, status, ended_at)

    def record_step(self, step: StepExecution) -> None:
        """Records a finished step execution (ran, cached, failed, skipped or cancelled)."""
        self.record_steps([step])

    def record_steps(self, steps: Sequence[StepExecution]) -> None:
        """Records several finished step executions at once (one database transaction)."""
        self.db.record_steps(steps)
        if self.write_records:
            records.export_steps(self.store, steps)

    def record_dataset(self, dataset: Dataset) -> None:
        """Records a declared dataset and the digest it is pinned to."""
        self.db.record_dataset(dataset)
        if self.write_records:
            records.export_dataset(self.store, dataset)

    def sync(self) -> int:
        """Imports records written by other machines (remote stores); returns how many."""
        if not self.write_records:
            return 0
        return records.import_records(self.db, self.store)

    def list_runs(self, limit: int | None = 20, pipeline: str | None = None) -> list[Run]:
        """Runs, newest first."""
        return self.db.list_runs(limit, pipeline)

    def find_run(self, run_id_or_prefix: str) -> Run:
        """A run by id or unique prefix."""
        return self.db.find_run(run_id_or_prefix)

    def steps_of(self, run_id: str) -> list[StepExecution]:
        """The step executions of a run."""
        return self.db.steps_of(run_id)

    def last_success(
        self, pipeline: str, step_id: str, *, exclude_run: str | None = None
    ) -> StepExecution | None:
        """The latest execution of a step that ran or was a cache hit (see `LineageDB`)."""
        return self.db.last_success(pipeline, step_id, exclude_run=exclude_run)

    def get_step(self, run_id: str, step_id: str) -> StepExecution:
        """One step execution of a run."""
        return self.db.get_step(run_id, step_id)

    def producers_of(self, digest: Digest) -> list[tuple[StepExecution, str]]:
        """Which step executions produced a digest, and under which output name."""
        return self.db.producers_of(digest)

    def output_of(self, run_id: str, step_id: str, output: str) -> Digest:
        """The digest of `RUN:STEP.OUTPUT`."""
        return self.db.output_of(run_id, step_id, output)

    def complete_digest(self, prefix: str) -> Digest:
        """The one recorded digest starting with `prefix`."""
        return self.db.complete_digest(prefix)

    def provenance(self, digest: Digest) -> ProvenanceNode:
        """The provenance tree of a digest."""
        return provenance(self.db, digest)

    def step_provenance(self, step: StepExecution, output: str) -> ProvenanceNode:
        """The provenance tree of one output of a step execution, as its run saw it."""
        return step_provenance(self.db, step, output)

    def recent_digests(self, runs_per_pipeline: int) -> set[Digest]:
        """GC roots: outputs, inputs and stored logs of the latest runs of each pipeline."""
        return self.db.recent_digests(runs_per_pipeline)

    def close(self) -> None:
        """Closes the database."""
        self.db.close()


def open_lineage(store: Store, db_path: str | None = None) -> Lineage:
    """The lineage of a store (imports nothing yet; call `sync()` to read remote records)."""
    return Lineage(store, db_path)
