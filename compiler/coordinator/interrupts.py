"""Ctrl-C held back while the coordinator changes its books.

Python raises `KeyboardInterrupt` wherever the main thread happens to be when SIGINT comes
(SIGTERM too, once `mlc apply` turns it into one). In the few lines that hand an attempt to the
executor, or book an attempt's end, that leaves the run half-changed: an attempt handed over
that nobody watches, a unit neither running nor ended. The run's cancellation then waits for a
report that never comes (ten seconds), and a loaded machine makes the window wider.
`deferred_interrupts` makes those lines whole: a signal that arrives inside is acted on as
they end, by the handler that was in place (so Ctrl-C still cancels at once after them).

It swaps Python-level handlers rather than blocking the signals: a blocked signal mask would
be inherited by the worker processes the executor may start inside. The swap goes through
`_signal`, the C module behind `signal`: `signal.signal` turns each number and handler into
an enum member and back, which made the swap cost 18 µs instead of 2, several times a step.
"""

from __future__ import annotations

import _signal
import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

HELD = (int(signal.SIGINT), int(signal.SIGTERM))


@contextmanager
def deferred_interrupts() -> Iterator[None]:
    """Holds SIGINT and SIGTERM for the duration of the block (main thread only; elsewhere,
    where Python never runs signal handlers, it does nothing)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[signal.Signals] = []

    def hold(signum: int, frame: FrameType | None) -> None:
        caught.append(signal.Signals(signum))

    previous = {number: _signal.signal(number, hold) for number in HELD}
    try:
        yield
    finally:
        for number, handler in previous.items():
            _signal.signal(number, handler)
        if caught:
            _deliver(caught[0], previous[caught[0]])


def _deliver(number: int, handler: object) -> None:
    """Acts on a held signal as its own handler would have."""
    if callable(handler):
        handler(number, None)  # Python's SIGINT handler raises KeyboardInterrupt here
    elif handler == signal.SIG_DFL:
        os.kill(os.getpid(), number)
