"""Ctrl-C lands between the coordinator's bookings, never inside one: an attempt handed to the
executor when the signal came is known to the run, so cancelling stops it instead of waiting
for a report that cannot come."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from mlc.coordinator import RunSettings, apply_run
from mlc.coordinator.interrupts import deferred_interrupts
from mlc.runtime.attempt import Attempt
from mlc.store.base import Store
from mlc.store.uri import open_store

from tests.coordinator.fake_executor import FakeExecutor
from tests.runtime.builders import document, out, sh, step


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = open_store(tmp_path / "store")
    yield opened
    opened.close()


def test_a_signal_inside_the_block_is_acted_on_when_it_ends() -> None:
    done = []
    with pytest.raises(KeyboardInterrupt), deferred_interrupts():
        os.kill(os.getpid(), signal.SIGINT)
        done.append("the rest of the block")
    assert done == ["the rest of the block"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_held_signal_goes_to_the_handler_that_was_in_place() -> None:
    seen: list[int] = []
    previous = signal.signal(signal.SIGTERM, lambda number, frame: seen.append(number))
    try:
        with deferred_interrupts():
            os.kill(os.getpid(), signal.SIGTERM)
            assert seen == []
        assert seen == [signal.SIGTERM]
    finally:
        signal.signal(signal.SIGTERM, previous)


class CtrlCWhileStarting(FakeExecutor):
    """Ctrl-C is pressed while the executor is taking the attempt, before it has booked it."""

    def start(self, attempt: Attempt) -> None:
        os.kill(os.getpid(), signal.SIGINT)
        super().start(attempt)


def test_ctrl_c_while_an_attempt_is_handed_over_cancels_that_attempt(
    store: Store, tmp_path: Path
) -> None:
    executor = CtrlCWhileStarting(store, script={"a": ["hold"]})
    doc = document(tmp_path, [step("a", sh("true"), outputs=[out("out")])])
    report = apply_run(
        doc,
        executor,
        store=store,
        environ={},
        settings=RunSettings(kill_grace_seconds=0.5, target="test"),
    )
    assert report.status == "cancelled"
    assert [a.name for a in executor.cancelled] == ["a"]
    assert {s.name: s.status for s in report.steps} == {"a": "cancelled"}
