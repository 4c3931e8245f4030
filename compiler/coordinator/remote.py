"""How an attempt that ran elsewhere ended, from the JSON its runtime handed back.

A Ray task returns it, a Kubernetes pod writes it to its termination message: the value of
`mlc.runtime.remote.run_attempt`. `attempt_ended` turns it (or its absence: the attempt never
ran, was killed, or was stopped) into the `AttemptEnded` the coordinator receives, storing a
log written by mlc when the runtime stored none.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from mlc.coordinator.executor import AttemptEnded
from mlc.runtime.attempt import Attempt, Collected
from mlc.runtime.step_logs import EarlierLog, failure_note, store_log
from mlc.runtime.task import TaskResult
from mlc.store.base import Store
from mlc.store.errors import StoreError


def attempt_ended(
    store: Store,
    attempt: Attempt,
    value: Mapping[str, Any] | None = None,
    *,
    result: TaskResult | None = None,
    error: str | None = None,
    retryable: bool = True,
    host: str | None = None,
    put: Callable[[bytes], str] | None = None,
) -> AttemptEnded:
    """The end of an attempt: from the runtime's value when there is one (unless `result`
    overrides how it ended: the executor stopped it), else with a log mlc writes for it.

    A value may carry the attempt's log itself (`inline`: small logs, stored here with the
    earlier attempts'); `put` is how log objects go into the store (default: one by one;
    an executor may batch them)."""
    ended = AttemptEnded(attempt, error=error, retryable=retryable, host=host)
    if value is not None:
        ended.host = value.get("host") or host
        collected = Collected.from_json(value.get("collected") or {})
        ended.result = result or task_result(value.get("result"))
        ended.error = error or collected.error
        ended.outputs = collected.outputs if result is None else None
        log = value.get("log") or {}
        if "problem" in log:
            ended.log_problem = log["problem"]
        elif "inline" in log:
            _write_log(store, ended, log["inline"].encode("utf-8", "surrogateescape"), put)
        elif log.get("ref"):
            ended.log_ref, ended.log_tail = log["ref"], list(log.get("tail") or [])
            ended.log_whole = EarlierLog.from_json(log.get("whole") or {})
    else:
        ended.result = result
    if ended.outputs is None and ended.log_ref is None and ended.log_problem is None:
        note = failure_note(attempt.number, ended.result, ended.error).encode("utf-8")
        _write_log(store, ended, note, put)
    return ended


def task_result(data: Mapping[str, Any] | None) -> TaskResult | None:
    """A `TaskResult` from its JSON."""
    return None if data is None else TaskResult(**data)


def _write_log(
    store: Store, ended: AttemptEnded, data: bytes, put: Callable[[bytes], str] | None
) -> None:
    """The step's log when the runtime stored none: the earlier attempts' log and `data` (the
    attempt's own small log, or mlc's note for an attempt that never ran, was killed or was
    stopped)."""
    attempt = ended.attempt
    put = put or (lambda chunk: str(store.put_bytes(chunk)))
    try:
        stored = store_log(store, put, attempt.earlier_log, None, data)
    except (OSError, StoreError) as exc:
        ended.log_problem = str(exc)
        return
    ended.log_ref, ended.log_tail, ended.log_whole = stored.digest, stored.tail, stored.whole
