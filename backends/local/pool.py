"""A pool of long-lived worker processes (`python -m mlc.runtime.worker`), one task at a time.

Workers are started on demand and reused, so a `call` step imports its function in a warm
process instead of paying for a fresh interpreter. Each worker leads its own process group:
stopping a task (timeout, cancel) kills the group, worker and children alike, and the pool
starts a new worker next time. Workers are keyed by the `CUDA_VISIBLE_DEVICES` they were
started with, because CUDA reads it once per process.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

from mlc.runtime.process import group_alive, signal_group, terminate_group
from mlc.runtime.task import TaskResult

CUDA_VARIABLE = "CUDA_VISIBLE_DEVICES"


class WorkerDied(Exception):
    """The worker process ended while it owed a report."""

    def __init__(self, result: TaskResult) -> None:
        super().__init__(result.error)
        self.result = result


class Worker:
    """One worker process and the two pipes to it."""

    def __init__(self, env: Mapping[str, str], cuda: str | None, stderr_path: str) -> None:
        self.cuda = cuda
        tasks_read, tasks_write = os.pipe()
        results_read, results_write = os.pipe()
        worker_env = dict(env)
        if cuda is not None:
            worker_env[CUDA_VARIABLE] = cuda
        with open(stderr_path, "ab") as stderr:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "mlc.runtime.worker", str(tasks_read), str(results_write)],
                env=worker_env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                pass_fds=(tasks_read, results_write),
                start_new_session=True,
            )
        os.close(tasks_read)
        os.close(results_write)
        self._tasks = os.fdopen(tasks_write, "w", encoding="utf-8")
        self._results = results_read
        self._buffer = b""

    @property
    def pid(self) -> int:
        """The worker's process id, which is also its process group id."""
        return self.process.pid

    def alive(self) -> bool:
        """True while the worker process runs."""
        return self.process.poll() is None

    def send(self, message: Mapping[str, Any]) -> None:
        """Hands the worker an attempt (see `mlc.runtime.worker` for the message)."""
        self._tasks.write(json.dumps(message) + "\n")
        self._tasks.flush()

    def receive(self, deadline: float | None) -> dict[str, Any] | None:
        """The worker's next report; None when the deadline passed first. Raises `WorkerDied`
        (saying how) when the worker is gone."""
        while b"\n" not in self._buffer:
            wait = None if deadline is None else max(0.0, deadline - time.monotonic())
            ready, _, _ = select.select([self._results], [], [], wait)
            if not ready:
                return None
            chunk = os.read(self._results, 65536)
            if not chunk:
                raise WorkerDied(self._death())
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        report: dict[str, Any] = json.loads(line)
        return report

    def _death(self) -> TaskResult:
        code = self.process.wait()
        if code < 0:
            return TaskResult(code, f"killed by signal {signal.Signals(-code).name}")
        return TaskResult(code or 1, f"the worker exited with code {code}")

    def close(self) -> None:
        """Tells an idle worker to exit (it reads the end of its task pipe); does not wait."""
        with contextlib.suppress(OSError):
            self._tasks.close()
        os.close(self._results)

    def discard(self) -> None:
        """Releases the pipes of a worker that was killed."""
        with contextlib.suppress(OSError):
            self._tasks.close()
        self.process.wait()
        os.close(self._results)


class WorkerPool:
    """Idle workers by `CUDA_VISIBLE_DEVICES` value; busy ones are held by their callers (the
    executor stops a busy one's group with `kill` or `kill_groups`)."""

    def __init__(self, env: Mapping[str, str], stderr_path: str) -> None:
        self._env = dict(env)
        self._stderr_path = stderr_path
        self._idle: dict[str | None, list[Worker]] = {}
        self._lock = threading.Lock()
        self.started = 0

    def acquire(self, cuda: str | None) -> Worker:
        """An idle worker with this CUDA visibility, or a new one."""
        with self._lock:
            idle = self._idle.get(cuda, [])
            while idle:
                worker = idle.pop()
                if worker.alive():
                    return worker
                worker.discard()
            self.started += 1
        return Worker(self._env, cuda, self._stderr_path)

    def start(self, count: int, cuda: str | None) -> None:
        """Starts idle workers ahead of need (up to `count` idle ones for this visibility)."""
        with self._lock:
            missing = count - len(self._idle.get(cuda, []))
        for _ in range(missing):
            worker = Worker(self._env, cuda, self._stderr_path)
            with self._lock:
                self.started += 1
                self._idle.setdefault(cuda, []).append(worker)

    def release(self, worker: Worker) -> None:
        """Returns a worker after its task; a dead one is discarded."""
        with self._lock:
            if worker.alive():
                self._idle.setdefault(worker.cuda, []).append(worker)
                return
        worker.discard()

    def kill(self, worker: Worker, grace_seconds: float) -> None:
        """Stops a busy worker's group: SIGTERM, `grace_seconds`, then SIGKILL."""
        terminate_group(worker.pid, grace_seconds, reap=worker.process)

    def shutdown(self, timeout_seconds: float = 30.0) -> None:
        """Closes the idle workers and waits for them to exit: a worker writes a step's cache
        entry after reporting its outputs, so it may still be finishing one. Busy workers
        must have been released or killed."""
        with self._lock:
            idle = [w for workers in self._idle.values() for w in workers]
            self._idle.clear()
        for worker in idle:
            worker.close()
        deadline = time.monotonic() + timeout_seconds
        for worker in idle:
            try:
                worker.process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                signal_group(worker.pid, signal.SIGKILL)
                worker.process.wait()


def kill_groups(
    pgids: Sequence[int], grace_seconds: float, reap: Sequence[subprocess.Popen[bytes]] = ()
) -> None:
    """SIGTERM to every group, a shared grace period, then SIGKILL to what is left.

    `reap` are the group leaders that are our children: they are waited for as they exit,
    since a leader left a zombie keeps its group alive to the end of the grace period (a
    worker released just before the cancel has nobody else waiting for it)."""
    for pgid in pgids:
        signal_group(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace_seconds
    while time.monotonic() < deadline:
        for leader in reap:
            leader.poll()
        if not any(group_alive(p) for p in pgids):
            break
        time.sleep(0.02)
    for pgid in pgids:
        signal_group(pgid, signal.SIGKILL)
