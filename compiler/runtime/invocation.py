"""Invocations: what actually runs. A step runs once, a `foreach` step once per item."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlc.ir.model import Step, step_id


@dataclass(frozen=True, slots=True)
class Invocation:
    """One run of one step: the step itself, or one item of a `foreach` step."""

    step: Step
    index: int | None = None
    """The item's position in `foreach.items`; None for a step without `foreach`."""
    item: Any = None

    @property
    def name(self) -> str:
        """`train`, or `train[2]` for the third item of a `foreach` step."""
        return self.step.name if self.index is None else f"{self.step.name}[{self.index}]"

    @property
    def lineage_id(self) -> str:
        """The step id recorded in lineage: `step:train` or `step:train[2]`."""
        return step_id(self.name)

    @property
    def foreach_binding(self) -> dict[str, Any]:
        """`{var: item}` for a foreach item, else empty."""
        if self.step.foreach is None or self.index is None:
            return {}
        return {self.step.foreach.var: self.item}


def invocations_of(step: Step) -> list[Invocation]:
    """The invocations of a step, in item order."""
    if step.foreach is None:
        return [Invocation(step)]
    return [Invocation(step, index, item) for index, item in enumerate(step.foreach.items)]
