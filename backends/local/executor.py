"""The local executor: attempts run in a pool of long-lived worker processes on this machine.

The coordinator (`mlc.coordinator.run`) decides; this module only carries attempts out. For
each attempt it takes a worker (keyed by the GPUs the reservation holds), renders the attempt
into the worker's own attempt directory and log file, and hands it over; a small attempt
thread then waits for the worker's two reports, killing the worker's process group at the
step's timeout, takes the attempt's part of the worker's log, stores the step's log and
reports the end to the coordinator.

Attempts die with their coordinator (a worker kills its group when its parent is gone), so
there is nothing to re-attach to: a killed run resumes through the cache.
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import threading
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

from mlc.backends.local.attempt_threads import AttemptThreads
from mlc.backends.local.inventory import Machine
from mlc.backends.local.pool import CUDA_VARIABLE, Worker, WorkerDied, WorkerPool, kill_groups
from mlc.backends.local.resources import Grant, ResourceLedger
from mlc.backends.local.workspace import RunWorkspace
from mlc.coordinator.executor import AttemptEnded, KnownAttempt, Report
from mlc.ir.model import IRDocument
from mlc.runtime.attempt import Attempt, Collected, render_attempt
from mlc.runtime.cache_entries import CachedOutput
from mlc.runtime.errors import StepFailure
from mlc.runtime.log_batches import LogBatches
from mlc.runtime.step_logs import LogPart, failure_note, store_log
from mlc.runtime.task import TaskResult
from mlc.runtime.workdir import remove_tree
from mlc.store.base import Store
from mlc.store.errors import StoreError
from mlc.store.uri import store_address


@dataclass(slots=True)
class _Outcome:
    """What one attempt thread learns of its attempt."""

    attempt: Attempt
    result: TaskResult | None = None
    outputs: dict[str, CachedOutput] | None = None
    error: str | None = None
    notes: list[str] = field(default_factory=list)
    """What mlc adds to the attempt's log (an internal error's traceback)."""
    log_start: int = 0
    """Where the attempt's part of the worker's log file begins."""
    killed: bool = False
    """The worker was killed (timeout, cancel) or died before it reported."""
    root: Path | None = None
    """The attempt directory (the worker's)."""


class LocalExecutor:
    """Runs attempts in worker processes on this machine (see the module docstring)."""

    backend = "local"

    def __init__(
        self, store: Store, environ: Mapping[str, str], machine: Callable[[], Machine]
    ) -> None:
        self.store = store
        self.environ = dict(environ)
        self._machine = machine
        self.store_address = store_address(store)
        self.attempt_threads = AttemptThreads()
        self.logs = LogBatches(store)
        self._busy: dict[str, Worker] = {}
        """The worker of each running attempt, by attempt key."""
        self._busy_lock = threading.Lock()
        self._report: Report | None = None
        self._workspace: RunWorkspace | None = None
        self._pool: WorkerPool | None = None

    # ------------------------------------------------------------------ the interface

    @functools.cached_property
    def capacity(self) -> ResourceLedger:
        """This machine's CPUs, memory and GPU slots (found out when first needed: `mlc
        plan` never needs them)."""
        return ResourceLedger(self._machine())

    @property
    def gpus_present(self) -> bool:
        """Whether the machine has GPU slots (workers are then started per GPU set)."""
        return bool(self.capacity.machine.gpus)

    def check(self, document: IRDocument) -> list[str]:
        """Steps with a container image: local runs use the current Python environment."""
        ignored = set(document.target.ignore_unsupported) if document.target else set()
        imaged = [
            f"`{s.name}`" for s in document.pipeline.steps if s.image and "image" not in ignored
        ]
        if not imaged:
            return []
        if document.target is None:
            them = "it" if len(imaged) == 1 else "them"
            remedy = f'run {them} on a target that has `ignore_unsupported = ["image"]`'
        else:
            remedy = (
                f'add `ignore_unsupported = ["image"]` to target `{document.target.name}` to '
                "run without it"
            )
        steps = (
            "step " + imaged[0] + " sets" if len(imaged) == 1 else f"steps {', '.join(imaged)} set"
        )
        return [f"{steps} `image`, but local runs use the current Python environment; {remedy}"]

    def begin(self, run_id: str, document: IRDocument, report: Report) -> None:
        """Locks the run's workspace and starts workers ahead of need, so that they import
        while the coordinator sets the run up."""
        self._report = report
        self._workspace = RunWorkspace(str(getattr(self.store, "local_dir", ".mlc")), run_id)
        base_env = {k: v for k, v in self.environ.items() if k != CUDA_VARIABLE}
        self._pool = WorkerPool(base_env, str(self._workspace.workers_log))
        self._start_workers(document)

    def start(self, attempt: Attempt) -> None:
        """Renders the attempt for a worker and hands it over (see the module docstring)."""
        pool, workspace = self._running()
        outcome = _Outcome(attempt)
        worker = None
        try:
            grant = cast(Grant, attempt.reservation)
            cuda = grant.cuda_visible_devices if grant.gpus or self.gpus_present else None
            worker = pool.acquire(cuda)
            # Each worker reuses one attempt directory, emptied after every attempt: making
            # and deleting directories per step makes the filesystem slow to allocate inodes.
            root = outcome.root = workspace.scratch_dir(worker.pid)
            # The log goes to the worker's own file (see `WorkerLogs`).
            log_path = workspace.worker_logs.path(worker.pid)
            outcome.log_start, empty_log = workspace.worker_logs.begin(worker.pid)
            task, plan = render_attempt(
                attempt,
                root=str(root),
                log_path=log_path,
                environ=self.environ,
                extra_env={CUDA_VARIABLE: cuda} if cuda is not None else None,
                empty_log=empty_log,
            )
            with self._busy_lock:
                self._busy[attempt.key] = worker
            worker.send(
                {"store": self.store_address, "task": task.to_json(), "attempt": plan.to_json()}
            )
        except (StepFailure, StoreError) as exc:
            outcome.error = str(exc)
        except Exception as exc:  # an internal error must still end the attempt cleanly
            outcome.error = f"internal error: {type(exc).__name__}: {exc}"
            outcome.notes.append(traceback.format_exc())
        if outcome.error is not None or worker is None:
            if worker is not None:
                self._forget(attempt)
                pool.release(worker)
            self.attempt_threads.submit(self._conclude, outcome, None)
        else:
            self.attempt_threads.submit(self._see_through, worker, outcome)

    def cancel(self, attempts: Sequence[Attempt], grace_seconds: float) -> None:
        """Stops the attempts' worker groups at once: SIGTERM, one shared grace period,
        SIGKILL. Their attempt threads then report them."""
        with self._busy_lock:
            workers = [self._busy[a.key] for a in attempts if a.key in self._busy]
        kill_groups([w.pid for w in workers], grace_seconds, reap=[w.process for w in workers])

    def known_attempts(self, run_ids: Sequence[str]) -> list[KnownAttempt]:
        """None: a local attempt dies with the coordinator that started it."""
        return []

    def adopt(self, known: KnownAttempt, attempt: Attempt) -> None:
        """Never called: `known_attempts` reports none."""
        raise RuntimeError("local attempts cannot be adopted")

    def end(self) -> list[str]:
        """Waits for the attempt threads' clean-up, stores the last logs, closes the workers
        and removes the run's workspace."""
        self.attempt_threads.wait_idle(10.0)
        problems = [f"logs could not be stored: {problem}" for problem in self.logs.close()]
        if self._pool is not None:
            self._pool.shutdown()
        if self._workspace is not None:
            self._workspace.close()
        return problems

    # ------------------------------------------------------------------ one attempt

    def _running(self) -> tuple[WorkerPool, RunWorkspace]:
        if self._pool is None or self._workspace is None:
            raise RuntimeError("the local executor has not begun a run")
        return self._pool, self._workspace

    def _start_workers(self, document: IRDocument) -> None:
        """Starts as many workers as steps of the smallest CPU request can run at once (at
        most one per core). On a machine with GPUs they start on demand: each is started for
        a `CUDA_VISIBLE_DEVICES`."""
        pool, _ = self._running()
        if self.gpus_present:
            return
        steps = document.pipeline.steps
        smallest = min((s.resources.cpu_millis for s in steps), default=0)
        if smallest <= 0:
            return
        invocations = sum(len(s.foreach.items) if s.foreach else 1 for s in steps)
        fits = self.capacity.machine.cpu_millis // smallest
        pool.start(min(invocations, fits, os.cpu_count() or 1), None)

    def _forget(self, attempt: Attempt) -> None:
        with self._busy_lock:
            self._busy.pop(attempt.key, None)

    def _see_through(self, worker: Worker, outcome: _Outcome) -> None:
        """(On an attempt thread.) Waits for the worker's reports, takes the attempt's log
        from the worker's log file before the worker may start another, then concludes."""
        pool, workspace = self._running()
        part = None
        try:
            self._await(worker, outcome)
        except Exception as exc:  # an internal error must still end the attempt cleanly
            outcome.error = f"internal error: {type(exc).__name__}: {exc}"
            outcome.notes.append(traceback.format_exc())
        finally:
            self._forget(outcome.attempt)
            try:
                part = workspace.worker_logs.take(worker.pid, outcome.log_start)
            except OSError as exc:
                outcome.notes.append(f"--- mlc: the attempt's log could not be read: {exc} ---\n")
            pool.release(worker)
            self._conclude(outcome, part)

    def _await(self, worker: Worker, outcome: _Outcome) -> None:
        """Waits for the worker's two reports, killing it at the step's timeout."""
        attempt = outcome.attempt
        timeout = attempt.timeout_seconds
        deadline = time.monotonic() + timeout if timeout else None
        try:
            ended = worker.receive(deadline)
            if ended is None:
                pool, _ = self._running()
                pool.kill(worker, attempt.kill_grace_seconds)
                outcome.killed = True
                code = worker.process.returncode or -signal.SIGKILL
                outcome.result = TaskResult.timed_out_after(code, timeout or 0.0)
                return
            if ended["ended"] is not None:
                outcome.result = TaskResult(**ended["ended"])
            report = worker.receive(None)
        except WorkerDied as died:
            outcome.killed = True
            outcome.result = died.result
            return
        collected = Collected.from_json(report["collected"] if report else {})
        outcome.error = collected.error
        outcome.outputs = collected.outputs

    def _conclude(self, outcome: _Outcome, part: LogPart | None) -> None:
        """(On an attempt thread.) Adds what mlc has to say to the attempt's log, stores the
        log of every attempt so far and reports the end to the coordinator."""
        attempt = outcome.attempt
        notes = list(outcome.notes)
        if outcome.outputs is None:
            notes.append(failure_note(attempt.number, outcome.result, outcome.error))
        ended = AttemptEnded(
            attempt, result=outcome.result, outputs=outcome.outputs, error=outcome.error
        )
        # Stored here, off the coordinator's thread: the log is complete once the attempt
        # has ended (a retry stores the logs of both attempts again).
        try:
            stored = store_log(
                self.store,
                self.logs.put,
                attempt.earlier_log,
                part,
                "".join(notes).encode("utf-8"),
            )
        except (OSError, StoreError) as exc:
            ended.log_problem = str(exc)
        except Exception as exc:  # the end must reach the coordinator, or the run waits
            ended.log_problem = f"internal error: {type(exc).__name__}: {exc}"
        else:
            ended.log_ref, ended.log_tail, ended.log_whole = (
                stored.digest,
                stored.tail,
                stored.whole,
            )
        if self._report is not None:
            self._report(ended)
        if outcome.killed and outcome.root is not None:
            # The worker did not get to clean up; its directory dies with it.
            with contextlib.suppress(OSError):
                remove_tree(outcome.root)
