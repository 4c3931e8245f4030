"""Evaluating `when` conditions on upstream metrics at run time.

A condition is a tree of `MetricRef`, `Const` and `Op` nodes. `evaluate` computes its value;
`explain` renders it with the metric values filled in, for "skipped because …" messages.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Callable
from typing import Any

from mlc.ir.model import Condition, Const, MetricRef, Op
from mlc.runtime.errors import ConditionFailure
from mlc.runtime.metrics import value_type

MetricLookup = Callable[[MetricRef], Any]
"""Returns the value of a metric of an upstream step (raises `ConditionFailure` if absent)."""

_BINARY: dict[str, Callable[[Any, Any], Any]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": operator.truediv,
}


def metric_name(ref: MetricRef) -> str:
    """`evaluate.metrics.accuracy`."""
    return f"{ref.step.removeprefix('step:')}.{ref.output}.{ref.key}"


def evaluate(condition: Condition, lookup: MetricLookup) -> Any:
    """The value of a condition; a type error is a `ConditionFailure` with the culprits named.

    >>> evaluate(Op(op=">=", args=(Const(value=0.9), Const(value=0.85))), lambda ref: None)
    True
    """
    if isinstance(condition, Const):
        return condition.value
    if isinstance(condition, MetricRef):
        return lookup(condition)
    values = [evaluate(arg, lookup) for arg in condition.args]
    return _apply(condition, values)


def _apply(node: Op, values: list[Any]) -> Any:
    op = node.op
    if op == "and":
        return all(_truth(v, op) for v in values)
    if op == "or":
        return any(_truth(v, op) for v in values)
    if op == "not":
        return not _truth(values[0], op)
    if op == "in":
        container = values[1]
        if not isinstance(container, list | tuple | dict | str):
            raise ConditionFailure(f"`in` needs a list on its right, got {value_type(container)}")
        return values[0] in container
    left, right = values
    comparable = (_numeric(left) and _numeric(right)) or (
        op in ("<", "<=", ">", ">=") and isinstance(left, str) and isinstance(right, str)
    )
    if op not in ("==", "!=") and not comparable:
        raise ConditionFailure(
            f"cannot apply `{op}` to {value_type(left)} {left!r} and {value_type(right)} {right!r}"
        )
    try:
        return _BINARY[op](left, right)
    except ZeroDivisionError:
        raise ConditionFailure(f"division by zero in `{left!r} / {right!r}`") from None


def _numeric(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _truth(value: Any, op: str) -> bool:
    if not isinstance(value, bool):
        raise ConditionFailure(f"`{op}` needs booleans, got {value_type(value)} {value!r}")
    return value


def explain(condition: Condition, lookup: MetricLookup) -> str:
    """The condition as text, each metric followed by its value: `a.m.acc (0.8) >= 0.85`."""
    if isinstance(condition, Const):
        shown = json.dumps(condition.value, ensure_ascii=False)
        if condition.text is not None and condition.text != shown:
            return f"{condition.text} ({shown})"
        return repr(condition.value)
    if isinstance(condition, MetricRef):
        try:
            return f"{metric_name(condition)} ({lookup(condition)!r})"
        except ConditionFailure:
            return f"{metric_name(condition)} (unavailable)"
    parts = [explain(arg, lookup) for arg in condition.args]
    if condition.op == "not":
        return f"not {parts[0]}"
    return f" {condition.op} ".join(
        f"({p})" if isinstance(a, Op) else p for p, a in zip(parts, condition.args, strict=True)
    )
