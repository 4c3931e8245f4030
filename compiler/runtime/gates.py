"""Gates: a step's `when` condition, evaluated on the metrics its upstream steps produced."""

from __future__ import annotations

import json
from typing import Any

from mlc.ir.graph import condition_refs
from mlc.ir.model import MetricRef, Step
from mlc.runtime.conditions import MetricLookup, evaluate, explain, metric_name
from mlc.runtime.errors import ConditionFailure
from mlc.runtime.wiring import Produced
from mlc.store.base import Store
from mlc.store.digest import Digest
from mlc.store.errors import StoreError


def metric_reader(store: Store, produced: Produced) -> MetricLookup:
    """A lookup reading metrics outputs from the store (a list of values for a foreach step)."""
    documents: dict[str, dict[str, Any]] = {}

    def document(digest: str) -> dict[str, Any]:
        if digest not in documents:
            try:
                data = json.loads(store.read_bytes(Digest(digest)))
            except (StoreError, ValueError) as exc:
                raise ConditionFailure(f"cannot read metrics {digest[:19]}: {exc}") from None
            documents[digest] = data if isinstance(data, dict) else {}
        return documents[digest]

    def value(ref: MetricRef, digest: str) -> Any:
        data = document(digest)
        if ref.key not in data:
            raise ConditionFailure(f"`{metric_name(ref)}` is not in the metrics it produced")
        return data[ref.key]

    def lookup(ref: MetricRef) -> Any:
        outputs = produced.get(ref.step)
        if outputs is None or ref.output not in outputs:
            raise ConditionFailure(f"`{metric_name(ref)}` is unavailable")
        digests = outputs[ref.output]
        if isinstance(digests, list):
            return [value(ref, d) for d in digests]
        return value(ref, digests)

    return lookup


def gate_known(step: Step, produced: Produced) -> bool:
    """True when every metric the step's condition reads has been produced."""
    return all(
        ref.step in produced and ref.output in produced[ref.step]
        for ref in condition_refs(step.when)
    )


def gate_open(step: Step, store: Store, produced: Produced) -> tuple[bool, str]:
    """Whether the step may run, and the condition with its values (`a.m.x (0.8) >= 0.85`)."""
    if step.when is None:
        return True, ""
    lookup = metric_reader(store, produced)
    result = evaluate(step.when, lookup)
    text = explain(step.when, lookup)
    if not isinstance(result, bool):
        raise ConditionFailure(f"the condition `{text}` is not a boolean but {result!r}")
    return result, text
