"""Wiring: the digest behind each input of a step, from datasets and upstream outputs.

An output of a `foreach` step is a list of digests, one per item in item order; a `fan_in`
input takes that list whole. `Produced` maps each finished step to its outputs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from mlc.ir.model import Step
from mlc.runtime.errors import StepFailure
from mlc.store.digest import Digest

OutputDigests = dict[str, "Digest | list[Digest]"]
Produced = Mapping[str, OutputDigests]
"""Step id -> output name -> digest (a list of digests for a `foreach` step)."""


@dataclass(frozen=True, slots=True)
class Wiring:
    """The inputs of a step whose digests are known, and the upstream steps still missing."""

    digests: dict[str, Digest | list[Digest]] = field(default_factory=dict)
    waiting_on: dict[str, str] = field(default_factory=dict)
    """Input name -> the upstream step whose output it needs and which has none (yet)."""


def wire_inputs(step: Step, datasets: Mapping[str, Digest], produced: Produced) -> Wiring:
    """The input digests of a step (the same for each of its foreach items)."""
    wiring = Wiring()
    for port in step.inputs:
        node = port.source.node
        if node.startswith("dataset:"):
            wiring.digests[port.name] = datasets[node.removeprefix("dataset:")]
            continue
        producer = node.removeprefix("step:")
        outputs = produced.get(node)
        if outputs is None or port.source.output not in outputs:
            wiring.waiting_on[port.name] = producer
            continue
        value = outputs[port.source.output or ""]
        if port.fan_in:
            wiring.digests[port.name] = list(value) if isinstance(value, list) else [value]
        elif isinstance(value, list):
            raise StepFailure(
                f"input `{port.name}` of step `{step.name}` takes the output of `foreach` step "
                f"`{producer}`, one per item; declare it as a list to collect them"
            )
        else:
            wiring.digests[port.name] = value
    return wiring
