"""Reusable threads for the scheduler's per-attempt work (waiting for a worker's reports,
storing the log): starting a thread per attempt makes the scheduler wait for each new thread
to be scheduled; a job queue does not."""

from __future__ import annotations

import functools
import queue
import threading
import time
from collections.abc import Callable
from typing import ParamSpec

P = ParamSpec("P")


class AttemptThreads:
    """Daemon threads that take jobs from one queue, started as more jobs run at once."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle = 0
        self._busy = 0

    def submit(self, function: Callable[P, None], *args: P.args, **kwargs: P.kwargs) -> None:
        """Runs `function(*args)` on an idle thread, or on a new one when none is idle."""
        with self._lock:
            self._busy += 1
            start = self._idle == 0
            if not start:
                self._idle -= 1
        self._jobs.put(functools.partial(function, *args, **kwargs))
        if start:
            threading.Thread(target=self._serve, name="mlc-attempt", daemon=True).start()

    def busy(self) -> int:
        """How many jobs are queued or running."""
        with self._lock:
            return self._busy

    def wait_idle(self, timeout: float) -> None:
        """Waits (at most `timeout` seconds) until no job is queued or running."""
        deadline = time.monotonic() + timeout
        while self.busy() and time.monotonic() < deadline:
            time.sleep(0.005)

    def _serve(self) -> None:
        while True:
            job = self._jobs.get()
            try:
                job()
            finally:
                with self._lock:
                    self._busy -= 1
                    self._idle += 1
