"""The units waiting to start, visited in pipeline order one step at a time.

A `foreach` step may have thousands of units waiting while only a few can run (a full
`parallelism`, a resource request that does not fit): the coordinator looks at a step's units
only until one cannot start, and skips a step that cannot start any in one step. A pass
therefore costs what it starts and what it finds blocked, not the number of units waiting.
Positions are the units' places in the pipeline's order; each step's units are consecutive,
so visiting steps in order and each step's units in order is pipeline order.
"""

from __future__ import annotations

import heapq
from collections.abc import Hashable, Iterator

from mlc.coordinator.units import Unit


class WaitingUnits:
    """Waiting units by position, grouped by step, with a count per resource request."""

    def __init__(self) -> None:
        self._units: dict[int, Unit] = {}
        self._by_step: dict[int, list[int]] = {}
        """Per step position, a heap of unit positions (possibly of units no longer waiting)."""
        self._steps: list[int] = []
        """A heap of the step positions that may have waiting units."""
        self._queued: set[int] = set()
        self.requests: dict[Hashable, int] = {}
        """How many waiting units ask for each resource request."""

    def __len__(self) -> int:
        return len(self._units)

    def add(self, unit: Unit, position: int, step_position: int, request: Hashable) -> None:
        """A unit starts waiting."""
        self._units[position] = unit
        self.requests[request] = self.requests.get(request, 0) + 1
        heapq.heappush(self._by_step.setdefault(step_position, []), position)
        self._queue(step_position)

    def remove(self, position: int, request: Hashable) -> None:
        """A unit stops waiting (it started, or ended without starting)."""
        del self._units[position]
        self.requests[request] -= 1
        if not self.requests[request]:
            del self.requests[request]

    def steps(self) -> Iterator[int]:
        """The positions of the steps with waiting units, in order. Each step stays queued
        for the next pass while it has waiting units, however the iteration ends."""
        visited: list[int] = []
        try:
            while self._steps:
                step_position = heapq.heappop(self._steps)
                self._queued.discard(step_position)
                visited.append(step_position)
                yield step_position
        finally:
            for step_position in visited:
                if self._live(step_position):
                    self._queue(step_position)

    def units_of(self, step_position: int) -> Iterator[Unit]:
        """The step's waiting units in order; those still waiting when the iteration ends
        (passed over, or where it stopped) stay queued."""
        heap = self._by_step.get(step_position, [])
        passed: list[int] = []
        try:
            while heap:
                position = heapq.heappop(heap)
                unit = self._units.get(position)
                if unit is None or (passed and position == passed[-1]):
                    continue  # no longer waiting, or listed twice
                passed.append(position)
                yield unit
        finally:
            for position in passed:
                if position in self._units:
                    heapq.heappush(heap, position)

    def _live(self, step_position: int) -> bool:
        heap = self._by_step.get(step_position)
        while heap and heap[0] not in self._units:
            heapq.heappop(heap)
        if not heap:
            self._by_step.pop(step_position, None)
            return False
        return True

    def _queue(self, step_position: int) -> None:
        if step_position not in self._queued:
            self._queued.add(step_position)
            heapq.heappush(self._steps, step_position)
