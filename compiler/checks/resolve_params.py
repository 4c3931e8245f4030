"""Resolving `params { … }`: types, ranges and choices, defaults, and command-line values."""

from __future__ import annotations

from mlc.checks import types as t
from mlc.checks.evaluate import INVALID, Scope
from mlc.checks.params import example_value, format_constraint, parse_override, placeholder
from mlc.checks.program import (
    ParamDecl,
    Program,
)
from mlc.checks.resolve_base import (
    ResolverBase,
)
from mlc.checks.suggest import did_you_mean
from mlc.diagnostics import Label, has_errors
from mlc.diagnostics import catalog as codes
from mlc.front import ast
from mlc.source import Span


class ParamsResolver(ResolverBase):
    """Resolves a pipeline's params."""

    def _resolve_params(self, program: Program, block: ast.Block) -> None:
        self._check_header(block, allow_type=False, allow_extends=False, allow_foreach=False)
        empty = Scope({}, "a param default")
        for item in block.body.items:
            if not isinstance(item, ast.Field):
                ident = item.kind if isinstance(item, ast.Block) else item.name
                self.report(
                    codes.MISPLACED_BLOCK.at(
                        ident.span,
                        "declare a param as `name: type = default`",
                        what="this item"
                        if isinstance(item, ast.Block)
                        else f"`{ident.name} = …` without a type",
                        help=f"write `{ident.name}: int = …` (or float, str, bool, duration, quantity, list[…], enum(…))",
                    )
                )
                continue
            name = item.name.name
            if name in program.params:
                self.report(
                    codes.DUPLICATE_DEFINITION.at(
                        item.name.span,
                        "defined again here",
                        kind="param",
                        name=name,
                        secondary=[Label(program.params[name].span, "first defined here")],
                        help="rename one of them",
                    )
                )
                continue
            reported = len(self.diagnostics)
            declared = self._param_type(item.type)
            if declared is None:
                # Its type was reported; the param still exists, so its uses are not
                # reported again as unknown.
                program.params[name] = ParamDecl(
                    name, t.ANY, None, None, None, item.name.span, invalid=True
                )
                continue
            constraint_text, low, high = self._constraint(item, declared)
            default: object = None
            if item.value is not None:
                default = self.evaluator.typed(item.value, empty, declared, f"param `{name}`")
                if default is not INVALID and not self._passes_to_a_process(
                    default, item.value, name
                ):
                    # Params are what commands and environments are made of.
                    default = INVALID
                if default is not INVALID:
                    self._check_constraint(name, default, declared, low, high, item.value.span)
            value: object = default
            if name in self.overrides:
                try:
                    value = parse_override(self.overrides[name], declared)
                except ValueError as error:
                    self.report(
                        codes.BAD_PARAM_VALUE.at(
                            item.name.span,
                            "declared here",
                            value=self.overrides[name],
                            name=name,
                            reason=str(error),
                            help=f"pass a value of type `{declared}`, as in `--param {name}="
                            f"{example_value(declared)}`",
                        )
                    )
                    value = INVALID
                else:
                    self._check_constraint(
                        name, value, declared, low, high, item.name.span, given=True
                    )
            elif item.value is None:
                if self.require_params:
                    self.report(
                        codes.MISSING_PARAM_VALUE.at(
                            item.name.span,
                            "no default",
                            name=name,
                            help=f"pass `--param {name}=…` or give it a default",
                        )
                    )
                value = placeholder(declared)
            program.params[name] = ParamDecl(
                name,
                declared,
                t.to_json(default) if default is not INVALID else None,
                value if value is not INVALID else placeholder(declared),
                constraint_text,
                item.name.span,
                invalid=has_errors(self.diagnostics[reported:]),
            )

    def _passes_to_a_process(self, value: object, expr: ast.Expr, name: str) -> bool:
        """Whether a param's default (a string, or the strings of a list) holds no NUL."""
        if isinstance(value, str):
            return self.passes_to_a_process(value, expr, name)
        if isinstance(value, list):
            items = expr.items if isinstance(expr, ast.ListLit) else [expr] * len(value)
            return all(
                self._passes_to_a_process(v, e, name) for v, e in zip(value, items, strict=False)
            )
        return True

    def _check_overrides(self, program: Program, block: ast.Block) -> None:
        for name in self.overrides:
            if name not in program.params:
                assert block.label is not None
                self.report(
                    codes.UNKNOWN_PARAM.at(
                        block.label.span,
                        f"pipeline `{program.name}` has no such param",
                        name=name,
                        help=did_you_mean(name, program.params),
                    )
                )

    def _param_type(self, node: ast.TypeExpr) -> t.Type | None:
        name = node.name.name
        if name in t.SCALARS and not node.args:
            return t.SCALARS[name]
        if name == "enum":
            if not isinstance(node.constraint, ast.ChoiceConstraint):
                self.report(
                    codes.INVALID_CONSTRAINT.at(
                        node.span,
                        "no choices",
                        name="enum",
                        reason='list the choices: `enum("a", "b")`',
                        help='write `mode: enum("fast", "full") = "fast"`',
                    )
                )
                return None
            choices = []
            for choice in node.constraint.choices:
                if not isinstance(choice, ast.StrLit):
                    self.report(
                        codes.INVALID_CONSTRAINT.at(
                            choice.span,
                            "not a string",
                            name="enum",
                            reason="choices are strings",
                            help="write it in quotes: "
                            + (f'`"{choice.name}"`' if isinstance(choice, ast.Name) else '`"…"`'),
                        )
                    )
                    return None
                choices.append(choice.value)
            return t.Type("enum", choices=tuple(choices))
        if name in ("list", "map") and node.args:
            inner = [self._param_type(a) for a in node.args]
            if any(i is None for i in inner):
                return None
            if name == "map":
                if len(inner) != 2 or inner[0] != t.STR:
                    self.report(
                        codes.INVALID_CONSTRAINT.at(
                            node.span,
                            "keys must be `str`",
                            name="map",
                            reason="write `map[str, T]`",
                        )
                    )
                    return None
                return t.map_of(inner[1] or t.ANY)
            return t.list_of(inner[0] or t.ANY)
        self.report(
            codes.UNKNOWN_TYPE.at(
                node.name.span,
                "not a param type",
                name=name,
                help=did_you_mean(name, [*t.SCALARS, "enum", "list", "map"]),
            )
        )
        return None

    def _constraint(self, item: ast.Field, declared: t.Type) -> tuple[str | None, object, object]:
        constraint = item.type.constraint
        if declared.name == "enum":
            return ("one of " + ", ".join(declared.choices), None, None)
        if constraint is None:
            return (None, None, None)
        if isinstance(constraint, ast.ChoiceConstraint):
            self.report(
                codes.INVALID_CONSTRAINT.at(
                    constraint.span,
                    "not a range",
                    name=item.name.name,
                    reason="a range is written `(low..high)`",
                    help=f"write `{item.name.name}: {declared}(1..10)`",
                )
            )
            return (None, None, None)
        if declared.name not in ("int", "float", "duration", "quantity"):
            self.report(
                codes.INVALID_CONSTRAINT.at(
                    constraint.span,
                    "no range on this type",
                    name=item.name.name,
                    reason=f"`{declared}` cannot have a range",
                    help="ranges constrain numbers, quantities and durations; "
                    'a choice of strings is `enum("a", "b")`',
                )
            )
            return (None, None, None)
        empty = Scope({}, "a range")
        low = (
            self.evaluator.typed(constraint.low, empty, declared, "a range bound")
            if constraint.low
            else None
        )
        high = (
            self.evaluator.typed(constraint.high, empty, declared, "a range bound")
            if constraint.high
            else None
        )
        if low is INVALID or high is INVALID:
            return (None, None, None)
        return (format_constraint(low, high), low, high)

    def _check_constraint(
        self,
        name: str,
        value: object,
        declared: t.Type,
        low: object,
        high: object,
        span: Span,
        *,
        given: bool = False,
    ) -> None:
        if declared.name == "enum":
            if value not in declared.choices:
                self.report(
                    codes.NOT_A_CHOICE.at(
                        span,
                        "given on the command line" if given else "not a choice",
                        value=t.describe(value),
                        name=name,
                        help="choose one of " + ", ".join(f'"{c}"' for c in declared.choices),
                    )
                )
            return

        def magnitude(v: object) -> float:
            if isinstance(v, t.Quantity):
                return v.amount
            if isinstance(v, t.Duration):
                return v.seconds
            return float(v)  # type: ignore[arg-type]

        if value is None or (low is None and high is None):
            return
        below = low is not None and magnitude(value) < magnitude(low)
        above = high is not None and magnitude(value) > magnitude(high)
        if below or above:
            self.report(
                codes.OUT_OF_RANGE.at(
                    span,
                    "given on the command line" if given else "out of range",
                    value=value,
                    range=format_constraint(low, high),
                    name=name,
                    help=f"choose a value from {format_constraint(low, high)}"
                    + (f" with `--param {name}=…`" if given else ", or widen the range"),
                )
            )
