"""One thread that runs actions at their due times: the Ray executor's timeouts, pending
timeouts and waiting notes.

A `threading.Timer` per attempt would be a thread per running step (thousands in a large
`foreach`); here every deadline is an entry in one heap, and an action whose attempt has moved
on is cancelled by its handle (or finds out for itself when it runs).
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(slots=True)
class Due:
    """A scheduled action; `cancel()` keeps it from running."""

    action: Callable[[], None]
    cancelled: bool = field(default=False)

    def cancel(self) -> None:
        """It will not run (if it has not already)."""
        self.cancelled = True


class Clock:
    """Runs actions at their due times on one daemon thread, started on first use."""

    def __init__(self, name: str = "mlc-ray-clock") -> None:
        self._name = name
        self._heap: list[tuple[float, int, Due]] = []
        self._order = itertools.count()
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False

    def after(self, seconds: float, action: Callable[[], None]) -> Due:
        """Runs `action` in `seconds` (on the clock's thread; it must not block for long)."""
        due = Due(action)
        with self._wake:
            if self._closed:
                due.cancelled = True
                return due
            heapq.heappush(self._heap, (time.monotonic() + seconds, next(self._order), due))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
            self._wake.notify()
        return due

    def close(self) -> None:
        """Runs nothing more."""
        with self._wake:
            self._closed = True
            self._heap.clear()
            self._wake.notify()

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._closed and (not self._heap or self._heap[0][0] > time.monotonic()):
                    wait = self._heap[0][0] - time.monotonic() if self._heap else None
                    self._wake.wait(wait)
                if self._closed:
                    return
                _, _, due = heapq.heappop(self._heap)
            if not due.cancelled:
                try:
                    due.action()
                except Exception:  # one failing action must not stop the others' clock
                    import traceback

                    traceback.print_exc()
