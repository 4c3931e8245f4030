"""The type system of the language and its units.

Scalar types, quantities (memory in bytes, CPU in millicores), durations (seconds), lists,
maps, enums, artifact types and metrics records. Values are plain Python values wrapped
only where a unit matters (`Quantity`, `Duration`) or where a value is known only at run
time (`Symbolic`, for `when` conditions on metrics).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

ARTIFACT_KINDS = ("dataset", "model", "metrics", "file", "dir")
METRIC_SCALARS = ("int", "float", "bool", "str")

MEMORY_UNITS: dict[str, int] = {
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "Ei": 2**60,
    "k": 10**3,
    "K": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "P": 10**15,
    "E": 10**18,
}
DURATION_UNITS: dict[str, float] = {
    "ms": 0.001,
    "s": 1,
    "m": 60,
    "h": 3600,
    "d": 86400,
    "w": 604800,
}


@dataclass(frozen=True, slots=True)
class Type:
    """A type. `name` is the constructor; `args` its parameters (element types, choices)."""

    name: str
    args: tuple[Type, ...] = ()
    choices: tuple[str, ...] = ()
    artifact_kind: str | None = None
    metric_keys: tuple[tuple[str, str], ...] | None = None

    def __str__(self) -> str:
        if self.name in ("list", "map") and self.args:
            inner = ", ".join(str(a) for a in self.args)
            return f"{self.name}[{'str, ' if self.name == 'map' else ''}{inner}]"
        if self.name == "enum":
            return "enum(" + ", ".join(f'"{c}"' for c in self.choices) + ")"
        return self.name

    @property
    def is_artifact(self) -> bool:
        """Whether values of this type are artifacts (files and directories in the store)."""
        return self.artifact_kind is not None


INT = Type("int")
FLOAT = Type("float")
STR = Type("str")
BOOL = Type("bool")
DURATION = Type("duration")
QUANTITY = Type("quantity")
GPU = Type("gpu")
NULL = Type("none")
ANY = Type("any")
MIXED = Type("mixed")
"""The element type of a list whose items have different types: accepted by no list type."""
SCALARS = {
    "int": INT,
    "float": FLOAT,
    "str": STR,
    "bool": BOOL,
    "duration": DURATION,
    "quantity": QUANTITY,
}


def list_of(item: Type) -> Type:
    """`list[item]`."""
    return Type("list", (item,))


def map_of(value: Type) -> Type:
    """`map[str, value]`."""
    return Type("map", (value,))


def artifact(name: str, kind: str, metric_keys: tuple[tuple[str, str], ...] | None = None) -> Type:
    """An artifact type: a built-in kind or a declared subtype of one."""
    return Type(name, artifact_kind=kind, metric_keys=metric_keys)


@dataclass(frozen=True, slots=True)
class Quantity:
    """An amount of memory (`bytes`) or CPU (`millicores`)."""

    amount: float
    dimension: Literal["bytes", "millicores"]

    def __str__(self) -> str:
        if self.dimension == "millicores":
            return f"{self.amount:g}m"
        sign, amount = ("-", -self.amount) if self.amount < 0 else ("", self.amount)
        for unit in ("Ti", "Gi", "Mi", "Ki"):
            size = MEMORY_UNITS[unit]
            if amount >= size and amount % size == 0:
                return f"{sign}{int(amount // size)}{unit}"
        return f"{self.amount:g} bytes"

    def __neg__(self) -> Quantity:
        return Quantity(-self.amount, self.dimension)


@dataclass(frozen=True, slots=True)
class Duration:
    """A length of time in seconds."""

    seconds: float

    def __str__(self) -> str:
        sign, seconds = ("-", -self.seconds) if self.seconds < 0 else ("", self.seconds)
        for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
            if seconds >= size and seconds % size == 0:
                return f"{sign}{int(seconds // size)}{unit}"
        return f"{self.seconds:g}s"

    def __neg__(self) -> Duration:
        return Duration(-self.seconds)


@dataclass(frozen=True, slots=True)
class GpuValue:
    """`count of "accelerator[/mig]"`."""

    count: int
    accelerator: str | None = None
    mig: str | None = None

    def __str__(self) -> str:
        if self.accelerator is None:
            return str(self.count)
        model = self.accelerator + (f"/{self.mig}" if self.mig else "")
        return f'{self.count} of "{model}"'


@dataclass(frozen=True, slots=True)
class Symbolic:
    """A value known only at run time; `condition` is its IR condition tree (a dict)."""

    type: Type
    condition: object
    steps: tuple[str, ...] = field(default=())


def type_of(value: object) -> Type:
    """The type of a constant value."""
    if isinstance(value, Symbolic):
        return value.type
    if isinstance(value, bool):
        return BOOL
    if isinstance(value, int):
        return INT
    if isinstance(value, float):
        return FLOAT
    if isinstance(value, str):
        return STR
    if isinstance(value, Quantity):
        return QUANTITY
    if isinstance(value, Duration):
        return DURATION
    if isinstance(value, GpuValue):
        return GPU
    if isinstance(value, list):
        items = {type_of(v) for v in value}
        if len(items) == 1:
            return list_of(items.pop())
        if items <= {INT, FLOAT} and items:
            return list_of(FLOAT)
        return list_of(MIXED) if items else list_of(ANY)
    if isinstance(value, dict):
        return map_of(ANY)
    if value is None:
        return NULL
    # Things names can stand for that are not values: a resource profile, an import, a
    # dataset version. They have a type of their own so that no value type accepts them.
    return Type(getattr(value, "type_name", type(value).__name__))


def describe(value: object) -> str:
    """A short description of a value for messages: its type, and the value if small. What
    a name stands for that is not a value (a step, a resource profile, `params`) is described
    by its kind alone: a message never shows an internal representation."""
    kind = type_of(value)
    if isinstance(value, str):
        shown = value if len(value) <= 30 else value[:27] + "…"
        return f'`str` "{shown}"'
    if isinstance(value, bool):
        return f"`bool` {str(value).lower()}"
    if isinstance(value, int | float | Quantity | Duration | GpuValue):
        return f"`{kind}` {value}"
    return f"`{kind}`"


def accepts(expected: Type, actual: Type) -> bool:
    """Whether a value of type `actual` may stand where `expected` is wanted."""
    if expected == ANY or actual == ANY:
        return True
    if expected == actual:
        return True
    if expected == FLOAT and actual == INT:
        return True
    if expected.name == "enum" and actual == STR:
        return True
    if expected == STR and actual.name == "enum":
        return True
    if expected.name in ("list", "map") and actual.name == expected.name:
        if not actual.args or not expected.args:
            return True
        return actual.args[0] != MIXED and accepts(expected.args[0], actual.args[0])
    return False


def is_finite(value: object) -> bool:
    """Whether a number, quantity or duration is finite (not an overflow to infinity)."""
    import math

    if isinstance(value, Quantity):
        return math.isfinite(value.amount)
    if isinstance(value, Duration):
        return math.isfinite(value.seconds)
    if isinstance(value, float):
        return math.isfinite(value)
    return True


def is_value(value: object) -> bool:
    """Whether a value can be written to the IR (a constant, not a profile or an import)."""
    if value is None or isinstance(value, (bool, int, float, str, Quantity, Duration, GpuValue)):
        return True
    if isinstance(value, list):
        return all(is_value(v) for v in value)
    if isinstance(value, dict):
        return all(is_value(v) for v in value.values())
    return False


def is_number(value: object) -> bool:
    """Whether a value is an `int` or a `float` (and not a `bool`)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def to_json(value: object) -> object:
    """A constant value in the canonical JSON form used by the IR."""
    if isinstance(value, Quantity):
        return round(value.amount)
    if isinstance(value, Duration):
        return value.seconds
    if isinstance(value, GpuValue):
        return {"count": value.count, "accelerator": value.accelerator, "mig": value.mig}
    if isinstance(value, list):
        return [to_json(v) for v in value]
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    return value
