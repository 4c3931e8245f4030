"""Params: declared types, constraints, defaults, and values given on the command line."""

from __future__ import annotations

import json
import re

from mlc.checks import types as t

_UNIT_TEXT = re.compile(r"^(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|Pi|Ei|ms|k|K|M|G|T|P|E|m|s|h|d|w)$")


def parse_override(text: str, declared: t.Type) -> object:
    """Reads a `--param name=value` value as the declared type; raises ValueError with a reason."""
    name = declared.name
    if name == "int":
        try:
            return int(text)
        except ValueError:
            raise ValueError("expected a whole number") from None
    if name == "float":
        try:
            return float(text)
        except ValueError:
            raise ValueError("expected a number") from None
    if name == "bool":
        if text.lower() in ("true", "1", "yes"):
            return True
        if text.lower() in ("false", "0", "no"):
            return False
        raise ValueError("expected `true` or `false`")
    if name in ("str", "enum"):
        return text
    if name in ("duration", "quantity"):
        match = _UNIT_TEXT.match(text)
        if not match:
            raise ValueError(f"expected a {name} with a unit, such as `30m` or `4Gi`")
        number, unit = float(match.group(1)), match.group(2)
        if name == "duration":
            if unit not in t.DURATION_UNITS:
                raise ValueError(f"`{unit}` is not a unit of time")
            return t.Duration(number * t.DURATION_UNITS[unit])
        if unit == "m":
            return t.Quantity(number, "millicores")
        if unit not in t.MEMORY_UNITS:
            raise ValueError(f"`{unit}` is not a unit of quantity")
        return t.Quantity(number * t.MEMORY_UNITS[unit], "bytes")
    if name in ("list", "map"):
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            raise ValueError(f"expected a JSON {'list' if name == 'list' else 'object'}") from None
        if not t.accepts(declared, t.type_of(value)):
            raise ValueError(f"expected `{declared}`")
        return value
    raise ValueError(f"params of type `{declared}` cannot be set from the command line")


def placeholder(declared: t.Type) -> object:
    """A value of the declared type, used by `mlc lint` for a param that has no default."""
    return {
        "int": 1,
        "float": 1.0,
        "str": "",
        "bool": False,
        "duration": t.Duration(60),
        "quantity": t.Quantity(2**30, "bytes"),
        "list": [],
        "map": {},
    }.get(declared.name, declared.choices[0] if declared.choices else None)


def example_value(declared: t.Type) -> str:
    """A value of the declared type as a user writes it, for a help line."""
    if declared.choices:
        return str(declared.choices[0])
    return {
        "int": "3",
        "float": "0.5",
        "str": "text",
        "bool": "true",
        "duration": "30m",
        "quantity": "4Gi",
        "list": '\'["a", "b"]\'',
        "map": "'{\"a\": 1}'",
    }.get(declared.name, "…")


def format_constraint(low: object, high: object) -> str:
    """`1..10`, `0.5..`, `..100`."""

    def show(value: object) -> str:
        return "" if value is None else str(value)

    return f"{show(low)}..{show(high)}"
