"""The Ray executor's clock: one thread runs every deadline, in order; a cancelled one never
runs (no Ray needed)."""

from __future__ import annotations

import threading

from mlc.backends.ray.clock import Clock


def test_actions_run_in_due_order_and_cancelled_ones_never() -> None:
    clock = Clock()
    ran: list[str] = []
    last = threading.Event()
    clock.after(2.0, lambda: (ran.append("late"), last.set()))
    clock.after(0.0, lambda: ran.append("first"))
    clock.after(1.0, lambda: ran.append("cancelled")).cancel()
    clock.after(0.05, lambda: ran.append("second"))
    assert last.wait(30)
    assert ran == ["first", "second", "late"]
    clock.close()
    assert clock.after(0.0, lambda: ran.append("closed")).cancelled


def test_a_failing_action_does_not_stop_the_clock() -> None:
    clock = Clock()
    done = threading.Event()

    def fail() -> None:
        raise RuntimeError("boom")

    clock.after(0.0, fail)
    clock.after(0.01, done.set)
    assert done.wait(30)
    clock.close()
