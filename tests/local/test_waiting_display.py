"""While a step waits, the display says for what: the resources it asks for and how much of
them other steps hold, or the time left before a failed attempt is tried again (counted down
on a terminal)."""

from __future__ import annotations

import io

import pytest
from mlc.backends.local.inventory import GpuSlot, Machine
from mlc.backends.local.resources import ResourceLedger
from mlc.cli import progress
from mlc.cli.progress import LiveProgress, PlainProgress
from mlc.ir.model import GpuRequest
from mlc.runtime.report import UnitUpdate

from tests.runtime.builders import sh, step

GIB = 2**30


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(progress.time, "monotonic", fake)
    return fake


def last_frame(stream: io.StringIO) -> list[str]:
    text = stream.getvalue()
    start = text.rfind("\x1b[J")
    return text[start + len("\x1b[J") :].splitlines() if start != -1 else text.splitlines()


def test_the_ledger_says_what_a_request_waits_for() -> None:
    ledger = ResourceLedger(
        Machine(2000, 8 * GIB, (GpuSlot(0, "t4"), GpuSlot(1, "t4")), gpu_source="test")
    )
    two_cpus = step("a", sh("true"), cpu_millis=2000, memory_bytes=2 * GIB).resources
    assert ledger.why_waiting(two_cpus) is None
    held = ledger.try_reserve(step("b", sh("true"), cpu_millis=1000).resources)
    assert ledger.why_waiting(two_cpus) == "waiting for 2 CPUs (1 of 2 in use)"
    ledger.try_reserve(
        step("c", sh("true"), cpu_millis=0, memory_bytes=7 * GIB, gpu=GpuRequest(count=2)).resources
    )
    assert ledger.why_waiting(two_cpus) == (
        "waiting for 2 CPUs (1 of 2 in use) and 2.0 GiB of memory (7.0 GiB of 8.0 GiB in use)"
    )
    one_t4 = step("d", sh("true"), cpu_millis=0, gpu=GpuRequest(count=1, accelerator="t4"))
    assert ledger.why_waiting(one_t4.resources) == "waiting for 1 `t4` GPU (2 of 2 in use)"
    ledger.release(held)
    assert ledger.why_waiting(step("e", sh("true"), cpu_millis=1000).resources) is None


def test_plain_lines_say_what_a_step_waits_for_and_when_it_is_retried() -> None:
    stream = io.StringIO()
    shown = PlainProgress(stream)
    shown.unit_changed(
        UnitUpdate("train", "waiting", waiting_for="waiting for 2 CPUs (2 of 2 in use)")
    )
    shown.unit_changed(
        UnitUpdate("fit", "waiting", "attempt 1 failed (exit 3); retrying in 30s", retry_in_s=30)
    )
    assert stream.getvalue().splitlines() == [
        "train: waiting for 2 CPUs (2 of 2 in use)",
        "fit: attempt 1 failed (exit 3); retrying in 30s",
    ]


def test_the_table_counts_a_retry_down_and_shows_what_a_step_waits_for(clock: Clock) -> None:
    stream = io.StringIO()
    shown = LiveProgress(stream, colour=False)
    shown.run_started("r1", "p", ["fit", "train"])
    shown.unit_changed(
        UnitUpdate("fit", "waiting", "attempt 1 failed (exit 3); retrying in 30s", retry_in_s=30)
    )
    shown.unit_changed(UnitUpdate("train", "waiting", "it has not run before"))
    shown.unit_changed(
        UnitUpdate("train", "waiting", waiting_for="waiting for 2 CPUs (2 of 2 in use)")
    )
    clock.now += 12.4
    shown.tick()
    frame = last_frame(stream)
    assert frame[1].split("  ")[-1] == "attempt 1 failed (exit 3); retrying in 18s"
    assert frame[2].endswith("waiting for 2 CPUs (2 of 2 in use); it has not run before"), frame[2]
    clock.now += 60
    shown.tick()
    assert last_frame(stream)[1].endswith("retrying in 0s")
