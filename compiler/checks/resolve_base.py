"""The resolver's shared state and helpers: module scopes, block headers, artifact
types and attribute readers. Each kind of block is resolved in a module of its own."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mlc.checks import types as t
from mlc.checks.evaluate import INVALID, Evaluator, Namespace, Scope, Unresolved
from mlc.checks.loader import LoadedModule
from mlc.checks.suggest import closest, did_you_mean
from mlc.diagnostics import Diagnostic, Label
from mlc.diagnostics import catalog as codes
from mlc.front import ast, escapes
from mlc.source import Span

CPU = t.Type("cpu")
TOP_LEVEL_KINDS = ("pipeline", "resources", "template", "target")
PIPELINE_KINDS = ("params", "dataset", "step", "outputs")
STEP_ATTRIBUTES = (
    "image",
    "run",
    "call",
    "shell",
    "timeout",
    "retries",
    "backoff",
    "max_backoff",
    "cache",
    "after",
    "when",
    "parallelism",
    "code",
    "resources",
)
STEP_BLOCKS = ("args", "env", "secrets", "inputs", "outputs", "resources")
TEMPLATE_EXCLUDED = ("when", "after", "inputs", "outputs", "parallelism")
RESOURCE_FIELDS = ("cpu", "memory", "gpu", "shm", "disk")
TARGET_ATTRIBUTES = (
    "backend",
    "store",
    "address",
    "namespace",
    "ignore_unsupported",
    "accelerators",
)
BACKEND_BLOCKS = ("local", "ray", "kubernetes")
DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
CALL_TARGET = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*$")
SECRET_REF = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?/[-._a-zA-Z0-9]+$")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(eq=False)
class Profile:
    """A named `resources` block, evaluated where it was declared."""

    block: ast.Block
    module: LoadedModule
    type_name = "resource profile"


@dataclass(eq=False)
class Template:
    """A named step `template` block."""

    block: ast.Block
    module: LoadedModule
    type_name = "step template"


@dataclass(eq=False)
class ModuleScope:
    """Top-level declarations of one file, by name."""

    module: LoadedModule
    types: dict[str, t.Type] = field(default_factory=dict)
    profiles: dict[str, Profile] = field(default_factory=dict)
    templates: dict[str, Template] = field(default_factory=dict)
    pipelines: dict[str, ast.Block] = field(default_factory=dict)
    targets: dict[str, ast.Block] = field(default_factory=dict)


BUILTIN_TYPES: dict[str, t.Type] = {kind: t.artifact(kind, kind) for kind in t.ARTIFACT_KINDS}


class ResolverBase:
    """State shared by every part of the resolver, and the helpers they all use."""

    def __init__(
        self,
        diagnostics: list[Diagnostic],
        *,
        params: Mapping[str, str] | None = None,
        require_params: bool = False,
    ) -> None:
        self.diagnostics = diagnostics
        self.evaluator = Evaluator(diagnostics)
        self.overrides = dict(params or {})
        self.require_params = require_params
        self._scopes: dict[Path, ModuleScope] = {}
        self._current: ModuleScope | None = None
        self.failed_extends: set[ast.Block] = set()
        self.template_of: dict[ast.Block, Template] = {}
        """The template each step that extends one extends."""
        self.misspelled_names: set[str] = set()
        """Names of a pipeline's steps and datasets whose block kind was misspelled (`stepx
        train { … }`, reported as unknown): their uses are not reported again."""
        self.outputs_unknown: set[str] = set()
        """Steps whose `outputs` block was misspelled: their outputs are not known."""
        """Steps whose template was reported as unknown: what it may have set is not missing."""

    def report(self, diagnostic: Diagnostic) -> None:
        """Adds a diagnostic."""
        self.diagnostics.append(diagnostic)

    def scope_of(self, loaded: LoadedModule) -> ModuleScope:
        """The top-level declarations of a module (computed once)."""
        if loaded.path in self._scopes:
            return self._scopes[loaded.path]
        scope = ModuleScope(loaded)
        self._scopes[loaded.path] = scope
        seen: dict[str, Span] = {}

        def declare(kind: str, name: ast.Ident) -> bool:
            key = f"{kind}:{name.name}"
            if key in seen or (kind == "type" and name.name in BUILTIN_TYPES):
                self.report(
                    codes.DUPLICATE_DEFINITION.at(
                        name.span,
                        "defined again here",
                        kind=kind,
                        name=name.name,
                        secondary=[Label(seen[key], "first defined here")] if key in seen else [],
                        help="rename one of them",
                    )
                )
                return False
            seen[key] = name.span
            return True

        for declaration in loaded.module.types:
            if not declare("type", declaration.name):
                continue
            base = BUILTIN_TYPES.get(declaration.base.name) or scope.types.get(
                declaration.base.name
            )
            if base is None:
                self.report(
                    codes.UNKNOWN_TYPE.at(
                        declaration.base.span,
                        "not an artifact type",
                        name=declaration.base.name,
                        help=did_you_mean(declaration.base.name, [*BUILTIN_TYPES, *scope.types]),
                    )
                )
                continue
            scope.types[declaration.name.name] = t.artifact(
                declaration.name.name, base.artifact_kind or "file"
            )
        for block in loaded.module.blocks:
            kind = block.kind.name
            if not self._is_known(
                block.kind, TOP_LEVEL_KINDS, "a spec file", "not a top-level block", block=True
            ):
                continue
            if block.label is None:
                self.report(
                    codes.MISSING_ATTRIBUTE.at(
                        block.kind.span,
                        "needs a name",
                        context=f"this `{kind}` block",
                        name="name",
                        help=f"write `{kind} my_{kind} {{ … }}`",
                    )
                )
                continue
            self._check_header(block, allow_type=False, allow_extends=False, allow_foreach=False)
            if not declare(kind, block.label):
                continue
            if kind == "pipeline":
                scope.pipelines[block.label.name] = block
            elif kind == "resources":
                scope.profiles[block.label.name] = Profile(block, loaded)
            elif kind == "template":
                scope.templates[block.label.name] = Template(block, loaded)
            else:
                scope.targets[block.label.name] = block
        return scope

    def _check_header(
        self,
        block: ast.Block,
        *,
        allow_type: bool,
        allow_extends: bool,
        allow_foreach: bool,
        allow_finally: bool = False,
    ) -> None:
        kind = block.kind.name
        if block.type is not None and not allow_type:
            self.report(
                codes.MISPLACED_BLOCK.at(
                    block.type.span,
                    "remove it",
                    what=f"a type on `{kind}`",
                    help=f"only a `dataset` takes a type (`dataset raw: table {{ … }}`); "
                    f"write `{kind} NAME {{ … }}`",
                )
            )
        if block.extends is not None and not allow_extends:
            self.report(
                codes.MISPLACED_BLOCK.at(
                    block.extends.span, "remove it", what=f"`extends` on `{kind}`"
                )
            )
        if block.foreach is not None and not allow_foreach:
            self.report(
                codes.MISPLACED_BLOCK.at(
                    block.foreach.span, "remove it", what=f"`foreach` on `{kind}`"
                )
            )
        if block.is_finally and not allow_finally:
            self.report(
                codes.MISPLACED_BLOCK.at(
                    block.kind.span, "remove `finally`", what=f"`finally` on `{kind}`"
                )
            )

    def module_names(self, loaded: LoadedModule) -> dict[str, object]:
        """Names visible in expressions at the top of a module: profiles and import aliases."""
        scope = self.scope_of(loaded)
        names: dict[str, object] = dict(scope.profiles)
        for alias, imported in loaded.imports.items():
            imported_scope = self.scope_of(imported)
            members: dict[str, object] = {**imported_scope.profiles, **imported_scope.templates}
            names[alias] = Namespace("module", members)
        for alias in loaded.failed_imports:
            names.setdefault(alias, Unresolved())
        return names

    def _artifact_type_named(self, ident: ast.Ident, scope: ModuleScope) -> t.Type | None:
        found = scope.types.get(ident.name) or BUILTIN_TYPES.get(ident.name)
        if found is None:
            self.report(
                codes.UNKNOWN_TYPE.at(
                    ident.span,
                    "not an artifact type",
                    name=ident.name,
                    help=did_you_mean(ident.name, [*BUILTIN_TYPES, *scope.types]),
                )
            )
        return found

    def _artifact_type(self, node: ast.TypeExpr, scope: ModuleScope) -> t.Type | None:
        name = node.name.name
        if name == "list" and len(node.args) == 1:
            inner = self._artifact_type(node.args[0], scope)
            return t.list_of(inner) if inner else None
        base = self._artifact_type_named(node.name, scope)
        if base is None:
            return None
        if node.record is not None:
            if base.artifact_kind != "metrics":
                self.report(
                    codes.MISPLACED_BLOCK.at(
                        node.record.span,
                        "remove it",
                        what=f"a key list on `{name}`",
                        help="only `metrics` declare keys",
                    )
                )
                return base
            keys: list[tuple[str, str]] = []
            for entry in node.record.items:
                if not isinstance(entry, ast.Field):
                    self.report(
                        codes.MISPLACED_BLOCK.at(
                            item_name_span(entry),
                            "not a metric declaration",
                            what="this item",
                            help="declare each metric as `name: float` (or int, bool, str)",
                        )
                    )
                    continue
                if entry.value is not None:
                    self.report(
                        codes.MISPLACED_BLOCK.at(
                            entry.value.span,
                            "remove it",
                            what="a value for a metric key",
                            help="the step writes the metric's value; the spec declares its type",
                        )
                    )
                    continue
                if entry.type.name.name not in t.METRIC_SCALARS:
                    self.report(
                        codes.UNKNOWN_TYPE.at(
                            entry.type.span,
                            "metric keys are `int`, `float`, `bool` or `str`",
                            name=entry.type.name.name,
                            help=did_you_mean(entry.type.name.name, t.METRIC_SCALARS),
                        )
                    )
                    continue
                keys.append((entry.name.name, entry.type.name.name))
            return t.artifact(base.name, "metrics", tuple(keys))
        if node.constraint is not None or node.args:
            self.report(
                codes.MISPLACED_BLOCK.at(
                    node.span,
                    "artifact types take no arguments",
                    what="type arguments on an artifact type",
                    help="write the type alone, as in `model`",
                )
            )
        return base

    def misspelled(self, items: Iterable[ast.Item], name: str, allowed: Iterable[str]) -> bool:
        """Whether one of `items` is `name` misspelled (`callx` for `call`): reported as unknown
        with `name` as its suggestion, so `name` is not reported again as missing."""
        allowed = tuple(allowed)
        for item in items:
            written = item.kind.name if isinstance(item, ast.Block) else item.name.name
            if written not in allowed and closest(written, allowed) == name:
                return True
        return False

    def report_missing(
        self, block: ast.Block, name: str, allowed: Iterable[str], *, context: str, help: str
    ) -> None:
        """Reports that the named `block` lacks the attribute `name`, at its label, unless one
        of its items is `name` misspelled (`misspelled`: reported already, as unknown)."""
        if self.misspelled(block.body.items, name, allowed):
            return
        assert block.label is not None
        self.report(
            codes.MISSING_ATTRIBUTE.at(
                block.label.span, f"no `{name}`", context=context, name=name, help=help
            )
        )

    def _attributes_of(self, items: Iterable[ast.Item], example: str) -> Iterator[ast.Attribute]:
        """The `name = value` items; anything else is reported, with `example` as the fix."""
        for item in items:
            if isinstance(item, ast.Attribute):
                yield item
            else:
                self.report(
                    codes.MISPLACED_BLOCK.at(
                        item_name_span(item),
                        "not an attribute",
                        what="this item",
                        help=f"write {example}",
                    )
                )

    def _is_known(
        self,
        name: ast.Ident,
        allowed: Sequence[str],
        context: str,
        label: str,
        *,
        block: bool = False,
        fallback: str | None = None,
    ) -> bool:
        """Whether an attribute or block name is allowed; an unknown one is reported."""
        if name.name in allowed:
            return True
        code = codes.UNKNOWN_BLOCK if block else codes.UNKNOWN_ATTRIBUTE
        self.report(
            code.at(
                name.span,
                label,
                name=name.name,
                context=context,
                help=did_you_mean(name.name, allowed) or fallback,
            )
        )
        return False

    def _attributes(
        self, block: ast.Block, allowed: Iterable[str], context: str
    ) -> dict[str, ast.Attribute]:
        allowed = tuple(allowed)
        found: dict[str, ast.Attribute] = {}
        for item in block.body.items:
            if isinstance(item, ast.Attribute) and item.name.name in allowed:
                found[item.name.name] = item
            else:
                name_span = item_name_span(item)
                name = item.kind.name if isinstance(item, ast.Block) else item.name.name
                code = (
                    codes.UNKNOWN_BLOCK if isinstance(item, ast.Block) else codes.UNKNOWN_ATTRIBUTE
                )
                self.report(
                    code.at(
                        name_span,
                        "not allowed here",
                        name=name,
                        context=context,
                        help=did_you_mean(name, allowed),
                    )
                )
        return found

    def _string(self, attribute: ast.Attribute | None, scope: Scope, what: str) -> str | None:
        if attribute is None:
            return None
        value = self.evaluator.typed(attribute.value, scope, t.STR, f"`{what}`")
        return value if isinstance(value, str) else None

    def not_positive(
        self, span: Span, name: str, value: object, *, example: str, zero_allowed: bool = False
    ) -> None:
        """Reports an amount, duration or count below its least value (E0405), as written
        (`-4Gi`) or computed (`4Gi - 8Gi`), at the value; a negative one is offered its
        opposite."""
        negative = _is_negative(value)
        if negative:
            fix = f"write `{name} = {-value}`"  # type: ignore[operator]
        else:
            fix = f"write a value such as `{name} = {example}`"
        if not zero_allowed:
            fix += f", or leave `{name}` out for its default"
        self.report(
            codes.NON_POSITIVE_RESOURCE.at(
                span,
                f"this is {value}",
                name=name,
                bound="zero or more" if zero_allowed else "greater than zero",
                help=fix,
            )
        )

    def passes_to_a_process(self, value: str, expr: ast.Expr, name: str) -> bool:
        """Whether a string can be a process's argument or environment value: it holds no
        NUL character (reported at the NUL when the string is a literal)."""
        if "\x00" not in value:
            return True
        span = expr.span
        if isinstance(expr, ast.StrLit):
            at = escapes.decode(expr.raw).nul_at
            if at is not None:
                span = Span(span.path, span.start + at[0], span.start + at[1])
        self.report(
            codes.INVALID_VALUE.at(
                span,
                "a NUL character",
                name=name,
                reason="a NUL character cannot be passed to a process",
                help="remove the NUL; pass binary data in a file input instead",
            )
        )
        return False

    def _string_map(
        self, blocks: list[ast.Block], scope: Scope, what: str, *, template: bool
    ) -> dict[str, str]:
        result: dict[str, str] = {}
        for block in blocks:
            for item in self._attributes_of(block.body.items, f'`NAME = "value"` in `{what}`'):
                if not ENV_NAME.match(item.name.name):
                    self.report(
                        codes.INVALID_VALUE.at(
                            item.name.span,
                            "not a variable name",
                            name=item.name.name,
                            reason="environment variable names are letters, digits and `_`",
                            help=f"write `{_variable_name(item.name.name)}`",
                        )
                    )
                    continue
                value = self.evaluator.value(item.value, scope)
                if value is INVALID:
                    continue
                if isinstance(value, (t.Symbolic, list, dict)):
                    self.report(
                        codes.TYPE_MISMATCH.at(
                            item.value.span,
                            f"this is {t.describe(value)}",
                            expected=f"a string for `{item.name.name}`",
                            found=t.describe(value),
                            help="an environment value is text: write a string, or a "
                            'template such as `"{{ params.name }}"`',
                        )
                    )
                    continue
                if isinstance(value, str) and not self.passes_to_a_process(
                    value, item.value, item.name.name
                ):
                    continue
                result[item.name.name] = (
                    value
                    if isinstance(value, str)
                    else str(t.to_json(value)).lower()
                    if isinstance(value, bool)
                    else str(t.to_json(value))
                )
        return result

    def _settings(self, body: ast.Body, scope: Scope) -> dict[str, object]:
        result: dict[str, object] = {}
        for item in body.items:
            if isinstance(item, ast.Attribute):
                value = self.evaluator.value(item.value, scope)
                if value is not INVALID:
                    result[item.name.name] = t.to_json(value)
            elif isinstance(item, ast.Block):
                result[item.kind.name] = self._settings(item.body, scope)
        return result


@dataclass(eq=False)
class ItemsByKind:
    attributes: list[ast.Attribute]
    fields: list[ast.Field]
    blocks: list[ast.Block]


def partition_items(items: Iterable[ast.Item]) -> ItemsByKind:
    parts = ItemsByKind([], [], [])
    for item in items:
        if isinstance(item, ast.Attribute):
            parts.attributes.append(item)
        elif isinstance(item, ast.Field):
            parts.fields.append(item)
        else:
            parts.blocks.append(item)
    return parts


def item_name(item: ast.Item) -> str:
    """The name an item is written with: a block's kind, or an attribute's or field's name."""
    return item.kind.name if isinstance(item, ast.Block) else item.name.name


def item_name_span(item: ast.Item) -> Span:
    return item.kind.span if isinstance(item, ast.Block) else item.name.span


def artifact_accepts(expected: t.Type, actual: t.Type) -> bool:
    """Whether an artifact of type `actual` may feed an input of type `expected`. An artifact
    whose type was reported as unknown (`any`) fits anywhere: it is not reported again."""
    if t.ANY in (expected, actual):
        return True
    if expected.name == "list" and actual.name == "list":
        return artifact_accepts(expected.args[0], actual.args[0])
    if expected.name == actual.name:
        return True
    # A declared subtype is accepted where its base kind is expected, never the reverse.
    return expected.name in t.ARTIFACT_KINDS and expected.name == actual.artifact_kind


def _is_negative(value: object) -> bool:
    if isinstance(value, t.Quantity):
        return value.amount < 0
    if isinstance(value, t.Duration):
        return value.seconds < 0
    return t.is_number(value) and value < 0  # type: ignore[operator]


def _variable_name(name: str) -> str:
    """`LOG-LEVEL` as an environment variable name: `LOG_LEVEL`."""
    cleaned = re.sub(r"[^A-Za-z0-9_]", "_", name) or "NAME"
    return "_" + cleaned if cleaned[0].isdigit() else cleaned
