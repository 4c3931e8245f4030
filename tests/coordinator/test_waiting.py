"""Waiting units: visited in pipeline order, a step at a time, and kept until they start."""

from __future__ import annotations

from collections.abc import Collection

from mlc.coordinator.units import Unit
from mlc.coordinator.waiting import WaitingUnits
from mlc.runtime.invocation import invocations_of

from tests.runtime.builders import sh, step

REQUEST = ("cpu", 1000)


class Queue:
    """Step 0 with units at positions 0-2, step 1 with units at 3-4, added out of order."""

    def __init__(self) -> None:
        self.waiting = WaitingUnits()
        self.units = [Unit(next(iter(invocations_of(step(f"s{i}", sh("true")))))) for i in range(5)]
        for position in (4, 1, 3, 0, 2):
            self.add(position)

    def add(self, position: int) -> None:
        self.waiting.add(self.units[position], position, 0 if position < 3 else 1, REQUEST)

    def visit(self, start: Collection[int] = (), stop_at: Collection[int] = ()) -> list[int]:
        """One pass: starts the units at `start`; a step is left at a unit in `stop_at`."""
        seen = []
        for step_position in self.waiting.steps():
            for unit in self.waiting.units_of(step_position):
                position = self.units.index(unit)
                seen.append(position)
                if position in start:
                    self.waiting.remove(position, REQUEST)
                if position in stop_at:
                    break
        return seen


def test_a_pass_visits_steps_and_their_units_in_pipeline_order() -> None:
    queue = Queue()
    assert queue.visit() == [0, 1, 2, 3, 4]
    assert len(queue.waiting) == 5 and queue.waiting.requests == {REQUEST: 5}


def test_units_passed_over_or_where_a_step_stopped_stay_for_the_next_pass() -> None:
    queue = Queue()
    # Unit 0 starts; the step is left at unit 1 (it cannot start more): unit 2 is not visited.
    assert queue.visit(start={0}, stop_at={1}) == [0, 1, 3, 4]
    assert queue.visit(start={1, 3}) == [1, 2, 3, 4]
    assert queue.visit() == [2, 4]
    assert len(queue.waiting) == 2 and queue.waiting.requests == {REQUEST: 2}


def test_a_unit_that_waits_again_is_visited_again_and_a_started_step_is_dropped() -> None:
    queue = Queue()
    queue.visit(start={0, 1, 2})
    assert queue.visit() == [3, 4]
    queue.add(1)  # a retry waits again
    assert queue.visit() == [1, 3, 4]
    queue.visit(start={1, 3, 4})
    assert queue.visit() == [] and len(queue.waiting) == 0 and queue.waiting.requests == {}
