"""What `mlc apply` shows while it runs: a live table on a terminal, plain lines elsewhere."""

from __future__ import annotations

import io

import pytest
from mlc.cli import progress
from mlc.cli.progress import LiveProgress, PlainProgress
from mlc.runtime.report import UnitUpdate

ERASE = "\x1b["


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
    """The table as last drawn (after the last erase sequence)."""
    text = stream.getvalue()
    start = text.rfind("\x1b[J")
    return text[start + len("\x1b[J") :].splitlines() if start != -1 else text.splitlines()


def test_plain_lines_say_what_changed_and_why() -> None:
    stream = io.StringIO()
    shown = PlainProgress(stream)
    shown.run_started("r1", "p", ["prepare", "train"])
    shown.unit_changed(UnitUpdate("prepare", "pending"))
    shown.unit_changed(UnitUpdate("prepare", "waiting", "it has not run before"))
    shown.unit_changed(UnitUpdate("prepare", "running"))
    shown.unit_changed(UnitUpdate("prepare", "ran", elapsed_s=1.25))
    shown.unit_changed(UnitUpdate("train", "cached"))
    assert stream.getvalue().splitlines() == [
        "run r1: pipeline p, 2 steps",
        "prepare: will run because it has not run before",
        "prepare: running",
        "prepare: ran in 1.2s",
        "train: cached",
    ]


def test_a_small_run_is_a_table_with_a_row_per_step(clock: Clock) -> None:
    stream = io.StringIO()
    shown = LiveProgress(stream, colour=False)
    shown.run_started("r1", "p", ["prepare", "train"])
    shown.unit_changed(UnitUpdate("prepare", "running"))
    clock.now += 2.0
    shown.unit_changed(UnitUpdate("prepare", "ran", elapsed_s=2.0))
    shown.unit_changed(UnitUpdate("train", "running"))
    shown.close()
    frame = last_frame(stream)
    assert frame[0] == "run r1: pipeline p"
    assert frame[1].split() == ["✓", "prepare", "ran", "2.0s"]
    assert frame[2].split()[:3] == ["▸", "train", "running"]


def test_thousands_of_changes_are_drawn_a_few_times_a_second_not_each(clock: Clock) -> None:
    stream = io.StringIO()
    shown = LiveProgress(stream, colour=False)
    names = [f"work[{i}]" for i in range(10_000)]
    shown.run_started("r1", "big", names)
    drawn_at_start = stream.getvalue().count(ERASE)
    for name in names[:6000]:
        shown.unit_changed(UnitUpdate(name, "running"))
        shown.unit_changed(UnitUpdate(name, "ran", elapsed_s=0.001))
    for name in names[6000:6005]:
        shown.unit_changed(UnitUpdate(name, "running"))
    assert stream.getvalue().count(ERASE) == drawn_at_start  # the clock did not move
    clock.now += LiveProgress.REDRAW_SECONDS
    shown.tick()
    # More steps than the terminal has lines: one line of counts, running steps in the order
    # they started.
    assert last_frame(stream) == [
        "run r1: pipeline big",
        "  3995 pending, 5 running, 6000 ran — running: work[6000], work[6001], work[6002], "
        "work[6003] …",
    ]
    for name in names[6000:]:
        if name not in names[6000:6005]:
            shown.unit_changed(UnitUpdate(name, "running"))
        shown.unit_changed(UnitUpdate(name, "ran", elapsed_s=0.001))
    shown.close()
    assert last_frame(stream) == ["run r1: pipeline big", "  10000 ran"]
