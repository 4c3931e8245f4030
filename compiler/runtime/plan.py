"""`mlc plan`: for every invocation, "cached" or "will run because …", before anything runs.

The plan walks the DAG in order with what the store already knows. A step whose inputs are all
known (datasets, or outputs of cached steps) gets its exact cache key and a precise decision; a
step downstream of one that will run cannot know its input digests yet, so it will run because
that input comes from a step that runs. Gates whose metrics are already known are evaluated.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from mlc.ir.graph import steps_in_order
from mlc.ir.model import IRDocument, Step
from mlc.runtime.cache_key import cache_key_parts
from mlc.runtime.code_digest import CodeDigests
from mlc.runtime.context import RunInfo
from mlc.runtime.decisions import Action, decide
from mlc.runtime.errors import ConditionFailure
from mlc.runtime.gates import gate_known, gate_open
from mlc.runtime.invocation import invocations_of
from mlc.runtime.wiring import OutputDigests, wire_inputs
from mlc.store.base import Store
from mlc.store.digest import Digest
from mlc.store.lineage import Lineage

PLAN_RUN_ID = "plan"


@dataclass(frozen=True, slots=True)
class PlannedInvocation:
    """The plan for one invocation."""

    name: str
    step: str
    action: Action
    reasons: list[str] = field(default_factory=list)
    cache_key: str | None = None
    cached_from: str | None = None
    """The run whose execution produced the cached outputs."""

    def to_json(self) -> dict[str, Any]:
        """A plain dict for `--format json`."""
        return {
            "name": self.name,
            "step": self.step,
            "action": self.action,
            "reasons": self.reasons,
            "cache_key": self.cache_key,
            "cached_from": self.cached_from,
        }


@dataclass(slots=True)
class Plan:
    """The plan of a pipeline: one entry per invocation, in run order."""

    pipeline: str
    entries: list[PlannedInvocation] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def count(self, action: Action) -> int:
        """How many invocations have this action."""
        return sum(1 for entry in self.entries if entry.action == action)

    def to_json(self) -> dict[str, Any]:
        """A plain dict for `--format json`."""
        return {
            "pipeline": self.pipeline,
            "steps": [entry.to_json() for entry in self.entries],
            "summary": {action: self.count(action) for action in ("cached", "run", "skip")},
            "warnings": self.warnings,
        }


def make_plan(
    document: IRDocument,
    store: Store,
    lineage: Lineage | None,
    datasets: Mapping[str, Digest],
    *,
    rerun: Collection[str] = (),
) -> Plan:
    """Plans every invocation of the document (see the module docstring)."""
    pipeline = document.pipeline.name
    plan = Plan(pipeline)
    produced: dict[str, OutputDigests] = {}
    skipped: set[str] = set()
    code_digests = CodeDigests.for_store(document.base_dir, store)
    for step in steps_in_order(document):
        skip_reason = _skip_reason(step, store, produced, skipped)
        if skip_reason is not None:
            skipped.add(step.id)
            plan.entries += [
                PlannedInvocation(i.name, step.name, "skip", [skip_reason])
                for i in invocations_of(step)
            ]
            continue
        gate_note = (
            ["its condition is decided at run time"]
            if step.when is not None and not gate_known(step, produced)
            else []
        )
        wiring = wire_inputs(step, datasets, produced)
        if wiring.waiting_on:
            reasons = [
                f"input `{name}` comes from `{producer}`, which will run"
                for name, producer in wiring.waiting_on.items()
            ]
            plan.entries += [
                PlannedInvocation(i.name, step.name, "run", reasons + gate_note)
                for i in invocations_of(step)
            ]
            continue
        code = code_digests.of(step)
        outputs: dict[str, list[Digest]] = {}
        all_cached = True
        for invocation in invocations_of(step):
            status = "running" if not step.is_finally else "succeeded"
            parts = cache_key_parts(
                invocation,
                code=code,
                input_digests=wiring.digests,
                run=RunInfo(PLAN_RUN_ID, status),
            )
            decision = decide(
                invocation, parts, store=store, lineage=lineage, pipeline=pipeline, rerun=rerun
            )
            entry = decision.entry
            plan.entries.append(
                PlannedInvocation(
                    invocation.name,
                    step.name,
                    decision.action,
                    decision.reasons + (gate_note if decision.action == "run" else []),
                    decision.cache_key,
                    entry.run_id if entry is not None else None,
                )
            )
            if entry is None:
                all_cached = False
                continue
            for name, output in entry.outputs.items():
                outputs.setdefault(name, []).append(output.digest)
        if all_cached:
            produced[step.id] = {
                name: digests if step.foreach is not None else digests[0]
                for name, digests in outputs.items()
            }
    code_digests.save()
    return plan


def _skip_reason(
    step: Step, store: Store, produced: Mapping[str, OutputDigests], skipped: set[str]
) -> str | None:
    for port in step.inputs:
        if port.source.node in skipped:
            producer = port.source.node.removeprefix("step:")
            return f"input `{port.name}` comes from `{producer}`, which will be skipped"
    if step.when is None or not gate_known(step, produced):
        return None
    try:
        is_open, text = gate_open(step, store, produced)
    except ConditionFailure:
        return None
    return None if is_open else f"its condition `{text}` is false"
