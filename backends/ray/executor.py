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

A task may wait in Ray's queue before it runs (the cluster is busy, or no live node can hold
it now). A step's clock must not count that wait, so the tasks of steps with a timeout, and
every task when the target sets `pending_timeout`, are *signalled*: they run as streaming
generators that first say they started (`task.run_attempt_signalled`), and the executor starts
their timeout there. A signalled task still waiting after a couple of seconds notes why as its
step's progress (what it asks for, what the cluster has free); one still waiting after the
target's `pending_timeout` is cancelled and its step fails, saying so (without its retries
when no live node could hold it). Other tasks are plain Ray tasks: a signal costs a message
per task, a large share of a short step.

Small logs come back with the task's result and are stored here in batches
(`mlc.runtime.log_batches`), as the local backend stores them.

GPU steps run in a worker that exits after the task (`max_calls=1`: a CUDA context must not
leak into the next task); other steps share warm workers.

Ray tasks share the fate of their driver: when `mlc apply` is killed, Ray stops the run's
tasks, so there is nothing to re-attach to, and a re-apply resumes through the cache.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlc.backends.ray.capacity import Infeasible, RayCapacity, Reservation
from mlc.backends.ray.clock import Clock, Due
from mlc.backends.ray.cluster import RayCluster, address_problem
from mlc.backends.ray.logs import log_directory
from mlc.backends.ray.placement import task_options
from mlc.coordinator.executor import AttemptEnded, AttemptNote, KnownAttempt, Report
from mlc.coordinator.remote import attempt_ended
from mlc.installation import pip_install
from mlc.ir.model import IRDocument, Target
from mlc.runtime.attempt import Attempt
from mlc.runtime.log_batches import LogBatches
from mlc.runtime.task import TaskResult
from mlc.runtime.workdir import remove_tree
from mlc.store.base import Store
from mlc.store.uri import store_address

STOP_MARGIN_SECONDS = 2.0
"""How long a cancelled task has, beyond the grace period, before its worker is killed."""
COMMAND_BACKSTOP_SECONDS = 5.0
"""How long past its own timeout (and grace) a command's task may take before the executor
stops it (the task stops the command itself; this is for a task that could not)."""
NOTE_AFTER_SECONDS = 2.0
"""How long a signalled task waits in Ray's queue before its step says why."""
NOTE_EVERY_SECONDS = 10.0
"""How often that note is brought up to date while the task waits."""
INLINE_LOG_BYTES = 64 << 10
"""Logs smaller than this come back with the task's result, to be stored here in batches."""
PENDING_TIMEOUT = "pending_timeout"


@dataclass
class _Running:
    """One submitted attempt."""

    attempt: Attempt
    task: Any
    """The Ray task: an ObjectRef, or the ObjectRefGenerator of a signalled task."""
    signalled: bool = False
    started: bool = False
    """A signalled task said it runs (a plain task is never known to have started)."""
    ended: bool = False
    stop_reason: str | None = None
    """Why the executor stopped it (`timeout`, `cancelled`, `pending`), if it did."""
    stop_detail: str = ""
    """The error of a task stopped because it waited too long."""
    retryable: bool = True
    noted: bool = False
    """Its step was told why it waits."""
    dues: list[Due] = field(default_factory=list)


class RayExecutor:
    """Runs attempts as Ray tasks (see the module docstring)."""

    backend = "ray"

    def __init__(self, store: Store, target: Target | None) -> None:
        self.store = store
        self.target = target
        self.cluster = RayCluster(target)
        local_store = None if store.is_remote else str(getattr(store, "root", store.uri))
        self.store_address = store_address(store)
        self.pending_timeout = pending_timeout(target)
        """Seconds a task may wait in Ray's queue before its step fails (None: no limit)."""
        self._capacity = RayCapacity(
            self.cluster,
            target,
            local_store=local_store,
            queue_ahead=self.pending_timeout is None,
            wait_for_nodes=self.pending_timeout is not None,
        )
        self.logs = LogBatches(store)
        self.clock = Clock()
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
                f"Ray is not installed in this Python environment: `{pip_install('ray')}`"
            )
        problem = address_problem(document.target)
        if problem is not None:
            problems.append(problem)
        value = document.target.settings.get(PENDING_TIMEOUT) if document.target else None
        if value is not None and pending_timeout(document.target) is None:
            problems.append(
                f"target `{document.target.name}`: `{PENDING_TIMEOUT} = {value}` is not a "  # type: ignore[union-attr]
                "duration above zero (e.g. `10m`)"
            )
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
        """Submits the attempt as a Ray task; its future reports the end (module docstring)."""
        reservation = attempt.reservation
        if isinstance(reservation, Infeasible):
            self._ended(attempt, error=reservation.reason, retryable=False)
            return
        signalled = attempt.timeout_seconds is not None or self.pending_timeout is not None
        try:
            if attempt.number > 1 and attempt.earlier_log.data:
                self.logs.flush()  # the task may read the earlier attempts' log from the store
            gpus = attempt.step.resources.gpu
            remote = _remote(gpu=gpus is not None and bool(gpus.count), signalled=signalled)
            need = getattr(reservation, "need", {})
            options = task_options(need, attempt.name)
            if signalled:
                options["num_returns"] = "streaming"
            task = remote.options(**options).remote(
                attempt.to_json(), self.store_address, self._log_dir, INLINE_LOG_BYTES
            )
            if signalled:
                # The refs of the generator's two items, before they exist (what Ray's own
                # `async for` over a generator waits on): the start, then the end.
                started_ref, ended_ref = task._get_next_ref_n(2)
            else:
                started_ref, ended_ref = None, task
        except Exception as exc:  # submission failed: the attempt ends here
            self._ended(attempt, error=f"the Ray task could not be submitted: {exc}")
            return
        running = _Running(attempt, task, signalled)
        with self._lock:
            self._running[attempt.key] = running
        if started_ref is not None:  # (a plain task has no timeout to start)
            started_ref.future().add_done_callback(functools.partial(self._started, running))
            self._after(running, NOTE_AFTER_SECONDS, functools.partial(self._note, running))
            if self.pending_timeout is not None:
                expire = functools.partial(self._waited_too_long, running)
                self._after(running, self.pending_timeout, expire)
        future: Future[Any] = ended_ref.future()
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
        self.clock.close()
        problems = [f"logs could not be stored: {problem}" for problem in self.logs.close()]
        self.cluster.disconnect()
        if self._log_dir:
            with contextlib.suppress(OSError):
                remove_tree(Path(self._log_dir).parent)
        return problems

    # ------------------------------------------------------------------ waiting and starting

    def _started(self, running: _Running, future: Future[Any]) -> None:
        """(On a Ray thread.) A signalled task said it runs: its clock starts now."""
        try:
            future.result()
        except Exception:
            return  # it ended before it ran (cancelled, or its worker died): `_done` reports
        attempt = running.attempt
        with self._lock:
            if running.ended or running.started or running.stop_reason is not None:
                return
            running.started = True
            for due in running.dues:  # its waiting note and pending timeout
                due.cancel()
            running.dues.clear()
            if running.noted:  # the step's progress as it was before it waited
                total = attempt.step.retry.retries + 1
                detail = f"attempt {attempt.number}/{total}" if total > 1 else ""
                self._send(AttemptNote(attempt, detail))
        self._start_clock(running)

    def _start_clock(self, running: _Running) -> None:
        """Starts the attempt's timeout (a command's is a backstop: the task keeps it)."""
        attempt = running.attempt
        timeout = attempt.timeout_seconds
        if not timeout:
            return
        if attempt.step.command.kind != "call":
            timeout += attempt.kill_grace_seconds + COMMAND_BACKSTOP_SECONDS
        self._after(running, timeout, functools.partial(self._stop, running, "timeout"))

    def _note(self, running: _Running) -> None:
        """(On the clock.) A signalled task still waits in Ray's queue: its step says why."""
        reason, _ = self._capacity.waiting_reason(_need(running.attempt))
        detail = f"waiting for a Ray node: {reason}"
        if self.pending_timeout is not None:
            detail += f" (fails after {self.pending_timeout:g}s of waiting: `{PENDING_TIMEOUT}`)"
        with self._lock:  # (a note sent after `_started`'s would outlive the wait)
            if running.started or running.ended or running.stop_reason is not None:
                return
            running.noted = True
            self._send(AttemptNote(running.attempt, detail))
        self._after(running, NOTE_EVERY_SECONDS, functools.partial(self._note, running))

    def _waited_too_long(self, running: _Running) -> None:
        """(On the clock.) A task still waits after `pending_timeout`: it is cancelled and its
        step fails, not retried when no live node could ever hold it."""
        with self._lock:
            if running.started or running.ended or running.stop_reason is not None:
                return
        reason, fits = self._capacity.waiting_reason(_need(running.attempt))
        running.stop_detail = (
            f"it waited {self.pending_timeout:g}s for a Ray node (`{PENDING_TIMEOUT}`): {reason}"
        )
        running.retryable = fits
        self._stop(running, "pending")

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
            ray.cancel(running.task, force=False)
        self._after(running, grace + STOP_MARGIN_SECONDS, functools.partial(self._force, running))

    def _force(self, running: _Running) -> None:
        import ray

        with self._lock:
            if running.attempt.key not in self._running:
                return
        with contextlib.suppress(Exception):
            ray.cancel(running.task, force=True)

    def _after(self, running: _Running, seconds: float, action: Any) -> None:
        due = self.clock.after(seconds, action)
        with self._lock:
            running.dues.append(due)

    def _send(self, event: AttemptEnded | AttemptNote) -> None:
        if self._report is not None:
            self._report(event)

    def _done(self, running: _Running, future: Future[Any]) -> None:
        """(On a Ray thread.) The task ended: its value, or how Ray says it failed."""
        with self._lock:
            self._running.pop(running.attempt.key, None)
            running.ended = True
            dues, running.dues = running.dues, []
        for due in dues:
            due.cancel()
        attempt = running.attempt
        try:
            value: Mapping[str, Any] | None = future.result()
            problem = None
        except Exception as exc:
            value, problem = None, _ray_failure(exc)
        if running.stop_reason == "pending":
            detail = running.stop_detail
            result = TaskResult(-15, detail)
            self._ended(attempt, result=result, error=detail, retryable=running.retryable)
        elif running.stop_reason == "timeout":
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
        `result` overrides how it ended), else with a log mlc writes for it; logs go into the
        store with the next batch."""
        ended = attempt_ended(
            self.store,
            attempt,
            value,
            result=result,
            error=error,
            retryable=retryable,
            put=self.logs.put,
        )
        self._send(ended)


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


def pending_timeout(target: Target | None) -> float | None:
    """The target's `pending_timeout` in seconds, or None (no limit, or not a duration)."""
    value = target.settings.get(PENDING_TIMEOUT) if target else None
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        return None
    return float(value)


def _need(attempt: Attempt) -> dict[str, float]:
    reservation = attempt.reservation
    return dict(reservation.need) if isinstance(reservation, Reservation) else {}


@functools.cache
def _remote(*, gpu: bool, signalled: bool) -> Any:
    """The Ray remote function that runs attempts: in shared workers, or for GPU steps in
    workers that exit after one task; signalled or not (see the module docstring)."""
    import ray
    from mlc.backends.ray.task import run_attempt, run_attempt_signalled

    function: Any = run_attempt_signalled if signalled else run_attempt
    return ray.remote(max_calls=1)(function) if gpu else ray.remote(function)
