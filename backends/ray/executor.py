"""The Ray executor: each attempt is one Ray task running mlc's step runtime.

This process is the Ray driver. `start` submits `mlc.backends.ray.task.run_attempt` with the
attempt as plain JSON and the step's resources as task options; the task's future reports the
end (no polling). The task returns digests and the result, never data: inputs and outputs go
through the shared store, which every node must reach.

mlc, not Ray, retries (Ray's own retries are off; Ray ignores retry delays) and keeps
timeouts (Ray has none per task). A `run` command is stopped at its timeout inside the task
(its process group: SIGTERM, the grace period, SIGKILL). A `call` runs in the Ray worker
itself, so the executor keeps its clock: at the timeout it cancels the task (a
`KeyboardInterrupt` in the task, which stores its log and returns), and after the grace
period it kills the worker (`ray.cancel(force=True)`), the backstop for a task stuck in native
code. Because a forced cancel may still hand back the task's normal value, the executor
decides from its own intent: an attempt it stopped is reported as stopped, whatever returns.

GPU steps run in a worker that exits after the task (`max_calls=1`: a CUDA context must not
leak into the next task); other steps share warm workers.

Ray tasks share the fate of their driver: when `mlc apply` is killed, Ray stops the run's
tasks, so there is nothing to re-attach to, and a re-apply resumes through the cache.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import sys
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlc.backends.ray.capacity import Infeasible, RayCapacity
from mlc.backends.ray.cluster import RayCluster, address_problem
from mlc.backends.ray.logs import log_directory
from mlc.backends.ray.placement import task_options
from mlc.coordinator.executor import AttemptEnded, KnownAttempt, Report
from mlc.ir.model import IRDocument, Target
from mlc.runtime.attempt import Attempt, Collected
from mlc.runtime.step_logs import EarlierLog, failure_note, store_log
from mlc.runtime.task import TaskResult
from mlc.runtime.workdir import remove_tree
from mlc.store.base import Store
from mlc.store.errors import StoreError
from mlc.store.uri import store_address

STOP_MARGIN_SECONDS = 2.0
"""How long a cancelled task has, beyond the grace period, before its worker is killed."""
COMMAND_BACKSTOP_SECONDS = 5.0
"""How long past its own timeout (and grace) a command's task may take before the executor
stops it (the task stops the command itself; this is for a task that could not)."""


@dataclass
class _Running:
    """One submitted attempt."""

    attempt: Attempt
    ref: Any
    stop_reason: str | None = None
    """Why the executor stopped it (`timeout`, `cancelled`), if it did."""
    timers: list[threading.Timer] = field(default_factory=list)


class RayExecutor:
    """Runs attempts as Ray tasks (see the module docstring)."""

    backend = "ray"

    def __init__(self, store: Store, target: Target | None) -> None:
        self.store = store
        self.target = target
        self.cluster = RayCluster(target)
        local_store = None if store.is_remote else str(getattr(store, "root", store.uri))
        self._capacity = RayCapacity(self.cluster, target, local_store=local_store)
        self.store_address = store_address(store)
        self._report: Report | None = None
        self._running: dict[str, _Running] = {}
        self._lock = threading.Lock()
        self._log_dir = ""

    @property
    def capacity(self) -> RayCapacity:
        """The cluster's resources (joined when a step must run)."""
        return self._capacity

    # ------------------------------------------------------------------ the interface

    def check(self, document: IRDocument) -> list[str]:
        """An address this version cannot use; container images (steps run in the cluster's
        Python environment)."""
        problems = []
        if importlib.util.find_spec("ray") is None:
            problems.append(
                "Ray is not installed in this Python environment: "
                f"`{sys.executable} -m pip install 'ray[default]'`"
            )
        problem = address_problem(document.target)
        if problem is not None:
            problems.append(problem)
        ignored = set(document.target.ignore_unsupported) if document.target else set()
        problems += [
            f"step `{step.name}` sets `image`, but Ray steps run in the cluster's Python "
            'environment in this version; add `ignore_unsupported = ["image"]` to the target to '
            "run it anyway"
            for step in document.pipeline.steps
            if step.image and "image" not in ignored
        ]
        return problems

    def begin(self, run_id: str, document: IRDocument, report: Report) -> None:
        """Nothing is started yet: the cluster is joined when a step must run."""
        self._report = report
        self._log_dir = str(log_directory(str(getattr(self.store, "local_dir", ".mlc")), run_id))

    def start(self, attempt: Attempt) -> None:
        """Submits the attempt as a Ray task; its future reports the end."""
        reservation = attempt.reservation
        if isinstance(reservation, Infeasible):
            self._ended(attempt, error=reservation.reason, retryable=False)
            return
        try:
            gpus = attempt.step.resources.gpu
            remote = _gpu_task() if gpus is not None and gpus.count else _task()
            need = getattr(reservation, "need", {})
            ref = remote.options(**task_options(need, attempt.name)).remote(
                attempt.to_json(), self.store_address, self._log_dir
            )
        except Exception as exc:  # submission failed: the attempt ends here
            self._ended(attempt, error=f"the Ray task could not be submitted: {exc}")
            return
        running = _Running(attempt, ref)
        with self._lock:
            self._running[attempt.key] = running
        timeout = attempt.timeout_seconds
        if timeout:
            if attempt.step.command.kind != "call":
                timeout += attempt.kill_grace_seconds + COMMAND_BACKSTOP_SECONDS
            self._after(running, timeout, functools.partial(self._stop, running, "timeout"))
        future: Future[Any] = ref.future()
        future.add_done_callback(functools.partial(self._done, running))

    def cancel(self, attempts: Sequence[Attempt], grace_seconds: float) -> None:
        """Cancels the tasks (a `KeyboardInterrupt` in each), then kills the workers of those
        still running after the grace period. Returns at once; each end is reported."""
        for attempt in attempts:
            with self._lock:
                running = self._running.get(attempt.key)
            if running is not None:
                self._stop(running, "cancelled", grace_seconds)

    def known_attempts(self, run_ids: Sequence[str]) -> list[KnownAttempt]:
        """None: Ray stops a driver's tasks when the driver dies."""
        return []

    def adopt(self, known: KnownAttempt, attempt: Attempt) -> None:
        """Never called: `known_attempts` reports none."""
        raise RuntimeError("Ray attempts cannot be adopted")

    def end(self) -> list[str]:
        """Leaves the cluster (stopping a Ray started for the run) and removes the run's live
        log directory."""
        with self._lock:
            timers = [t for r in self._running.values() for t in r.timers]
        for timer in timers:
            timer.cancel()
        self.cluster.disconnect()
        if self._log_dir:
            with contextlib.suppress(OSError):
                remove_tree(Path(self._log_dir).parent)
        return []

    # ------------------------------------------------------------------ ends

    def _stop(self, running: _Running, reason: str, grace_seconds: float | None = None) -> None:
        """Cancels a task, then forces it after the grace period if it has not ended."""
        import ray

        with self._lock:
            if running.attempt.key not in self._running or running.stop_reason is not None:
                return
            running.stop_reason = reason
        grace = running.attempt.kill_grace_seconds if grace_seconds is None else grace_seconds
        with contextlib.suppress(Exception):
            ray.cancel(running.ref, force=False)
        self._after(running, grace + STOP_MARGIN_SECONDS, functools.partial(self._force, running))

    def _force(self, running: _Running) -> None:
        import ray

        with self._lock:
            if running.attempt.key not in self._running:
                return
        with contextlib.suppress(Exception):
            ray.cancel(running.ref, force=True)

    def _after(self, running: _Running, seconds: float, action: Any) -> None:
        timer = threading.Timer(seconds, action)
        timer.daemon = True
        running.timers.append(timer)
        timer.start()

    def _done(self, running: _Running, future: Future[Any]) -> None:
        """(On a Ray thread.) The task ended: its value, or how Ray says it failed."""
        with self._lock:
            self._running.pop(running.attempt.key, None)
        for timer in running.timers:
            timer.cancel()
        attempt = running.attempt
        try:
            value: Mapping[str, Any] | None = future.result()
            problem = None
        except Exception as exc:
            value, problem = None, _ray_failure(exc)
        if running.stop_reason == "timeout":
            seconds = attempt.timeout_seconds or 0.0
            self._ended(attempt, result=TaskResult.timed_out_after(-15, seconds), value=value)
        elif running.stop_reason == "cancelled":
            self._ended(attempt, result=TaskResult(-15, "cancelled"), value=value)
        elif value is None:
            self._ended(attempt, result=TaskResult(-9, problem))
        else:
            self._ended(attempt, value=value)

    def _ended(
        self,
        attempt: Attempt,
        *,
        result: TaskResult | None = None,
        error: str | None = None,
        value: Mapping[str, Any] | None = None,
        retryable: bool = True,
    ) -> None:
        """Reports an attempt's end: from the task's value when it returned one (unless
        `result` overrides how it ended), else with a log mlc writes for it."""
        ended = AttemptEnded(attempt, error=error, retryable=retryable)
        if value is not None:
            ended.host = value.get("host")
            collected = Collected.from_json(value.get("collected") or {})
            ended.result = result or _result(value.get("result"))
            ended.error = error or collected.error
            ended.outputs = collected.outputs if result is None else None
            log = value.get("log") or {}
            if "problem" in log:
                ended.log_problem = log["problem"]
            elif log.get("ref"):
                ended.log_ref, ended.log_tail = log["ref"], list(log.get("tail") or [])
                ended.log_whole = EarlierLog.from_json(log.get("whole") or {})
        else:
            ended.result = result
        if ended.outputs is None and ended.log_ref is None and ended.log_problem is None:
            self._write_log(ended)
        if self._report is not None:
            self._report(ended)

    def _write_log(self, ended: AttemptEnded) -> None:
        """The log of an attempt whose task stored none (it never ran, was killed, or was
        stopped): the earlier attempts' log and mlc's note."""
        attempt = ended.attempt
        note = failure_note(attempt.number, ended.result, ended.error).encode("utf-8")
        try:
            stored = store_log(
                self.store,
                lambda data: str(self.store.put_bytes(data)),
                attempt.earlier_log,
                None,
                note,
            )
        except (OSError, StoreError) as exc:
            ended.log_problem = str(exc)
            return
        ended.log_ref, ended.log_tail, ended.log_whole = stored.digest, stored.tail, stored.whole


def _result(data: Mapping[str, Any] | None) -> TaskResult | None:
    return None if data is None else TaskResult(**data)


def _ray_failure(exc: BaseException) -> str:
    """What Ray's exception for a task means to the user, in one line."""
    name = type(exc).__name__
    if name == "WorkerCrashedError":
        return "the Ray worker running it died"
    if name == "NodeDiedError":
        return "the Ray node running it died"
    if name == "TaskCancelledError":
        return "the Ray task was cancelled"
    first = str(exc).strip().splitlines()
    return f"the Ray task failed: {name}: {first[0] if first else ''}".rstrip(": ")


@functools.cache
def _task() -> Any:
    """The Ray remote function that runs attempts, in shared workers."""
    import ray
    from mlc.backends.ray.task import run_attempt

    return ray.remote(run_attempt)


@functools.cache
def _gpu_task() -> Any:
    """The same function in workers that exit after one task (GPU steps)."""
    import ray
    from mlc.backends.ray.task import run_attempt

    return ray.remote(max_calls=1)(run_attempt)
