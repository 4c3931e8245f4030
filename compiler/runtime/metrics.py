"""Metrics outputs: a JSON object file whose declared keys are checked against their types."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from mlc.runtime.errors import StepFailure

if TYPE_CHECKING:
    from mlc.ir.model import ArtifactType

_TYPE_NAMES = {bool: "bool", int: "int", float: "float", str: "str"}


def value_type(value: Any) -> str:
    """The metric type name of a JSON value (`bool`, `int`, `float`, `str`, or the JSON kind).

    >>> value_type(True), value_type(3), value_type(0.5), value_type([1])
    ('bool', 'int', 'float', 'list')
    """
    for python_type, name in _TYPE_NAMES.items():
        if isinstance(value, python_type):
            return name
    return {list: "list", dict: "object", type(None): "null"}.get(type(value), type(value).__name__)


def conforms(value: Any, declared: str) -> bool:
    """True when a value has the declared metric type; an `int` is also a valid `float`."""
    actual = value_type(value)
    return actual == declared or (declared == "float" and actual == "int")


def load_metrics(path: str, output: str) -> dict[str, Any]:
    """Reads a metrics output file; it must hold one JSON object."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except json.JSONDecodeError as exc:
        raise StepFailure(f"metrics output `{output}` is not valid JSON: {exc}") from None
    except UnicodeDecodeError:
        raise StepFailure(f"metrics output `{output}` is not UTF-8 text") from None
    if not isinstance(data, dict):
        raise StepFailure(
            f"metrics output `{output}` must be a JSON object, got a {value_type(data)}"
        )
    return data


def check_metrics(output: str, artifact_type: ArtifactType, data: Mapping[str, Any]) -> None:
    """Checks the declared keys of a metrics output: each present, each of its type."""
    check_metric_keys(output, artifact_type.metric_keys, data)


def check_metric_keys(
    output: str, metric_keys: Mapping[str, str] | None, data: Mapping[str, Any]
) -> None:
    """`check_metrics` given the declared keys and their types."""
    problems: list[str] = []
    for key, declared in (metric_keys or {}).items():
        if key not in data:
            problems.append(f"key `{key}` ({declared}) is missing")
        elif not conforms(data[key], declared):
            problems.append(
                f"key `{key}` should be {declared}, got {value_type(data[key])} {data[key]!r}"
            )
    if problems:
        raise StepFailure(f"metrics output `{output}`: " + "; ".join(problems))
