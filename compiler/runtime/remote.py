"""One attempt carried out in this process, for executors whose attempts run elsewhere.

A Ray task and a Kubernetes pod both receive an attempt as plain JSON and a store, and hand
back how it ended as plain JSON: `run_attempt` is that whole round, the same code a local
worker runs. It renders the attempt in a directory of its own, materialises the inputs from
the store, runs the `call` function or the `run` command (a command in a process group of its
own, stopped at the step's timeout), puts the outputs into the store, writes the cache entry,
stores the step's log, and returns digests and the result, never data.

A `KeyboardInterrupt` while the attempt runs (Ray's cancel, or a signal its host turns into
one) stops it: the log is still stored and the result says it was stopped.

A caller that stores logs itself, in batches (`mlc.runtime.log_batches`), may have a small
attempt log handed back instead of stored (`inline_log_bytes`): storing each log on its own
costs a couple of filesystem flushes, more than a short step. The caller then puts it into
the store after the earlier attempts' log, as the step's log.
"""

from __future__ import annotations

import contextlib
import os
import socket
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlc.runtime.attempt import Attempt, Collected, carry_out, render_attempt
from mlc.runtime.errors import StepFailure
from mlc.runtime.step_logs import LogPart, failure_note, store_log
from mlc.runtime.task import TaskResult, environment_copy
from mlc.runtime.workdir import remove_tree
from mlc.store.base import Store
from mlc.store.errors import StoreError

NO_TIMEOUT_SECONDS = 10 * 365 * 86400.0
"""The timeout of a command whose step has none. A command always runs with one here, in a
group of its own: waiting with a timeout lets a `KeyboardInterrupt` reach this process, which
then stops the command's whole group instead of leaving it behind."""
STOPPED = "stopped by mlc"


def run_attempt(
    attempt: Attempt,
    store: Store,
    *,
    log_path: str,
    extra_env: Mapping[str, str] | None = None,
    inline_log_bytes: int = 0,
    attempt_dir: AttemptRoot | None = None,
) -> dict[str, Any]:
    """Carries out one attempt in this process and returns how it ended (see the module
    docstring). The attempt's log is written to `log_path` while it runs (a live reader may
    follow it there), then stored, and the file removed. With `inline_log_bytes`, this
    attempt's log (without the earlier attempts') is returned as `log.inline` (text, bytes
    that are not UTF-8 escaped as surrogates) instead, when it is smaller than that.

    The attempt runs in a new temporary directory, removed afterwards, or in `attempt_dir`, a
    directory this process reuses attempt after attempt (emptied after each)."""
    root = attempt_dir.path if attempt_dir is not None else tempfile.mkdtemp(prefix="mlc-attempt-")
    result: TaskResult | None = None
    collected = Collected()
    notes: list[str] = []

    def ended(value: TaskResult | None) -> None:
        nonlocal result
        result = value

    def reported(value: Collected) -> None:
        nonlocal collected
        collected = value

    try:
        try:
            task, plan = render_attempt(
                attempt,
                root=root,
                log_path=log_path,
                environ=environment_copy(),
                extra_env=dict(extra_env or {}),
            )
        except StepFailure as exc:
            collected = Collected(error=str(exc))
        else:
            try:
                carry_out(
                    plan,
                    task,
                    store,
                    ended=ended,
                    collected=reported,
                    emptied=attempt_dir.emptied if attempt_dir is not None else None,
                    timeout_seconds=attempt.timeout_seconds or NO_TIMEOUT_SECONDS,
                    grace_seconds=attempt.kill_grace_seconds,
                )
            except KeyboardInterrupt:
                result = result or TaskResult(-2, STOPPED)
                collected = Collected(error=STOPPED)
        if result is not None and result.timed_out and attempt.timeout_seconds:
            result = TaskResult.timed_out_after(result.exit_code, attempt.timeout_seconds)
        if collected.outputs is None:
            notes.append(failure_note(attempt.number, result, collected.error))
        log = _store_log(store, attempt, log_path, "".join(notes), inline_log_bytes)
    finally:
        if attempt_dir is None:
            with contextlib.suppress(OSError):
                remove_tree(Path(root))
    return {
        "result": None if result is None else result.to_json(),
        "collected": collected.to_json(),
        "log": log,
        "host": socket.gethostname(),
    }


@dataclass
class AttemptRoot:
    """A directory one process carries out its attempts in, one after another: making and
    deleting a directory tree per attempt costs more than a short step (the local backend's
    workers keep theirs too)."""

    path: str
    emptied: set[str] = field(default_factory=set)
    """Given to `carry_out`: whether the directory was left empty by the last attempt."""


def _store_log(
    store: Store, attempt: Attempt, log_path: str, notes: str, inline_log_bytes: int
) -> dict[str, Any]:
    """The step's log so far (earlier attempts, this one, mlc's notes) put into the store, or
    this attempt's part handed back when it is small enough (see `run_attempt`)."""
    try:
        size = os.stat(log_path).st_size if os.path.exists(log_path) else 0
        ending = notes.encode("utf-8")
        if size + len(ending) < inline_log_bytes:
            data = b""
            if size:
                with open(log_path, "rb") as handle:
                    data = handle.read()
            return {"inline": (data + ending).decode("utf-8", "surrogateescape")}
        part = LogPart(log_path, 0, size) if size else None
        stored = store_log(
            store,
            lambda data: str(store.put_bytes(data)),
            attempt.earlier_log,
            part,
            ending,
        )
    except (OSError, StoreError) as exc:
        return {"problem": str(exc)}
    finally:
        with contextlib.suppress(OSError):
            os.unlink(log_path)
    return {"ref": stored.digest, "tail": stored.tail, "whole": stored.whole.to_json()}
