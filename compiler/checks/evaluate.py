"""Expressions to typed values, at compile time.

Params are bound before checking, so almost every expression has a constant value: resource
requests computed from params, foreach items, dataset versions. The one exception is a
metric of an upstream step in a `when` condition, which becomes a `Symbolic` value carrying
the IR condition tree. Every failure is a diagnostic; the result is then `INVALID`, which
callers pass through without reporting again.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from mlc.checks import types as t
from mlc.checks.suggest import did_you_mean, did_you_mean_or_list
from mlc.diagnostics import Diagnostic
from mlc.diagnostics import catalog as codes
from mlc.front import ast


class _Invalid:
    """The value of an expression that already produced a diagnostic."""

    def __repr__(self) -> str:
        return "INVALID"


INVALID: Any = _Invalid()

GPU_COUNT_HELP = (
    'write a whole number of GPUs, as in `gpu = 1 of "a100-80gb"`; a share of one GPU is a '
    'MIG profile, as in `gpu = 1 of "a100-80gb/1g.10gb"`'
)


@dataclass
class Namespace:
    """A value with named members, such as `params` or an imported module."""

    kind: str
    members: Mapping[str, object]
    on_access: Callable[[str], None] | None = None
    complete: bool = True
    """False when the block declaring the members was reported as misspelled (`paramsx`):
    a name it lacks is not reported again."""

    @property
    def type_name(self) -> str:
        """How messages name it."""
        return "import" if self.kind == "module" else self.kind


@dataclass(frozen=True)
class VersionRef:
    """A dataset version that is not a digest: `tag("name")` or `latest`."""

    kind: str
    value: str | None = None
    type_name = "dataset version"


@dataclass(frozen=True)
class LoopVar:
    """The variable of a `foreach` step: one value per item, known only when the item runs."""

    name: str
    type_name = "foreach variable"


class Unresolved:
    """What a name stands for when its declaration failed: every use is silently invalid."""

    type_name = "unresolved name"


@dataclass
class MetricSource:
    """A step in a `when` condition: `step.output.key` reads one of its metrics."""

    step: str
    outputs: Mapping[str, t.Type]
    is_foreach: bool
    type_name = "step"


@dataclass(frozen=True)
class SelfStep:
    """A step's own name inside that step: naming it is always a mistake."""

    name: str
    type_name = "step"


_MISSING = object()


@dataclass
class Scope:
    """Names visible to an expression: its own, then its parent's.

    Scopes are chained rather than copied, so giving each of 10,000 steps a scope of its own
    costs the same whatever the number of names around it.
    """

    names: Mapping[str, object] = field(default_factory=dict)
    context: str = "this expression"
    parent: Scope | None = None

    def lookup(self, name: str) -> object:
        """The value of `name`, or `MISSING`."""
        scope: Scope | None = self
        while scope is not None:
            value = scope.names.get(name, _MISSING)
            if value is not _MISSING:
                return value
            scope = scope.parent
        return _MISSING

    def visible(self) -> set[str]:
        """Every name this scope can see (for suggestions)."""
        names: set[str] = set()
        scope: Scope | None = self
        while scope is not None:
            names.update(scope.names)
            scope = scope.parent
        return names

    def child(self, names: Mapping[str, object] | None = None, **more: object) -> Scope:
        """A scope with extra names, shadowing this one's."""
        return Scope({**(names or {}), **more}, self.context, self)


_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


class Evaluator:
    """Evaluates expressions in a scope, appending diagnostics to a shared list."""

    def __init__(self, diagnostics: list[Diagnostic]) -> None:
        self.diagnostics = diagnostics

    def error(self, diagnostic: Diagnostic) -> Any:
        """Records a diagnostic and returns `INVALID`."""
        self.diagnostics.append(diagnostic)
        return INVALID

    # -- entry points ------------------------------------------------------------------------------

    def value(self, expr: ast.Expr, scope: Scope, expected: t.Type | None = None) -> Any:
        """The value of `expr`; unit literals are read according to `expected`."""
        method = getattr(self, "_" + type(expr).__name__.lower())
        result: Any = method(expr, scope, expected)
        if result is not INVALID and not t.is_finite(result):
            return self.error(
                codes.INVALID_VALUE.at(
                    expr.span,
                    "too large",
                    name=_root(expr),
                    reason="the number is too large to represent",
                    help="use a unit for large amounts (`4Ti`, `2w`) or a smaller number",
                )
            )
        return result

    def typed(self, expr: ast.Expr, scope: Scope, expected: t.Type, what: str) -> Any:
        """The value of `expr`, reporting a type mismatch against `expected`."""
        result = self.value(expr, scope, expected)
        if result is INVALID:
            return INVALID
        if isinstance(result, LoopVar):
            return self.loop_var_error(result, expr)
        actual = t.type_of(result)
        if not t.accepts(expected, actual):
            return self.error(
                codes.TYPE_MISMATCH.at(
                    expr.span,
                    f"this is {t.describe(result)}",
                    expected=f"`{expected}` for {what}",
                    found=f"`{actual}`",
                    help=_write_a(expected),
                )
            )
        if expected == t.FLOAT and isinstance(result, int) and not isinstance(result, bool):
            return float(result)
        return result

    def loop_var_error(self, loop_var: LoopVar, expr: ast.Expr) -> Any:
        """The foreach variable used where a value must be known at compile time."""
        return self.error(
            codes.NOT_CONSTANT.at(
                expr.span,
                "one value per item, known when the item runs",
                name=loop_var.name,
                help=f"use `{{{{ {loop_var.name} }}}}` in `run` or `env`; a `call` function "
                f"receives `{loop_var.name}` as a keyword argument",
            )
        )

    # -- literals ----------------------------------------------------------------------------------

    def _intlit(self, expr: ast.IntLit, scope: Scope, expected: t.Type | None) -> Any:
        return expr.value

    def _floatlit(self, expr: ast.FloatLit, scope: Scope, expected: t.Type | None) -> Any:
        return expr.value

    def _strlit(self, expr: ast.StrLit, scope: Scope, expected: t.Type | None) -> Any:
        return expr.value

    def _boollit(self, expr: ast.BoolLit, scope: Scope, expected: t.Type | None) -> Any:
        return expr.value

    def _unitlit(self, expr: ast.UnitLit, scope: Scope, expected: t.Type | None) -> Any:
        number = float(expr.number)
        unit = expr.unit
        if unit == "m" and expected is not None and expected.name == "cpu":
            return t.Quantity(number, "millicores")
        if unit in t.DURATION_UNITS:
            return t.Duration(number * t.DURATION_UNITS[unit])
        return t.Quantity(number * t.MEMORY_UNITS[unit], "bytes")

    def _listlit(self, expr: ast.ListLit, scope: Scope, expected: t.Type | None) -> Any:
        item_type = (
            expected.args[0] if expected and expected.name == "list" and expected.args else None
        )
        items = [self.value(item, scope, item_type) for item in expr.items]
        return INVALID if any(i is INVALID for i in items) else items

    def _objectlit(self, expr: ast.ObjectLit, scope: Scope, expected: t.Type | None) -> Any:
        result: dict[str, Any] = {}
        for item in expr.body.items:
            if not isinstance(item, ast.Attribute):
                return self.error(
                    codes.MISPLACED_BLOCK.at(
                        item.span,
                        "only `key = value` pairs",
                        what="a block or typed field",
                        help="write `key = value` inside `{ … }` values",
                    )
                )
            result[item.name.name] = self.value(item.value, scope)
        return INVALID if any(v is INVALID for v in result.values()) else result

    # -- names -------------------------------------------------------------------------------------

    def _name(self, expr: ast.Name, scope: Scope, expected: t.Type | None) -> Any:
        value = scope.lookup(expr.name)
        if value is not _MISSING:
            return INVALID if isinstance(value, Unresolved) else value
        visible = [n for n in scope.visible() if not n.startswith("_")]
        return self.error(
            codes.UNKNOWN_NAME.at(
                expr.span,
                "not defined here",
                name=expr.name,
                help=did_you_mean_or_list(expr.name, visible, "names defined here"),
            )
        )

    def _member(self, expr: ast.Member, scope: Scope, expected: t.Type | None) -> Any:
        base = self.value(expr.value, scope)
        name = expr.name.name
        if base is INVALID:
            return INVALID
        if isinstance(base, LoopVar):
            return self.loop_var_error(base, expr)
        if isinstance(base, SelfStep):
            return self.error(
                codes.SELF_REFERENCE.at(
                    expr.value.span,
                    "this is the step being declared",
                    name=base.name,
                    help="a step can only read what steps before it produce",
                )
            )
        if isinstance(base, Namespace):
            if name in base.members:
                if base.on_access:
                    base.on_access(name)
                return base.members[name]
            if not base.complete:
                return INVALID
            code = codes.UNKNOWN_PARAM if base.kind == "params" else codes.UNKNOWN_NAME
            return self.error(
                code.at(
                    expr.name.span,
                    f"not a member of `{_root(expr.value)}`",
                    name=name,
                    help=did_you_mean_or_list(
                        name,
                        base.members,
                        "declared params" if base.kind == "params" else "what it holds",
                    )
                    or ("this pipeline declares no params" if base.kind == "params" else None),
                )
            )
        if isinstance(base, MetricSource):
            return self._metric_output(base, expr)
        if isinstance(base, t.Symbolic) and base.type.artifact_kind == "metrics":
            return self._metric_key(base, expr)
        if isinstance(base, dict) and name in base:
            return base[name]
        return self.error(
            codes.UNKNOWN_NAME.at(
                expr.name.span,
                f"{t.describe(base)} has no member `{name}`",
                name=name,
                help="members are read from maps, `params`, imports and steps' metrics; "
                f"{t.describe(base)} has none",
            )
        )

    def _metric_output(self, source: MetricSource, expr: ast.Member) -> Any:
        name = expr.name.name
        if name not in source.outputs:
            return self.error(
                codes.UNKNOWN_OUTPUT.at(
                    expr.name.span,
                    "no such output",
                    step=source.step,
                    name=name,
                    help=did_you_mean_or_list(name, source.outputs, f"outputs of `{source.step}`")
                    or f"step `{source.step}` declares no outputs",
                )
            )
        output_type = source.outputs[name]
        if output_type == t.ANY:
            return INVALID  # its unknown type was reported
        if source.is_foreach:
            return self.error(
                codes.GATE_ON_FOREACH.at(
                    expr.span,
                    "one value per item",
                    step=source.step,
                    help="gate on a fan-in step that summarises the items",
                )
            )
        if output_type.artifact_kind != "metrics" or output_type.metric_keys is None:
            return self.error(
                codes.UNDECLARED_METRICS.at(
                    expr.span,
                    "cannot be read in a condition",
                    output=name,
                    step=source.step,
                    kind=str(output_type),
                    help=f"declare its keys: `{name}: metrics {{ accuracy: float }}`",
                )
            )
        return t.Symbolic(output_type, {"step": source.step, "output": name}, (source.step,))

    def _metric_key(self, base: t.Symbolic, expr: ast.Member) -> Any:
        keys = dict(base.type.metric_keys or ())
        name = expr.name.name
        ref = base.condition
        assert isinstance(ref, dict)
        if name not in keys:
            return self.error(
                codes.UNKNOWN_METRIC.at(
                    expr.name.span,
                    "not a declared key",
                    output=ref["output"],
                    step=ref["step"],
                    name=name,
                    help=did_you_mean_or_list(name, keys, "declared keys"),
                )
            )
        condition = {"kind": "metric", "step": ref["step"], "output": ref["output"], "key": name}
        return t.Symbolic(t.SCALARS[keys[name]], condition, base.steps)

    def _index(self, expr: ast.Index, scope: Scope, expected: t.Type | None) -> Any:
        base = self.value(expr.value, scope)
        index = self.value(expr.index, scope)
        if base is INVALID or index is INVALID:
            return INVALID
        try:
            return base[index]
        except (IndexError, KeyError, TypeError):
            return self.error(
                codes.INVALID_VALUE.at(
                    expr.index.span,
                    "no such item",
                    name=_root(expr.value),
                    reason=f"{t.describe(index)} is not an index of {t.describe(base)}",
                    help=_index_help(base),
                )
            )

    def _call(self, expr: ast.Call, scope: Scope, expected: t.Type | None) -> Any:
        name = expr.function.name
        args = [self.value(a, scope, expected) for a in expr.args]
        if any(a is INVALID for a in args):
            return INVALID
        if name == "tag":
            if len(args) != 1 or not isinstance(args[0], str):
                return self.error(
                    codes.INVALID_VERSION.at(
                        expr.span,
                        "`tag` takes one string",
                        value=f"`tag` of {_described(args)}",
                        help='write `tag("v1")`',
                    )
                )
            return VersionRef("tag", args[0])
        if name in ("min", "max"):
            return self._min_max(expr, name, args)
        return self.error(
            codes.UNKNOWN_NAME.at(
                expr.function.span,
                "not a function",
                name=name,
                help=did_you_mean(name, ["tag", "min", "max"])
                or "the functions are `min`, `max` and `tag`",
            )
        )

    def _min_max(self, expr: ast.Call, name: str, args: list[Any]) -> Any:
        """`min(a, b, …)` and `max(a, b, …)` of numbers, strings or amounts of one kind, or of
        the items of one list."""
        values = args[0] if len(args) == 1 and isinstance(args[0], list) else args
        usage = (
            f"`{name}(a, b, …)` compares numbers, strings, or quantities or durations of one "
            f"kind; `{name}(list)` compares the list's items"
        )
        if any(isinstance(v, t.Symbolic) for v in values):
            label = "known only when the pipeline runs"
            usage = (
                f"`{name}` is computed when the spec is compiled; compare metrics with `<` or `>`"
            )
        elif not values:
            label = "nothing to compare"
        elif _orderable(values):
            key: Callable[[Any], Any] = _magnitude
            return min(values, key=key) if name == "min" else max(values, key=key)
        else:
            kinds = sorted({str(t.type_of(v)) for v in values})
            label = (
                f"`{kinds[0]}` values cannot be ordered"
                if len(kinds) == 1
                else "values of different kinds: " + ", ".join(f"`{k}`" for k in kinds)
            )
        return self.error(
            codes.INVALID_OPERANDS.at(
                expr.span, label, op=name, operands=_described(args), help=usage
            )
        )

    # -- operators ---------------------------------------------------------------------------------

    def _unary(self, expr: ast.Unary, scope: Scope, expected: t.Type | None) -> Any:
        value = self.value(expr.value, scope, expected)
        if value is INVALID:
            return INVALID
        if expr.op == "not":
            if isinstance(value, t.Symbolic) and value.type == t.BOOL:
                return t.Symbolic(t.BOOL, _op("not", value), value.steps)
            if isinstance(value, bool):
                return not value
            return self.error(
                codes.INVALID_OPERANDS.at(
                    expr.span,
                    "`not` takes a `bool`",
                    op="not",
                    operands=t.describe(value),
                    help="compare it to get a `bool`, as in `not (x == 1)`",
                )
            )
        if t.is_number(value) or isinstance(value, (t.Quantity, t.Duration)):
            # A negative amount is a value like any other; where it is used, the setting
            # reports it (`memory = -4Gi` as `4Gi - 8Gi`: must be greater than zero).
            return -value
        if isinstance(value, t.Symbolic) and value.type in (t.INT, t.FLOAT):
            return t.Symbolic(value.type, _op("-", 0, value), value.steps)
        return self.error(
            codes.INVALID_OPERANDS.at(
                expr.span,
                "`-` takes a number, a quantity or a duration",
                op="-",
                operands=t.describe(value),
            )
        )

    def _binary(self, expr: ast.Binary, scope: Scope, expected: t.Type | None) -> Any:
        op = expr.op
        if op == "of":
            return self._gpu_of(expr, scope)
        left = self.value(expr.left, scope, expected)
        right = self.value(expr.right, scope, expected)
        if left is INVALID or right is INVALID:
            return INVALID
        if isinstance(left, t.Symbolic) or isinstance(right, t.Symbolic):
            return self._symbolic(expr, left, right)
        try:
            result = _apply(op, left, right)
        except ZeroDivisionError:
            return self.error(
                codes.DIVISION_BY_ZERO.at(
                    expr.right.span,
                    "this is zero",
                    help="divide by a value that cannot be zero; a param divisor can declare "
                    "a range without it, as in `n: int(1..) = 4`",
                )
            )
        if result is INVALID:
            return self.error(
                codes.INVALID_OPERANDS.at(
                    expr.op_span if expr.op_span.end > expr.op_span.start else expr.span,
                    f"{t.describe(left)} {op} {t.describe(right)}",
                    op=op,
                    operands=f"`{t.type_of(left)}` and `{t.type_of(right)}`",
                    help=_operands_help(op, left, right),
                )
            )
        return result

    def _symbolic(self, expr: ast.Binary, left: Any, right: Any) -> Any:
        op = expr.op
        lt, rt = t.type_of(left), t.type_of(right)
        numeric = {t.INT, t.FLOAT}
        steps = tuple(sorted({*_steps(left), *_steps(right)}))
        if op in ("and", "or"):
            if lt == t.BOOL and rt == t.BOOL:
                return t.Symbolic(t.BOOL, _op(op, left, right), steps)
        elif op in _COMPARE:
            if (
                (lt in numeric and rt in numeric)
                or (lt == rt and op in ("==", "!="))
                or (op in ("==", "!=") and {lt.name, rt.name} <= {"str", "enum"})
            ):
                return t.Symbolic(t.BOOL, _op(op, left, right), steps)
        elif op in ("+", "-", "*", "/") and lt in numeric and rt in numeric:
            result_type = t.FLOAT if op == "/" or t.FLOAT in (lt, rt) else t.INT
            return t.Symbolic(result_type, _op(op, left, right), steps)
        elif op == "in" and rt.name == "list":
            return t.Symbolic(t.BOOL, _op(op, left, right), steps)
        return self.error(
            codes.INVALID_OPERANDS.at(
                expr.op_span if expr.op_span.end > expr.op_span.start else expr.span,
                f"{t.describe(left)} {op} {t.describe(right)}",
                op=op,
                operands=f"`{lt}` and `{rt}`",
                help=_operands_help(op, left, right)
                or "a metric compares with numbers (`>= 0.9`) and combines with `and`, `or`",
            )
        )

    def _gpu_of(self, expr: ast.Binary, scope: Scope) -> Any:
        count = self.value(expr.left, scope)
        accelerator = self.value(expr.right, scope)
        if count is INVALID or accelerator is INVALID:
            return INVALID
        if not isinstance(accelerator, str):
            return self.error(
                codes.TYPE_MISMATCH.at(
                    expr.right.span,
                    f"this is {t.describe(accelerator)}",
                    expected='an accelerator type such as `"a100-80gb"`',
                    found=f"`{t.type_of(accelerator)}`",
                    help='write the type as a string: `gpu = 1 of "a100-80gb"`',
                )
            )
        if isinstance(count, bool) or not isinstance(count, int):
            return self.error(
                codes.INVALID_GPU_COUNT.at(
                    expr.left.span,
                    "not a whole number",
                    value=t.describe(count),
                    help=GPU_COUNT_HELP,
                )
            )
        name, _, mig = accelerator.partition("/")
        return t.GpuValue(count, name, mig or None)


def _magnitude(value: Any) -> Any:
    if isinstance(value, t.Quantity):
        return value.amount
    if isinstance(value, t.Duration):
        return value.seconds
    return value


def _operands_help(op: str, left: Any, right: Any) -> str | None:
    """How operands of this kind do combine, for the help line."""
    amounts = (t.Quantity, t.Duration)
    if op in ("<", "<=", ">", ">=", "==", "!="):
        return "compare values of one kind: numbers with numbers (`> 0.9`), strings with strings"
    if isinstance(left, amounts) or isinstance(right, amounts):
        return (
            "quantities and durations add to and subtract from their own kind "
            "(`4Gi + 512Mi`) and scale by numbers (`4Gi * 2`)"
        )
    if op in ("and", "or") or op == "not":
        return f"`{op}` combines `bool` values; compare first, as in `x > 1 {op} y > 2`"
    if isinstance(left, str) or isinstance(right, str):
        return 'strings join with `+` (`"a" + "b"`) and compare with `==`'
    return None


_EXAMPLES = {
    "int": "a whole number, such as `3`",
    "float": "a number, such as `0.5`",
    "str": 'a string, such as `"text"`',
    "bool": "`true` or `false`",
    "duration": "a duration, such as `30m`",
    "quantity": "an amount with a unit, such as `4Gi` or `500m`",
}


def _write_a(expected: t.Type) -> str | None:
    """A help line with an example of the expected type, where there is a simple one."""
    example = _EXAMPLES.get(expected.name)
    return f"write {example}" if example else None


def _index_help(base: Any) -> str | None:
    """Which indexes a list or a map has."""
    if isinstance(base, list):
        return (
            f"the list has {len(base)} items: indexes 0 to {len(base) - 1}"
            if base
            else ("the list is empty")
        )
    if isinstance(base, dict):
        keys = ", ".join(f'"{k}"' for k in sorted(base)[:6])
        return f"the map's keys: {keys}" if base else "the map is empty"
    return None


def _described(args: list[Any]) -> str:
    """The arguments of a call, for a message: `no arguments`, or their kinds."""
    if not args:
        return "no arguments"
    return " and ".join(f"`{t.type_of(a)}`" for a in args[:3]) + (
        " and more" if len(args) > 3 else ""
    )


def _orderable(values: list[Any]) -> bool:
    """Whether `min` and `max` can compare the values: numbers, strings, or one kind of amount."""
    if all(t.is_number(v) for v in values) or all(isinstance(v, str) for v in values):
        return True
    if all(isinstance(v, t.Duration) for v in values):
        return True
    return (
        all(isinstance(v, t.Quantity) for v in values) and len({v.dimension for v in values}) == 1
    )


def _steps(value: Any) -> tuple[str, ...]:
    return value.steps if isinstance(value, t.Symbolic) else ()


def _condition(value: Any) -> object:
    if isinstance(value, t.Symbolic):
        return value.condition
    return {"kind": "const", "value": t.to_json(value)}


def _op(op: str, *args: Any) -> dict[str, object]:
    return {"kind": "op", "op": op, "args": [_condition(a) for a in args]}


def _root(expr: ast.Expr) -> str:
    if isinstance(expr, ast.Name):
        return expr.name
    if isinstance(expr, ast.Member):
        return f"{_root(expr.value)}.{expr.name.name}"
    return "value"


def _apply(op: str, left: Any, right: Any) -> Any:
    """Applies a binary operator to constants, or returns INVALID if the kinds do not mix."""
    if op in ("and", "or"):
        if isinstance(left, bool) and isinstance(right, bool):
            return (left and right) if op == "and" else (left or right)
        return INVALID
    if op == "in":
        if isinstance(right, (list, dict)):
            try:
                return left in right
            except TypeError:  # a list or map is never a key of a map
                return INVALID
        if isinstance(right, str) and isinstance(left, str):
            return left in right
        return INVALID
    if op in _COMPARE:
        if t.is_number(left) and t.is_number(right):
            return _COMPARE[op](left, right)
        if type(left) is type(right) and isinstance(left, (t.Quantity, t.Duration)):
            if isinstance(left, t.Quantity) and left.dimension != right.dimension:
                return INVALID
            return _COMPARE[op](_magnitude(left), _magnitude(right))
        if type(left) is type(right) and op in ("==", "!="):
            return _COMPARE[op](left, right)
        if isinstance(left, str) and isinstance(right, str):
            return _COMPARE[op](left, right)
        return INVALID
    return _arithmetic(op, left, right)


def _arithmetic(op: str, left: Any, right: Any) -> Any:
    if t.is_number(left) and t.is_number(right):
        if op == "/":
            return left / right
        if op == "%":
            return left % right
        return {"+": operator.add, "-": operator.sub, "*": operator.mul}[op](left, right)
    if isinstance(left, str) and isinstance(right, str) and op == "+":
        return left + right
    if isinstance(left, list) and isinstance(right, list) and op == "+":
        return left + right
    for unit_type in (t.Quantity, t.Duration):
        if isinstance(left, unit_type) and isinstance(right, unit_type) and op in ("+", "-"):
            if isinstance(left, t.Quantity) and isinstance(right, t.Quantity):
                if left.dimension != right.dimension:
                    return INVALID
                amount = left.amount + right.amount if op == "+" else left.amount - right.amount
                return t.Quantity(amount, left.dimension)
            if isinstance(left, t.Duration) and isinstance(right, t.Duration):
                return t.Duration(
                    left.seconds + right.seconds if op == "+" else left.seconds - right.seconds
                )
    scaled, factor = (left, right) if t.is_number(right) else (right, left)
    if t.is_number(factor) and op in ("*", "/") and not (op == "/" and scaled is right):
        if isinstance(scaled, t.Quantity):
            amount = scaled.amount * factor if op == "*" else scaled.amount / factor
            return t.Quantity(amount, scaled.dimension)
        if isinstance(scaled, t.Duration):
            return t.Duration(scaled.seconds * factor if op == "*" else scaled.seconds / factor)
    return INVALID
