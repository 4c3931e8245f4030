"""What one Ray task runs: one attempt, through mlc's own step runtime.

The task receives the attempt as plain JSON and the store's address, never data: it renders
the attempt in a directory of its own on the node, materialises the inputs from the store,
runs the `call` function or the `run` command (a command in a process group of its own, stopped
at the step's timeout), puts the outputs into the store, writes the cache entry, stores the
step's log, and returns digests and the result as JSON. The same code a local worker runs.

A step without GPUs gets `CUDA_VISIBLE_DEVICES` empty (Ray leaves it unset, and the step would
see every GPU of the node); a GPU step gets the devices Ray assigned.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import tempfile
from pathlib import Path
from typing import Any

from mlc.runtime.attempt import Attempt, Collected, carry_out, render_attempt
from mlc.runtime.errors import StepFailure
from mlc.runtime.step_logs import LogPart, failure_note, store_log
from mlc.runtime.task import TaskResult
from mlc.runtime.workdir import remove_tree
from mlc.store.base import Store
from mlc.store.errors import StoreError
from mlc.store.uri import open_store_at

CUDA_VARIABLE = "CUDA_VISIBLE_DEVICES"
NO_TIMEOUT_SECONDS = 10 * 365 * 86400.0
"""The timeout of a command whose step has none. A command always runs with one here, in a
group of its own: waiting with a timeout lets a cancel (a `KeyboardInterrupt`) reach the
task, which then stops the command's whole group instead of leaving it behind."""
_stores: dict[str, Store] = {}


def run_attempt(
    attempt_json: dict[str, Any], store_address: dict[str, Any], log_dir: str
) -> dict[str, Any]:
    """Carries out one attempt in this process and returns how it ended (see the module
    docstring). `log_dir` is where the attempt's log is written while it runs (`mlc logs -f`
    reads it there on a single-node cluster)."""
    attempt = Attempt.from_json(attempt_json)
    store = _store(store_address)
    gpus = attempt.step.resources.gpu
    cuda = os.environ.get(CUDA_VARIABLE, "") if gpus is not None and gpus.count else ""
    os.makedirs(log_dir, exist_ok=True)
    root = tempfile.mkdtemp(prefix="mlc-attempt-")
    log_path = os.path.join(log_dir, f"{attempt.name}.{attempt.number}.log")
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
                environ=os.environ,
                extra_env={CUDA_VARIABLE: cuda},
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
                    timeout_seconds=attempt.timeout_seconds or NO_TIMEOUT_SECONDS,
                    grace_seconds=attempt.kill_grace_seconds,
                )
            except KeyboardInterrupt:  # the executor cancelled the task (a timeout or Ctrl-C)
                result = result or TaskResult(-2, "stopped by mlc")
                collected = Collected(error="stopped by mlc")
        if result is not None and result.timed_out and attempt.timeout_seconds:
            result = TaskResult.timed_out_after(result.exit_code, attempt.timeout_seconds)
        if collected.outputs is None:
            notes.append(failure_note(attempt.number, result, collected.error))
        log = _store_log(store, attempt, log_path, "".join(notes))
    finally:
        with contextlib.suppress(OSError):
            remove_tree(Path(root))
    return {
        "result": None if result is None else result.to_json(),
        "collected": collected.to_json(),
        "log": log,
        "host": socket.gethostname(),
    }


def _store_log(store: Store, attempt: Attempt, log_path: str, notes: str) -> dict[str, Any]:
    """The step's log so far (earlier attempts, this one, mlc's notes) put into the store."""
    try:
        size = os.stat(log_path).st_size if os.path.exists(log_path) else 0
        part = LogPart(log_path, 0, size) if size else None
        stored = store_log(
            store,
            lambda data: str(store.put_bytes(data)),
            attempt.earlier_log,
            part,
            notes.encode("utf-8"),
        )
    except (OSError, StoreError) as exc:
        return {"problem": str(exc)}
    finally:
        with contextlib.suppress(OSError):
            os.unlink(log_path)
    return {"ref": stored.digest, "tail": stored.tail, "whole": stored.whole.to_json()}


def _store(address: dict[str, Any]) -> Store:
    """The store at an address, opened once per worker process."""
    key = json.dumps(address, sort_keys=True)
    if key not in _stores:
        _stores[key] = open_store_at(address)
    return _stores[key]
