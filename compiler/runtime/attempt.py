"""One attempt carried out where it executes: directory, inputs, task, outputs, cache entry.

The scheduler decides and records; the process that executes a step (a local worker, and in
time a Ray task or a Kubernetes pod) does the file-system work around it. That keeps the
per-step work of many steps in as many processes, in parallel, instead of on the scheduler's
threads, and it is the only arrangement a remote executor can have: it must fetch its own
inputs and put its own outputs into the shared store.

`carry_out` runs an `AttemptPlan` with its `Task` against a store and reports twice: once
when the task ended (so the caller can stop its timeout clock), once when the outputs are in
the store and the cache entry is written, or why not. Both reports are plain JSON.
"""

from __future__ import annotations

import contextlib
import os
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlc.runtime.cache_entries import CachedOutput, CacheEntry, remember
from mlc.runtime.errors import StepFailure
from mlc.runtime.task import Task, TaskResult, execute_task, open_log
from mlc.runtime.workdir import OutputSlot, collect_outputs, empty_attempt, prepare_attempt
from mlc.store.base import Store
from mlc.store.digest import Digest
from mlc.store.errors import StoreError


@dataclass(frozen=True, slots=True)
class CacheEntryPlan:
    """The cache entry an attempt writes when it succeeds."""

    key: str
    parts: Mapping[str, Any]
    run_id: str
    invocation: str
    expire_seconds: float | None = None

    def to_json(self) -> dict[str, Any]:
        """A plain dict."""
        return {
            "key": self.key,
            "parts": dict(self.parts),
            "run_id": self.run_id,
            "invocation": self.invocation,
            "expire_seconds": self.expire_seconds,
        }


@dataclass(frozen=True, slots=True)
class AttemptPlan:
    """Where an attempt runs and what it reads and writes (the task itself is separate)."""

    root: str
    """The attempt directory (see `mlc.runtime.workdir`)."""
    inputs: Mapping[str, Digest | list[Digest]]
    outputs: tuple[OutputSlot, ...]
    log_path: str
    """Where the attempt's log is appended (a worker's log file, which the caller reads from
    where it ended after the previous attempt)."""
    header: str
    """The line written to the log before the task starts."""
    cache: CacheEntryPlan | None = None
    empty_log: bool = False
    """Empty the log file first (the caller has read everything in it)."""
    timed: bool = True
    """Whether the caller keeps a timeout on the task, and so needs to hear the moment it
    ended; if not, a worker may send both reports at once, after collecting."""

    def to_json(self) -> dict[str, Any]:
        """A plain dict."""
        return {
            "root": self.root,
            "inputs": dict(self.inputs),
            "outputs": [slot.to_json() for slot in self.outputs],
            "log_path": self.log_path,
            "header": self.header,
            "cache": None if self.cache is None else self.cache.to_json(),
            "empty_log": self.empty_log,
            "timed": self.timed,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AttemptPlan:
        """The plan a `to_json` dict describes."""
        cache = data.get("cache")
        return cls(
            root=data["root"],
            inputs=data["inputs"],
            outputs=tuple(OutputSlot(**slot) for slot in data["outputs"]),
            log_path=data["log_path"],
            header=data["header"],
            cache=None if cache is None else CacheEntryPlan(**cache),
            empty_log=data.get("empty_log", False),
            timed=data.get("timed", True),
        )


@dataclass(frozen=True, slots=True)
class Collected:
    """The second report of an attempt: its outputs in the store, or why there are none."""

    outputs: dict[str, CachedOutput] | None = None
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        """A plain dict."""
        outputs = None
        if self.outputs is not None:
            outputs = {n: {"digest": o.digest, "kind": o.kind} for n, o in self.outputs.items()}
        return {"outputs": outputs, "error": self.error}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Collected:
        """The report a `to_json` dict describes."""
        outputs = data.get("outputs")
        return cls(
            outputs=None
            if outputs is None
            else {n: CachedOutput(Digest(o["digest"]), o["kind"]) for n, o in outputs.items()},
            error=data.get("error"),
        )


def carry_out(
    plan: AttemptPlan,
    task: Task,
    store: Store,
    *,
    ended: Callable[[TaskResult | None], None],
    collected: Callable[[Collected], None],
    emptied: set[str] | None = None,
) -> None:
    """Prepares the attempt directory, executes the task, collects the outputs into the store,
    writes the cache entry, reports, and empties the directory. Never raises for a failing
    step.

    `ended` is called exactly once: with the task's result as soon as it has finished, or with
    None when it never started (the preparation failed). `collected` is called once after it,
    when the outputs are in the store and the cache entry is written (so a step reported done
    is cached, even if the caller is killed right after); the caller need not wait for the
    clean-up, which follows.

    `emptied` is the attempt directories this process left empty after earlier attempts (a
    worker keeps one set for its life): such a directory is not emptied again first.
    """
    reported = False

    def end(result: TaskResult | None) -> None:
        nonlocal reported
        if not reported:
            reported = True
            ended(result)

    known_empty = emptied is not None and plan.root in emptied
    if emptied is not None:
        emptied.discard(plan.root)
    try:
        outcome = _attempt(plan, task, store, end, known_empty=known_empty)
    finally:
        end(None)
    collected(outcome)
    with contextlib.suppress(OSError):
        empty_attempt(Path(plan.root))
        if emptied is not None:
            emptied.add(plan.root)


def _attempt(
    plan: AttemptPlan,
    task: Task,
    store: Store,
    ended: Callable[[TaskResult | None], None],
    *,
    known_empty: bool,
) -> Collected:
    try:
        log = _start_log(plan)
        try:
            try:
                _, paths = prepare_attempt(
                    Path(plan.root), store, plan.inputs, plan.outputs, known_empty=known_empty
                )
            except OSError as exc:
                raise StepFailure(
                    f"cannot prepare the attempt directory {plan.root}: {exc.strerror}"
                ) from None
            result = execute_task(task, new_session=False, log_fd=log)
        finally:
            os.close(log)
        ended(result)
        if not result.ok:
            return Collected()
        outputs = collect_outputs(store, plan.outputs, paths)
        if plan.cache is not None:
            _remember(store, plan.cache, outputs=outputs)
        return Collected(outputs=outputs)
    except (StepFailure, StoreError) as exc:
        return Collected(error=str(exc))
    except Exception as exc:  # an internal error must still end the attempt cleanly
        with contextlib.suppress(OSError), open(plan.log_path, "a", encoding="utf-8") as handle:
            traceback.print_exc(file=handle)
        return Collected(error=f"internal error: {type(exc).__name__}: {exc}")


def _start_log(plan: AttemptPlan) -> int:
    """The attempt's log, open for appending, with its header written."""
    try:
        log = open_log(plan.log_path)
    except OSError as exc:
        raise StepFailure(f"cannot write the step's log {plan.log_path}: {exc.strerror}") from None
    try:
        if plan.empty_log:
            os.ftruncate(log, 0)
        os.write(log, plan.header.encode("utf-8"))
    except OSError as exc:
        os.close(log)
        raise StepFailure(f"cannot write the step's log {plan.log_path}: {exc.strerror}") from None
    return log


def _remember(store: Store, plan: CacheEntryPlan, *, outputs: dict[str, CachedOutput]) -> None:
    entry = CacheEntry(
        key=plan.key,
        parts=dict(plan.parts),
        outputs=outputs,
        created_at=time.time(),
        run_id=plan.run_id,
        invocation=plan.invocation,
    )
    remember(store, entry, expire_seconds=plan.expire_seconds)
