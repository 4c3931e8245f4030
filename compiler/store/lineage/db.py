"""The lineage database: runs, step executions and datasets in SQLite (WAL, multi-process safe).

```
runs(run_id PK, pipeline, spec_path, target, backend, host, user, git_commit, git_dirty,
     params JSON, started_at, ended_at, status)
step_executions(run_id, step_id, status, cache_key, attempts, exit_code, started_at,
                ended_at, host, image, log_ref, error,
                params JSON, code JSON)                    PK (run_id, step_id)
step_inputs(run_id, step_id, name, digest)                 PK (run_id, step_id, name)
step_outputs(run_id, step_id, name, digest, kind)          PK (run_id, step_id, name)
datasets(digest, name, uri, kind)                          PK (digest, name, uri)
imported_records(kind, key)                                records already imported
```

Times are seconds since the epoch (floats). Recording a step execution again for the same run
and step (a resumed run) replaces the earlier one.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
import urllib.parse
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, cast

from mlc.store.digest import Digest, parse_digest
from mlc.store.errors import StoreError
from mlc.store.io_errors import describe_sqlite_error
from mlc.store.lineage.model import (
    RUN_STATUSES,
    STEP_STATUSES,
    Dataset,
    Output,
    Run,
    RunStatus,
    StepExecution,
    StepStatus,
)
from mlc.store.statcache import connect_sqlite

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY, pipeline TEXT NOT NULL, spec_path TEXT NOT NULL,
    target TEXT NOT NULL, backend TEXT NOT NULL, host TEXT NOT NULL, user TEXT NOT NULL,
    git_commit TEXT, git_dirty INTEGER, params TEXT NOT NULL,
    started_at REAL NOT NULL, ended_at REAL, status TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_by_pipeline ON runs (pipeline, started_at);
CREATE TABLE IF NOT EXISTS step_executions (
    run_id TEXT NOT NULL, step_id TEXT NOT NULL, status TEXT NOT NULL,
    cache_key TEXT NOT NULL, attempts INTEGER NOT NULL, exit_code INTEGER,
    started_at REAL, ended_at REAL, host TEXT NOT NULL, image TEXT NOT NULL,
    log_ref TEXT NOT NULL, error TEXT, params TEXT, code TEXT,
    PRIMARY KEY (run_id, step_id)
);
CREATE INDEX IF NOT EXISTS steps_by_step ON step_executions (step_id);
CREATE TABLE IF NOT EXISTS step_inputs (
    run_id TEXT NOT NULL, step_id TEXT NOT NULL, name TEXT NOT NULL, digest TEXT NOT NULL,
    PRIMARY KEY (run_id, step_id, name)
);
CREATE TABLE IF NOT EXISTS step_outputs (
    run_id TEXT NOT NULL, step_id TEXT NOT NULL, name TEXT NOT NULL, digest TEXT NOT NULL,
    kind TEXT NOT NULL,
    PRIMARY KEY (run_id, step_id, name)
);
CREATE INDEX IF NOT EXISTS outputs_by_digest ON step_outputs (digest);
CREATE TABLE IF NOT EXISTS datasets (
    digest TEXT NOT NULL, name TEXT NOT NULL, uri TEXT NOT NULL, kind TEXT NOT NULL,
    PRIMARY KEY (digest, name, uri)
);
CREATE TABLE IF NOT EXISTS imported_records (
    kind TEXT NOT NULL, key TEXT NOT NULL, PRIMARY KEY (kind, key)
);
"""

_TABLES = frozenset(
    (
        "meta",
        "runs",
        "step_executions",
        "step_inputs",
        "step_outputs",
        "datasets",
        "imported_records",
    )
)

_ADDED_COLUMNS = {"error": "TEXT", "params": "TEXT", "code": "TEXT"}
"""Columns of `step_executions` that a database written by an earlier mlc gains when opened."""

_STEP_COLUMNS = (
    "run_id, step_id, status, cache_key, attempts, exit_code, started_at, ended_at, host, "
    "image, log_ref, error, params, code"
)


class LineageError(StoreError):
    """A lineage query could not be answered (unknown run, ambiguous prefix, ...)."""


class LineageDB:
    """Runs and step executions in one SQLite file; safe for concurrent processes."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._lock = threading.RLock()
        try:
            self._db = connect_sqlite(path)
        except sqlite3.Error as exc:
            self._db = _open_to_read(path, exc)
        if self._schema_current():
            return  # nothing to write: a full or read-only disk can still be read
        with self.transaction() as db:
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    db.execute(statement)
            db.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)",
                (str(SCHEMA_VERSION),),
            )
            _add_missing_columns(db)

    def _schema_current(self) -> bool:
        """True when the database already has every table and column of this mlc."""
        try:
            tables = {
                row[0]
                for row in self._db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            }
            columns = {row[1] for row in self._db.execute("PRAGMA table_info(step_executions)")}
        except sqlite3.Error:
            return False
        return tables >= _TABLES and columns >= _ADDED_COLUMNS.keys()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """An immediate (write-locking) transaction, committed on success. A database that
        cannot be written (a full disk, a read-only one) is a `LineageError` naming it."""
        with self._lock, self._errors("write"):
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    @contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            raise LineageError(
                f"cannot {doing} the lineage database {self.path}: {describe_sqlite_error(exc)}"
            ) from None

    def close(self) -> None:
        """Closes the connection."""
        with self._lock:
            self._db.close()

    # ------------------------------------------------------------------ writing

    def start_run(self, run: Run) -> None:
        """Records a run (normally with status `running`)."""
        _check_status(run.status, RUN_STATUSES, "run")
        with self.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    run.run_id,
                    run.pipeline,
                    run.spec_path,
                    run.target,
                    run.backend,
                    run.host,
                    run.user,
                    run.git_commit,
                    None if run.git_dirty is None else int(run.git_dirty),
                    json.dumps(run.params, sort_keys=True),
                    run.started_at,
                    run.ended_at,
                    run.status,
                ),
            )

    def finish_run(self, run_id: str, status: RunStatus, ended_at: float) -> None:
        """Sets the final status and end time of a run."""
        _check_status(status, RUN_STATUSES, "run")
        with self.transaction() as db:
            updated = db.execute(
                "UPDATE runs SET status = ?, ended_at = ? WHERE run_id = ?",
                (status, ended_at, run_id),
            ).rowcount
        if not updated:
            raise LineageError(f"no run `{run_id}` to finish")

    def record_step(self, step: StepExecution) -> None:
        """Records (or replaces) one step execution with its input and output digests."""
        self.record_steps([step])

    def record_steps(self, steps: Sequence[StepExecution]) -> None:
        """Records (or replaces) step executions, all in one transaction."""
        for step in steps:
            _check_status(step.status, STEP_STATUSES, "step")
            for digest in [*step.inputs.values(), *(o.digest for o in step.outputs.values())]:
                parse_digest(digest)
        with self.transaction() as db:
            for step in steps:
                _insert_step(db, step)

    def record_dataset(self, dataset: Dataset) -> None:
        """Records a declared dataset (name, URI) with its pinned digest."""
        parse_digest(dataset.digest)
        with self.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO datasets VALUES (?, ?, ?, ?)",
                (dataset.digest, dataset.name, dataset.uri, dataset.kind),
            )

    # ------------------------------------------------------------------ queries

    def _query(self, sql: str, params: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock, self._errors("read"):
            return self._db.execute(sql, tuple(params)).fetchall()

    def list_runs(self, limit: int | None = 20, pipeline: str | None = None) -> list[Run]:
        """Runs, newest first."""
        sql = "SELECT * FROM runs"
        params: list[Any] = []
        if pipeline is not None:
            sql += " WHERE pipeline = ?"
            params.append(pipeline)
        sql += " ORDER BY started_at DESC, run_id DESC"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        return [_run_of(row) for row in self._query(sql, params)]

    def find_run(self, run_id_or_prefix: str) -> Run:
        """The run with this id, or the only run whose id starts with it."""
        rows = self._query("SELECT * FROM runs WHERE run_id = ?", [run_id_or_prefix])
        if not rows:
            pattern = run_id_or_prefix.replace("\\", "\\\\").replace("%", "\\%")
            pattern = pattern.replace("_", "\\_") + "%"
            rows = self._query(
                "SELECT * FROM runs WHERE run_id LIKE ? ESCAPE '\\' ORDER BY run_id LIMIT 6",
                [pattern],
            )
        if not rows:
            raise LineageError(f"no run `{run_id_or_prefix}` (see `mlc runs`)")
        if len(rows) > 1:
            names = ", ".join(f"`{r[0]}`" for r in rows[:5])
            raise LineageError(f"run `{run_id_or_prefix}` is ambiguous: it matches {names}")
        return _run_of(rows[0])

    def steps_of(self, run_id: str) -> list[StepExecution]:
        """Every step execution of a run, in start order."""
        rows = self._query(
            f"SELECT {_STEP_COLUMNS} FROM step_executions WHERE run_id = ?"
            " ORDER BY started_at IS NULL, started_at, step_id",
            [run_id],
        )
        return [self._step_of(row) for row in rows]

    def last_success(
        self, pipeline: str, step_id: str, *, exclude_run: str | None = None
    ) -> StepExecution | None:
        """The latest execution of a step of a pipeline that ran or was a cache hit, in any
        run but `exclude_run`."""
        columns = ", ".join(f"s.{c.strip()}" for c in _STEP_COLUMNS.split(","))
        rows = self._query(
            f"SELECT {columns} FROM step_executions s JOIN runs r ON r.run_id = s.run_id"
            " WHERE s.step_id = ? AND r.pipeline = ? AND s.status IN ('ran', 'cached')"
            " AND s.run_id != ? ORDER BY r.started_at DESC LIMIT 1",
            [step_id, pipeline, exclude_run or ""],
        )
        return self._step_of(rows[0]) if rows else None

    def get_step(self, run_id: str, step_id: str) -> StepExecution:
        """One step execution; `LineageError` if it was not recorded."""
        rows = self._query(
            f"SELECT {_STEP_COLUMNS} FROM step_executions WHERE run_id = ? AND step_id = ?",
            [run_id, step_id],
        )
        if not rows:
            raise LineageError(f"run `{run_id}` has no step `{step_id}`")
        return self._step_of(rows[0])

    def _step_of(self, row: tuple[Any, ...]) -> StepExecution:
        key = [row[0], row[1]]
        inputs = {
            name: Digest(digest)
            for name, digest in self._query(
                "SELECT name, digest FROM step_inputs WHERE run_id = ? AND step_id = ?"
                " ORDER BY name",
                key,
            )
        }
        outputs = {
            name: Output(Digest(digest), kind)
            for name, digest, kind in self._query(
                "SELECT name, digest, kind FROM step_outputs WHERE run_id = ? AND step_id = ?"
                " ORDER BY name",
                key,
            )
        }
        return StepExecution(
            run_id=row[0],
            step_id=row[1],
            status=cast(StepStatus, row[2]),
            cache_key=row[3],
            attempts=row[4],
            exit_code=row[5],
            started_at=row[6],
            ended_at=row[7],
            host=row[8],
            image=row[9],
            log_ref=row[10],
            error=row[11],
            params=json.loads(row[12]) if row[12] else {},
            code=json.loads(row[13]) if row[13] else {},
            inputs=inputs,
            outputs=outputs,
        )

    def producers_of(self, digest: Digest) -> list[tuple[StepExecution, str]]:
        """Step executions that output this digest, with the output name; those that actually
        ran come first, then cache hits, newest first within each."""
        rows = self._query(
            "SELECT e.run_id, e.step_id, o.name FROM step_outputs o"
            " JOIN step_executions e ON e.run_id = o.run_id AND e.step_id = o.step_id"
            " WHERE o.digest = ?"
            " ORDER BY e.status != 'ran', e.ended_at IS NULL, e.ended_at DESC, e.run_id DESC",
            [digest],
        )
        return [(self.get_step(run_id, step_id), name) for run_id, step_id, name in rows]

    def maker_of(self, hit: StepExecution, output: str) -> StepExecution | None:
        """For a cache hit, the execution (of another run) that ran and made its `output`: one
        with the hit's cache key first (the entry the hit used), of the same step next, then one
        that had ended when the hit's run started, the newest. None when lineage knows none."""
        if output not in hit.outputs:
            return None
        rows = self._query(
            "SELECT e.run_id, e.step_id FROM step_outputs o"
            " JOIN step_executions e ON e.run_id = o.run_id AND e.step_id = o.step_id"
            " LEFT JOIN runs r ON r.run_id = ?"
            " WHERE o.digest = ? AND e.status = 'ran' AND e.run_id != ?"
            " ORDER BY e.cache_key != ?, e.step_id != ?,"
            " NOT coalesce(e.ended_at <= r.started_at, 0),"
            " e.ended_at IS NULL, e.ended_at DESC, e.run_id DESC LIMIT 1",
            [hit.run_id, hit.outputs[output].digest, hit.run_id, hit.cache_key, hit.step_id],
        )
        return self.get_step(*rows[0]) if rows else None

    def datasets_with(self, digest: Digest) -> list[Dataset]:
        """The declared datasets pinned to this digest."""
        rows = self._query(
            "SELECT digest, name, uri, kind FROM datasets WHERE digest = ? ORDER BY name, uri",
            [digest],
        )
        return [Dataset(Digest(d), n, u, k) for d, n, u, k in rows]

    def output_of(self, run_id: str, step_id: str, output: str) -> Digest:
        """The digest a step of a run produced under an output name."""
        step = self.get_step(self.find_run(run_id).run_id, step_id)
        if output not in step.outputs:
            known = ", ".join(f"`{n}`" for n in step.outputs) or "none"
            raise LineageError(
                f"step `{step.name}` of run `{step.run_id}` has no output `{output}` "
                f"(outputs: {known})"
            )
        return step.outputs[output].digest

    def complete_digest(self, prefix: str) -> Digest:
        """The one digest recorded in lineage that starts with `prefix` (`sha256:6bd58…`)."""
        pattern = prefix.replace("%", "").replace("_", "") + "%"
        found: set[str] = set()
        for table in ("step_outputs", "step_inputs", "datasets"):
            rows = self._query(
                f"SELECT DISTINCT digest FROM {table} WHERE digest LIKE ?", [pattern]
            )
            found.update(row[0] for row in rows)
        if not found:
            raise LineageError(f"no recorded artifact has a digest starting with `{prefix}`")
        if len(found) > 1:
            shown = ", ".join(f"`{d[:19]}…`" for d in sorted(found)[:5])
            raise LineageError(f"`{prefix}` is ambiguous: it starts {shown}; give more digits")
        return Digest(found.pop())

    def recent_digests(self, runs_per_pipeline: int) -> set[Digest]:
        """Outputs, inputs and stored logs of the most recent runs of each pipeline: GC roots
        (keeping the inputs lets those runs be inspected and re-run)."""
        rows = self._query(
            "SELECT run_id FROM (SELECT run_id, ROW_NUMBER() OVER"
            " (PARTITION BY pipeline ORDER BY started_at DESC, run_id DESC) AS n FROM runs)"
            " WHERE n <= ?",
            [runs_per_pipeline],
        )
        digests: set[Digest] = set()
        for (run_id,) in rows:
            for step in self.steps_of(run_id):
                digests.update(o.digest for o in step.outputs.values())
                digests.update(step.inputs.values())
                if step.log_ref.startswith("sha256:"):
                    digests.add(Digest(step.log_ref))
        return digests

    def is_imported(self, kind: str, key: str) -> bool:
        """True if this record was already imported."""
        return bool(
            self._query("SELECT 1 FROM imported_records WHERE kind = ? AND key = ?", [kind, key])
        )

    def mark_imported(self, kind: str, key: str) -> None:
        """Remembers that a record was imported."""
        with self.transaction() as db:
            db.execute("INSERT OR IGNORE INTO imported_records VALUES (?, ?)", (kind, key))


def _check_status(status: str, allowed: tuple[str, ...], what: str) -> None:
    if status not in allowed:
        raise LineageError(
            f"invalid {what} status `{status}`; expected one of {', '.join(allowed)}"
        )


def _run_of(row: tuple[Any, ...]) -> Run:
    return Run(
        run_id=row[0],
        pipeline=row[1],
        spec_path=row[2],
        target=row[3],
        backend=row[4],
        host=row[5],
        user=row[6],
        git_commit=row[7],
        git_dirty=None if row[8] is None else bool(row[8]),
        params=json.loads(row[9]),
        started_at=row[10],
        ended_at=row[11],
        status=cast(RunStatus, row[12]),
    )


def _open_to_read(path: str, error: sqlite3.Error) -> sqlite3.Connection:
    """The database opened read-only without its lock files, for when it cannot be opened to
    write (a full disk cannot hold the files SQLite's WAL mode makes): queries still work;
    `error` is raised, explained, when not even that is possible."""
    try:
        if not os.path.isfile(path):
            raise sqlite3.OperationalError(str(error))
        uri = "file:" + urllib.parse.quote(os.path.abspath(path)) + "?immutable=1"
        connection = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
        connection.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
        return connection
    except sqlite3.Error:
        raise LineageError(
            f"cannot open the lineage database {path}: {describe_sqlite_error(error)}"
        ) from None


def _add_missing_columns(db: sqlite3.Connection) -> None:
    """Brings a database written by an earlier mlc up to date (its rows get NULL)."""
    columns = {row[1] for row in db.execute("PRAGMA table_info(step_executions)")}
    for name, type_ in _ADDED_COLUMNS.items():
        if name not in columns:
            db.execute(f"ALTER TABLE step_executions ADD COLUMN {name} {type_}")


def _insert_step(db: sqlite3.Connection, step: StepExecution) -> None:
    key = (step.run_id, step.step_id)
    db.execute("DELETE FROM step_inputs WHERE run_id = ? AND step_id = ?", key)
    db.execute("DELETE FROM step_outputs WHERE run_id = ? AND step_id = ?", key)
    db.execute(
        f"INSERT OR REPLACE INTO step_executions ({_STEP_COLUMNS})"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            step.run_id,
            step.step_id,
            step.status,
            step.cache_key,
            step.attempts,
            step.exit_code,
            step.started_at,
            step.ended_at,
            step.host,
            step.image,
            step.log_ref,
            step.error,
            json.dumps(step.params, sort_keys=True),
            json.dumps(step.code, sort_keys=True),
        ),
    )
    db.executemany(
        "INSERT INTO step_inputs VALUES (?, ?, ?, ?)",
        [(*key, name, digest) for name, digest in step.inputs.items()],
    )
    db.executemany(
        "INSERT INTO step_outputs VALUES (?, ?, ?, ?, ?)",
        [(*key, name, o.digest, o.kind) for name, o in step.outputs.items()],
    )
