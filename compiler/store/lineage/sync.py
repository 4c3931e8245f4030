"""Lineage facts as store records, so machines sharing a remote store share lineage.

Records are create-once, so evolving facts are separate records:

```
records/runs/<run_id>.json                      the run as it started
records/run-ends/<run_id>.json                  {"run_id", "status", "ended_at"}
records/steps/<run_id>.<end ns>.<hash>.json    step executions of a run: one, or the
                                                many a coordinator recorded at once
records/datasets/<digest hex 16>.<hash>.json    a declared dataset and its digest
```

`import_records` reads every record not yet imported into a local `LineageDB`, which then
answers all queries; importing is idempotent and cheap to repeat.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Sequence
from typing import Any, cast

from mlc.store.base import Store
from mlc.store.digest import Digest, hex_of, parse_digest
from mlc.store.errors import RecordExistsError, StoreError, UnreadableRecordError
from mlc.store.lineage.db import LineageDB
from mlc.store.lineage.model import (
    Dataset,
    Output,
    Run,
    RunStatus,
    StepExecution,
    StepStatus,
)

RUNS = "runs"
RUN_ENDS = "run-ends"
STEPS = "steps"
DATASETS = "datasets"


def _short_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def _put(store: Store, kind: str, key: str, document: dict[str, Any]) -> None:
    # The same fact may already be there (a retry): records are create-once.
    with contextlib.suppress(RecordExistsError):
        store.put_record(kind, key, document)


def export_run(store: Store, run: Run) -> None:
    """Writes the run-start record."""
    _put(store, RUNS, run.run_id, run.to_json())


def export_run_end(store: Store, run_id: str, status: RunStatus, ended_at: float) -> None:
    """Writes the run-end record."""
    _put(store, RUN_ENDS, run_id, {"run_id": run_id, "status": status, "ended_at": ended_at})


def export_steps(store: Store, steps: Sequence[StepExecution]) -> None:
    """Writes step executions as one record per run (a request per batch, not per step: a
    coordinator records the steps that ended in the last moment together). Keys sort by the
    batch's last end, so a step recorded again later (a resumed run) is imported after."""
    by_run: dict[str, list[StepExecution]] = {}
    for step in steps:
        by_run.setdefault(step.run_id, []).append(step)
    for run_id, batch in by_run.items():
        ends = [step.ended_at for step in batch if step.ended_at is not None]
        ended = f"{int(max(ends) * 1e9):019d}" if ends else "x"
        names = "\0".join(f"{step.step_id}\0{step.ended_at}" for step in batch)
        key = f"{run_id}.{ended}.{_short_hash(names)}"
        documents = [step.to_json() for step in batch]
        _put(store, STEPS, key, documents[0] if len(documents) == 1 else {"steps": documents})


def export_dataset(store: Store, dataset: Dataset) -> None:
    """Writes one dataset record."""
    key = f"{hex_of(dataset.digest)[:16]}.{_short_hash(dataset.name + chr(0) + dataset.uri)}"
    _put(store, DATASETS, key, dataset.to_json())


def import_records(db: LineageDB, store: Store) -> int:
    """Imports every lineage record of `store` not yet in `db`; returns how many were new."""
    imported = 0
    # Runs first, then steps (a resumed step replaces an older one: keys sort by end time),
    # then run ends, which update runs.
    for kind in (RUNS, DATASETS, STEPS, RUN_ENDS):
        for key in store.list_records(kind):
            if db.is_imported(kind, key):
                continue
            try:
                document = store.get_record(kind, key)
            except UnreadableRecordError:
                continue  # cut short by a power loss where it was written: a fact lost
            try:
                _apply(db, kind, document)
            except (KeyError, TypeError, ValueError) as exc:
                raise StoreError(f"lineage record {kind}/{key} is malformed: {exc}") from None
            db.mark_imported(kind, key)
            imported += 1
    return imported


def _apply(db: LineageDB, kind: str, doc: dict[str, Any]) -> None:
    if kind == RUNS:
        db.start_run(
            Run(
                run_id=doc["run_id"],
                pipeline=doc["pipeline"],
                spec_path=doc.get("spec_path", ""),
                target=doc.get("target", ""),
                backend=doc.get("backend", ""),
                host=doc.get("host", ""),
                user=doc.get("user", ""),
                git_commit=doc.get("git_commit"),
                git_dirty=doc.get("git_dirty"),
                params=dict(doc.get("params", {})),
                started_at=float(doc["started_at"]),
                ended_at=doc.get("ended_at"),
                status=cast(RunStatus, doc.get("status", "running")),
            )
        )
    elif kind == RUN_ENDS:
        db.finish_run(doc["run_id"], cast(RunStatus, doc["status"]), float(doc["ended_at"]))
    elif kind == STEPS:
        db.record_steps([_step_of(one) for one in doc.get("steps", [doc])])
    elif kind == DATASETS:
        db.record_dataset(
            Dataset(
                Digest(parse_digest(doc["digest"])),
                doc["name"],
                doc.get("uri", ""),
                doc.get("kind", "file"),
            )
        )


def _step_of(doc: dict[str, Any]) -> StepExecution:
    return StepExecution(
        run_id=doc["run_id"],
        step_id=doc["step_id"],
        status=cast(StepStatus, doc["status"]),
        cache_key=doc.get("cache_key", ""),
        attempts=int(doc.get("attempts", 1)),
        exit_code=doc.get("exit_code"),
        started_at=doc.get("started_at"),
        ended_at=doc.get("ended_at"),
        host=doc.get("host", ""),
        image=doc.get("image", ""),
        log_ref=doc.get("log_ref", ""),
        error=doc.get("error"),
        params=dict(doc.get("params") or {}),
        code={str(k): str(v) for k, v in dict(doc.get("code") or {}).items()},
        inputs={n: parse_digest(d) for n, d in doc.get("inputs", {}).items()},
        outputs={
            n: Output(parse_digest(o["digest"]), o.get("kind", "file"))
            for n, o in doc.get("outputs", {}).items()
        },
    )
