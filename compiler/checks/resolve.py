"""Resolution: from a loaded module to a checked `Program`, one pipeline at a time.

Each kind of block has a method that knows which attributes and nested blocks it accepts;
anything else is a located diagnostic with the closest accepted name. Values are evaluated
with params bound, so a resource computed from a param is checked like a literal.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlc.checks import types as t
from mlc.checks.evaluate import INVALID, Evaluator, MetricSource, Namespace, Scope
from mlc.checks.loader import LoadedModule
from mlc.checks.params import format_constraint, parse_override, placeholder
from mlc.checks.program import (
    DatasetDecl,
    InputDecl,
    NodePoolDecl,
    OutputDecl,
    ParamDecl,
    PipelineOutputDecl,
    Program,
    ResourceRequest,
    StepDecl,
    TargetDecl,
)
from mlc.checks.suggest import did_you_mean
from mlc.checks.templates import check_template, split_command
from mlc.diagnostics import Diagnostic, Label
from mlc.diagnostics import catalog as codes
from mlc.front import ast
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


@dataclass
class Profile:
    """A named `resources` block, evaluated where it was declared."""

    block: ast.Block
    module: LoadedModule


@dataclass
class Template:
    """A named step `template` block."""

    block: ast.Block
    module: LoadedModule


@dataclass
class ModuleScope:
    """Top-level declarations of one file, by name."""

    module: LoadedModule
    types: dict[str, t.Type] = field(default_factory=dict)
    profiles: dict[str, Profile] = field(default_factory=dict)
    templates: dict[str, Template] = field(default_factory=dict)
    pipelines: dict[str, ast.Block] = field(default_factory=dict)
    targets: dict[str, ast.Block] = field(default_factory=dict)


BUILTIN_TYPES: dict[str, t.Type] = {kind: t.artifact(kind, kind) for kind in t.ARTIFACT_KINDS}


class Resolver:
    """Resolves the modules of one compilation; diagnostics go to a shared list."""

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

    def report(self, diagnostic: Diagnostic) -> None:
        """Adds a diagnostic."""
        self.diagnostics.append(diagnostic)

    # -- files ---------------------------------------------------------------------------------------

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
                        secondary=[Label(seen[key], "first defined here")]
                        if key in seen
                        else [],
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
            if kind not in TOP_LEVEL_KINDS:
                self.report(
                    codes.UNKNOWN_BLOCK.at(
                        block.kind.span,
                        "not a top-level block",
                        name=kind,
                        context="a spec file",
                        help=did_you_mean(kind, TOP_LEVEL_KINDS),
                    )
                )
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
                codes.MISPLACED_BLOCK.at(block.type.span, "remove it", what=f"a type on `{kind}`")
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
        return names

    # -- pipelines -----------------------------------------------------------------------------------

    def resolve_pipeline(self, loaded: LoadedModule, block: ast.Block, display: str) -> Program:
        """Resolves one pipeline block and every target of its file."""
        assert block.label is not None
        scope = self.scope_of(loaded)
        self._current = scope
        base_dir = Path(display).parent.as_posix() or "."
        program = Program(display, base_dir, block.label.name, block.label.span)
        parts = _partition(block.body.items)
        for item in parts.attributes + parts.fields:
            self.report(
                codes.UNKNOWN_ATTRIBUTE.at(
                    item.name.span,
                    "a pipeline holds blocks",
                    name=item.name.name,
                    context=f"pipeline `{program.name}`",
                    help="put params in `params { … }` and settings inside a `step`",
                )
            )
        params_blocks = [b for b in parts.blocks if b.kind.name == "params"]
        for extra in params_blocks[1:]:
            self.report(
                codes.DUPLICATE_DEFINITION.at(extra.kind.span, "", kind="block", name="params")
            )
        if params_blocks:
            self._resolve_params(program, params_blocks[0])
        self._check_overrides(program, block)
        params_ns = Namespace(
            "params",
            {p.name: p.value for p in program.params.values()},
            on_access=lambda name: None,
        )
        module_names = self.module_names(loaded)
        base_names: dict[str, object] = {
            **module_names,
            "params": params_ns,
            "latest": ("latest", None),
        }

        step_blocks: list[ast.Block] = []
        for child in parts.blocks:
            kind = child.kind.name
            if kind == "params":
                continue
            if kind == "dataset":
                self._check_header(child, allow_type=True, allow_extends=False, allow_foreach=False)
                self._resolve_dataset(program, child, scope, Scope(base_names, "a dataset"))
            elif kind == "step":
                self._check_header(
                    child,
                    allow_type=False,
                    allow_extends=True,
                    allow_foreach=True,
                    allow_finally=True,
                )
                if child.label is None:
                    self.report(
                        codes.MISSING_ATTRIBUTE.at(
                            child.kind.span,
                            "needs a name",
                            context="this step",
                            name="name",
                            help="write `step train { … }`",
                        )
                    )
                    continue
                if child.label.name in program.steps or any(
                    b.label and b.label.name == child.label.name for b in step_blocks
                ):
                    self.report(
                        codes.DUPLICATE_DEFINITION.at(
                            child.label.span,
                            "defined again here",
                            kind="step",
                            name=child.label.name,
                            help="rename one of them",
                        )
                    )
                    continue
                step_blocks.append(child)
            elif kind == "outputs":
                continue
            else:
                self.report(
                    codes.UNKNOWN_BLOCK.at(
                        child.kind.span,
                        "not allowed in a pipeline",
                        name=kind,
                        context=f"pipeline `{program.name}`",
                        help=did_you_mean(kind, PIPELINE_KINDS),
                    )
                )

        # Outputs first, so inputs and conditions may refer to steps declared further down.
        declared_outputs: dict[str, dict[str, OutputDecl]] = {}
        templates: dict[str, list[ast.Item]] = {}
        for child in step_blocks:
            assert child.label is not None
            items = self._template_items(child, loaded)
            templates[child.label.name] = items
            declared_outputs[child.label.name] = self._resolve_outputs(
                items, scope, child.label.name
            )
        foreach_steps = {b.label.name for b in step_blocks if b.label and b.foreach}
        finally_steps = {b.label.name for b in step_blocks if b.label and b.is_finally}

        for child in step_blocks:
            assert child.label is not None
            used: set[str] = set()
            params_ns.on_access = used.add
            step = self._resolve_step(
                program,
                child,
                templates[child.label.name],
                declared_outputs,
                foreach_steps,
                finally_steps,
                Scope(dict(base_names), f"step `{child.label.name}`"),
            )
            step.params_used |= used
            program.steps[step.name] = step
        params_ns.on_access = None
        for param in program.params.values():
            param.used = any(param.name in s.params_used for s in program.steps.values())

        for child in parts.blocks:
            if child.kind.name == "outputs":
                self._resolve_pipeline_outputs(program, child, declared_outputs)

        for name, target_block in scope.targets.items():
            target = self._resolve_target(
                target_block, Scope(dict(module_names), f"target `{name}`")
            )
            if target is not None:
                program.targets[name] = target
        return program

    # -- params --------------------------------------------------------------------------------------

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
                        item.name.span, "defined again here", kind="param", name=name
                    )
                )
                continue
            declared = self._param_type(item.type)
            if declared is None:
                continue
            constraint_text, low, high = self._constraint(item, declared)
            default: object = None
            if item.value is not None:
                default = self.evaluator.typed(item.value, empty, declared, f"param `{name}`")
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
            )

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
                        node.span, "", name="enum", reason='list the choices: `enum("a", "b")`'
                    )
                )
                return None
            choices = []
            for choice in node.constraint.choices:
                if not isinstance(choice, ast.StrLit):
                    self.report(
                        codes.INVALID_CONSTRAINT.at(
                            choice.span, "not a string", name="enum", reason="choices are strings"
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
                            node.span, "", name="map", reason="write `map[str, T]`"
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
                    "",
                    name=item.name.name,
                    reason="a range is written `(low..high)`",
                )
            )
            return (None, None, None)
        if declared.name not in ("int", "float", "duration", "quantity"):
            self.report(
                codes.INVALID_CONSTRAINT.at(
                    constraint.span,
                    "",
                    name=item.name.name,
                    reason=f"`{declared}` cannot have a range",
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
                )
            )

    # -- datasets ------------------------------------------------------------------------------------

    def _resolve_dataset(
        self, program: Program, block: ast.Block, scope: ModuleScope, expr_scope: Scope
    ) -> None:
        if block.label is None:
            self.report(
                codes.MISSING_ATTRIBUTE.at(
                    block.kind.span, "needs a name", context="this dataset", name="name"
                )
            )
            return
        name = block.label.name
        if name in program.datasets:
            self.report(
                codes.DUPLICATE_DEFINITION.at(
                    block.label.span, "defined again here", kind="dataset", name=name
                )
            )
            return
        dataset_type = BUILTIN_TYPES["dataset"]
        if block.type is not None:
            found = self._artifact_type_named(block.type, scope)
            if found is not None:
                dataset_type = found
        attributes = self._attributes(block, ("uri", "version"), f"dataset `{name}`")
        uri = self._string(attributes.get("uri"), expr_scope, "uri")
        version_kind, version_value = "latest", None
        version = attributes.get("version")
        if "uri" not in attributes:
            self.report(
                codes.MISSING_ATTRIBUTE.at(
                    block.label.span,
                    "",
                    context=f"dataset `{name}`",
                    name="uri",
                    help='add `uri = "data/…"`',
                )
            )
        if version is None:
            self.report(
                codes.MISSING_ATTRIBUTE.at(
                    block.label.span,
                    "",
                    context=f"dataset `{name}`",
                    name="version",
                    help='pin it with `version = "sha256:…"`, name a tag with `version = tag("v1")`, or track it with `version = latest`',
                )
            )
        else:
            value = self.evaluator.value(version.value, expr_scope)
            if isinstance(value, str):
                if DIGEST.match(value):
                    version_kind, version_value = "digest", value
                else:
                    self.report(
                        codes.INVALID_VERSION.at(
                            version.value.span,
                            "not a sha256 digest",
                            value=f"`{value}`",
                            help="a digest is `sha256:` and 64 lowercase hex digits; `mlc data add PATH` prints it",
                        )
                    )
            elif isinstance(value, tuple) and value and value[0] in ("tag", "latest"):
                version_kind, version_value = value[0], value[1]
            elif value is not INVALID:
                self.report(
                    codes.INVALID_VERSION.at(
                        version.value.span,
                        "",
                        value=t.describe(value),
                        help='write `"sha256:…"`, `tag("…")` or `latest`',
                    )
                )
        program.datasets[name] = DatasetDecl(
            name, dataset_type, uri or "", version_kind, version_value, block.label.span
        )

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

    # -- steps ---------------------------------------------------------------------------------------

    def _template_items(self, block: ast.Block, loaded: LoadedModule) -> list[ast.Item]:
        """The step's items after those of its template (step items override)."""
        if block.extends is None:
            return list(block.body.items)
        template = self._find_template(block.extends, loaded)
        if template is None:
            return list(block.body.items)
        inherited = []
        for item in template.block.body.items:
            name = item.kind.name if isinstance(item, ast.Block) else item.name.name
            if name in TEMPLATE_EXCLUDED:
                self.report(
                    codes.MISPLACED_BLOCK.at(
                        _item_name_span(item),
                        "remove it",
                        what=f"`{name}` in a template",
                        help="set it on each step",
                    )
                )
                continue
            inherited.append(item)
        return inherited + list(block.body.items)

    def _find_template(self, ident: ast.Ident, loaded: LoadedModule) -> Template | None:
        scope = self.scope_of(loaded)
        alias, _, name = ident.name.rpartition(".")
        if alias:
            imported = loaded.imports.get(alias)
            if imported is None:
                self.report(
                    codes.UNKNOWN_NAME.at(
                        ident.span,
                        "no such import",
                        name=alias,
                        help=did_you_mean(alias, loaded.imports),
                    )
                )
                return None
            scope = self.scope_of(imported)
        template = scope.templates.get(name)
        if template is None:
            self.report(
                codes.UNKNOWN_TEMPLATE.at(
                    ident.span,
                    "no such template",
                    name=ident.name,
                    help=did_you_mean(name, scope.templates),
                )
            )
        return template

    def _resolve_outputs(
        self, items: list[ast.Item], scope: ModuleScope, step: str
    ) -> dict[str, OutputDecl]:
        outputs: dict[str, OutputDecl] = {}
        for item in items:
            if isinstance(item, ast.Block) and item.kind.name == "outputs":
                for entry in item.body.items:
                    if not isinstance(entry, ast.Field) or entry.value is not None:
                        self.report(
                            codes.MISPLACED_BLOCK.at(
                                _item_name_span(entry),
                                "declare an output as `name: type`",
                                what="this item",
                                help="outputs have a name and a type, such as `model: model`",
                            )
                        )
                        continue
                    output_type = self._artifact_type(entry.type, scope)
                    if output_type is None:
                        continue
                    if entry.name.name in outputs:
                        self.report(
                            codes.DUPLICATE_DEFINITION.at(
                                entry.name.span, "", kind="output", name=entry.name.name
                            )
                        )
                        continue
                    outputs[entry.name.name] = OutputDecl(
                        entry.name.name, output_type, entry.name.span
                    )
        return outputs

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
                if (
                    not isinstance(entry, ast.Field)
                    or entry.type.name.name not in t.METRIC_SCALARS
                    or entry.value is not None
                ):
                    self.report(
                        codes.UNKNOWN_TYPE.at(
                            _item_name_span(entry)
                            if not isinstance(entry, ast.Field)
                            else entry.type.span,
                            "metric keys are `int`, `float`, `bool` or `str`",
                            name=entry.type.name.name if isinstance(entry, ast.Field) else "this",
                            help=did_you_mean(entry.type.name.name, t.METRIC_SCALARS)
                            if isinstance(entry, ast.Field)
                            else None,
                        )
                    )
                    continue
                keys.append((entry.name.name, entry.type.name.name))
            return t.artifact(base.name, "metrics", tuple(keys))
        if node.constraint is not None or node.args:
            self.report(
                codes.MISPLACED_BLOCK.at(node.span, "", what="type arguments on an artifact type")
            )
        return base

    def _resolve_step(
        self,
        program: Program,
        block: ast.Block,
        items: list[ast.Item],
        outputs: dict[str, dict[str, OutputDecl]],
        foreach_steps: set[str],
        finally_steps: set[str],
        scope: Scope,
    ) -> StepDecl:
        assert block.label is not None
        name = block.label.name
        step = StepDecl(name, block.span, block.head_span, is_finally=block.is_finally)
        step.outputs = outputs[name]
        context = f"step `{name}`"
        if block.foreach is not None:
            items_value = self.evaluator.value(block.foreach.items, scope)
            if items_value is not INVALID:
                if not isinstance(items_value, list):
                    self.report(
                        codes.FOREACH_NOT_LIST.at(
                            block.foreach.items.span,
                            f"this is {t.describe(items_value)}",
                            found=t.describe(items_value),
                        )
                    )
                else:
                    step.foreach_var = block.foreach.var.name
                    step.foreach_items = items_value
                    step.features["foreach"] = block.foreach.span
                    scope = scope.child(
                        **{block.foreach.var.name: items_value[0] if items_value else 0}
                    )
        attributes: dict[str, ast.Attribute] = {}
        blocks: dict[str, list[ast.Block]] = {}
        for item in items:
            if isinstance(item, ast.Attribute):
                if item.name.name not in STEP_ATTRIBUTES:
                    self.report(
                        codes.UNKNOWN_ATTRIBUTE.at(
                            item.name.span,
                            "not a step setting",
                            name=item.name.name,
                            context=context,
                            help=did_you_mean(item.name.name, STEP_ATTRIBUTES),
                        )
                    )
                    continue
                attributes[item.name.name] = item
            elif isinstance(item, ast.Block):
                if item.kind.name not in STEP_BLOCKS:
                    self.report(
                        codes.UNKNOWN_BLOCK.at(
                            item.kind.span,
                            "not allowed in a step",
                            name=item.kind.name,
                            context=context,
                            help=did_you_mean(item.kind.name, STEP_BLOCKS),
                        )
                    )
                    continue
                self._check_header(item, allow_type=False, allow_extends=False, allow_foreach=False)
                if item.label is not None:
                    self.report(
                        codes.MISPLACED_BLOCK.at(
                            item.label.span, "remove it", what=f"a name on `{item.kind.name}`"
                        )
                    )
                blocks.setdefault(item.kind.name, []).append(item)
                if item.kind.name == "resources":
                    attributes.pop("resources", None)
            else:
                self.report(
                    codes.MISPLACED_BLOCK.at(
                        item.name.span,
                        "a step holds settings",
                        what=f"the typed field `{item.name.name}`",
                        help=f"write `{item.name.name} = …`, or declare it inside `inputs`/`outputs`",
                    )
                )

        self._resolve_command(step, attributes, blocks, scope, block)
        step.image = self._string(attributes.get("image"), scope, "image")
        if step.image is not None:
            step.features["image"] = attributes["image"].name.span
        step.env = self._string_map(blocks.get("env", []), scope, "env", template=True)
        self._resolve_secrets(step, blocks.get("secrets", []), scope)
        self._resolve_inputs(
            program, step, blocks.get("inputs", []), outputs, foreach_steps, finally_steps, scope
        )
        self._resolve_resources(
            step, attributes.get("resources"), blocks.get("resources", []), scope
        )
        self._resolve_policies(step, attributes, scope)
        self._resolve_ordering(
            program, step, attributes, outputs, finally_steps, foreach_steps, scope
        )
        self._check_templates(step, attributes, blocks, scope)
        if "args" in blocks and step.command_kind != "call":
            self.report(
                codes.MISPLACED_BLOCK.at(
                    blocks["args"][0].kind.span,
                    "only `call` steps take args",
                    what="`args`",
                    help="pass values to a `run` command through `{{ params.name }}`",
                )
            )
        return step

    def _resolve_command(
        self,
        step: StepDecl,
        attributes: dict[str, ast.Attribute],
        blocks: dict[str, list[ast.Block]],
        scope: Scope,
        block: ast.Block,
    ) -> None:
        run, call = attributes.get("run"), attributes.get("call")
        context = f"step `{step.name}`"
        if run is not None and call is not None:
            self.report(
                codes.CONFLICTING_ATTRIBUTES.at(
                    call.name.span,
                    "one of them must go",
                    context=context,
                    first="run",
                    second="call",
                    secondary=[Label(run.name.span, "`run` is set here")],
                    help="a step either runs a command (`run`) or calls a Python function (`call`)",
                )
            )
        if run is None and call is None:
            assert block.label is not None
            self.report(
                codes.MISSING_ATTRIBUTE.at(
                    block.label.span,
                    "nothing to run",
                    context=context,
                    name="run` or `call",
                    help='add `run = "python train.py"` or `call = "module:function"`',
                )
            )
            return
        shell = attributes.get("shell")
        use_shell = False
        if shell is not None:
            value = self.evaluator.typed(shell.value, scope, t.BOOL, "`shell`")
            use_shell = value is True
        if run is not None:
            value = run.value
            if isinstance(value, ast.StrLit):
                step.command_kind = "shell" if use_shell else "exec"
                step.argv = (value.value,) if use_shell else tuple(split_command(value.value))
                if not step.argv:
                    self.report(
                        codes.INVALID_VALUE.at(
                            value.span, "empty", name="run", reason="the command is empty"
                        )
                    )
            elif isinstance(value, ast.ListLit) and all(
                isinstance(i, ast.StrLit) for i in value.items
            ):
                step.command_kind = "exec"
                step.argv = tuple(i.value for i in value.items if isinstance(i, ast.StrLit))
                if use_shell:
                    self.report(
                        codes.CONFLICTING_ATTRIBUTES.at(
                            shell.name.span if shell else run.name.span,
                            "",
                            context=context,
                            first="shell",
                            second="run = [ … ]",
                            help="exec form never uses a shell; write `run` as one string to use `shell = true`",
                        )
                    )
                if not step.argv:
                    self.report(
                        codes.INVALID_VALUE.at(
                            value.span, "empty", name="run", reason="the command is empty"
                        )
                    )
            else:
                self.report(
                    codes.TYPE_MISMATCH.at(
                        value.span,
                        "write the command as text",
                        expected="a string or a list of strings for `run`",
                        found="an expression",
                        help='templates go inside the string: `run = "train --n {{ params.n }}"`',
                    )
                )
        elif call is not None:
            function = self._string(call, scope, "call")
            if function is not None:
                if not CALL_TARGET.match(function):
                    self.report(
                        codes.INVALID_CALL_TARGET.at(
                            call.value.span,
                            "not `module:function`",
                            value=function,
                            help='write the module path and the function name, such as `"iris.steps:train"`',
                        )
                    )
                step.command_kind = "call"
                step.function = function
                if shell is not None:
                    self.report(
                        codes.CONFLICTING_ATTRIBUTES.at(
                            shell.name.span, "", context=context, first="shell", second="call"
                        )
                    )
            step.args = {}
            for args_block in blocks.get("args", []):
                for item in args_block.body.items:
                    if not isinstance(item, ast.Attribute):
                        self.report(
                            codes.MISPLACED_BLOCK.at(
                                _item_name_span(item),
                                "",
                                what="this item",
                                help="write `name = value`",
                            )
                        )
                        continue
                    value = self.evaluator.value(item.value, scope)
                    if isinstance(value, t.Symbolic):
                        self.report(
                            codes.NOT_CONSTANT.at(
                                item.value.span,
                                "known only at run time",
                                name=item.name.name,
                                help="pass the metrics artifact as an input instead",
                            )
                        )
                        continue
                    if value is not INVALID:
                        step.args[item.name.name] = t.to_json(value)

    def _resolve_secrets(self, step: StepDecl, blocks: list[ast.Block], scope: Scope) -> None:
        for block in blocks:
            step.features.setdefault("secrets", block.kind.span)
            for item in block.body.items:
                if not isinstance(item, ast.Attribute):
                    self.report(
                        codes.MISPLACED_BLOCK.at(
                            _item_name_span(item),
                            "",
                            what="this item",
                            help='write `ENV_NAME = "secret-name/key"`',
                        )
                    )
                    continue
                reference = self._string(item, scope, "a secret")
                if reference is None:
                    continue
                if not SECRET_REF.match(reference):
                    self.report(
                        codes.INVALID_SECRET.at(
                            item.value.span,
                            "not `name/key`",
                            value=reference,
                            help='name the secret and the key in it, such as `"huggingface/token"`; secret values never appear in specs',
                        )
                    )
                    continue
                secret, _, key = reference.partition("/")
                step.secrets[item.name.name] = (secret, key)

    def _resolve_inputs(
        self,
        program: Program,
        step: StepDecl,
        blocks: list[ast.Block],
        outputs: dict[str, dict[str, OutputDecl]],
        foreach_steps: set[str],
        finally_steps: set[str],
        scope: Scope,
    ) -> None:
        names: set[str] = set()
        for block in blocks:
            for item in block.body.items:
                if isinstance(item, ast.Block) or (
                    isinstance(item, ast.Field) and item.value is None
                ):
                    self.report(
                        codes.MISPLACED_BLOCK.at(
                            _item_name_span(item),
                            "an input needs a source",
                            what="this item",
                            help="write `name = step.output` or `name = dataset`",
                        )
                    )
                    continue
                name_ident = item.name
                if name_ident.name in names or name_ident.name in step.outputs:
                    self.report(
                        codes.DUPLICATE_DEFINITION.at(
                            name_ident.span, "", kind="input", name=name_ident.name
                        )
                    )
                    continue
                names.add(name_ident.name)
                declared: t.Type | None = None
                if isinstance(item, ast.Field):
                    declared = self._artifact_type(item.type, self._scope_for_types())
                source_expr = item.value
                assert source_expr is not None
                bound = self._bind_source(program, step, source_expr, outputs, finally_steps)
                if bound is None:
                    continue
                source_kind, node, output, source_type = bound
                fan_in = node in foreach_steps
                actual = t.list_of(source_type) if fan_in else source_type
                if declared is None:
                    declared = actual
                else:
                    expected_item = (
                        declared.args[0] if declared.name == "list" and declared.args else declared
                    )
                    if fan_in and declared.name != "list":
                        self.report(
                            codes.FAN_IN_NEEDS_LIST.at(
                                item.type.span if isinstance(item, ast.Field) else name_ident.span,
                                f"this must be `list[{source_type}]`",
                                name=name_ident.name,
                                step=step.name,
                                item=str(source_type),
                                source=node,
                                help=f"declare it as `{name_ident.name}: list[{expected_item}] = …`",
                            )
                        )
                        continue
                    if not _artifact_accepts(expected_item, source_type) or (
                        declared.name == "list" and not fan_in
                    ):
                        self.report(
                            codes.ARTIFACT_TYPE_MISMATCH.at(
                                source_expr.span,
                                f"this is a `{actual}`",
                                name=name_ident.name,
                                step=step.name,
                                expected=str(declared),
                                found=str(actual),
                                help=self._suggest_source(
                                    program, step.name, outputs, expected_item, source_expr
                                ),
                            )
                        )
                        continue
                step.inputs.append(
                    InputDecl(
                        name_ident.name,
                        declared,
                        source_kind,
                        node,
                        output,
                        fan_in,
                        name_ident.span,
                        source_expr.span,
                    )
                )

    def _scope_for_types(self) -> ModuleScope:
        """The module whose pipeline is being resolved: its types are visible in its steps."""
        assert self._current is not None
        return self._current

    def _bind_source(
        self,
        program: Program,
        step: StepDecl,
        expr: ast.Expr,
        outputs: dict[str, dict[str, OutputDecl]],
        finally_steps: set[str],
    ) -> tuple[str, str, str | None, t.Type] | None:
        if isinstance(expr, ast.Name):
            if expr.name in program.datasets:
                return ("dataset", expr.name, None, program.datasets[expr.name].type)
            if expr.name in outputs:
                candidates = list(outputs[expr.name])
                self.report(
                    codes.UNKNOWN_OUTPUT.at(
                        expr.span,
                        "name one of its outputs",
                        step=expr.name,
                        name="(none)",
                        help=f"write `{expr.name}.{candidates[0]}`"
                        if candidates
                        else f"step `{expr.name}` has no outputs",
                    )
                )
                return None
            self.report(
                codes.UNKNOWN_NAME.at(
                    expr.span,
                    "not a dataset or step",
                    name=expr.name,
                    help=did_you_mean(expr.name, [*program.datasets, *outputs]),
                )
            )
            return None
        if isinstance(expr, ast.Member) and isinstance(expr.value, ast.Name):
            source_step = expr.value.name
            if source_step not in outputs:
                self.report(
                    codes.UNKNOWN_STEP.at(
                        expr.value.span,
                        "no such step",
                        name=source_step,
                        help=did_you_mean(source_step, [*outputs, *program.datasets]),
                    )
                )
                return None
            if source_step == step.name:
                self.report(
                    codes.SELF_REFERENCE.at(
                        expr.span, "a step cannot read its own output", name=step.name
                    )
                )
                return None
            if source_step in finally_steps and not step.is_finally:
                self.report(
                    codes.FINALLY_AS_INPUT.at(
                        expr.span, "runs after every other step", step=step.name, source=source_step
                    )
                )
                return None
            output = outputs[source_step].get(expr.name.name)
            if output is None:
                self.report(
                    codes.UNKNOWN_OUTPUT.at(
                        expr.name.span,
                        "no such output",
                        step=source_step,
                        name=expr.name.name,
                        help=did_you_mean(expr.name.name, outputs[source_step]),
                    )
                )
                return None
            return ("step", source_step, expr.name.name, output.type)
        self.report(
            codes.TYPE_MISMATCH.at(
                expr.span,
                "not an artifact",
                expected="`step.output` or a dataset name",
                found="an expression",
            )
        )
        return None

    def _suggest_source(
        self,
        program: Program,
        step: str,
        outputs: dict[str, dict[str, OutputDecl]],
        wanted: t.Type,
        expr: ast.Expr,
    ) -> str | None:
        candidates = [
            f"{name}.{output}"
            for name, declared in outputs.items()
            if name != step
            for output, decl in declared.items()
            if _artifact_accepts(wanted, decl.type)
        ]
        candidates += [
            name for name, d in program.datasets.items() if _artifact_accepts(wanted, d.type)
        ]
        written = (
            expr.name.name
            if isinstance(expr, ast.Member)
            else (expr.name if isinstance(expr, ast.Name) else "")
        )
        ranked = sorted(candidates, key=lambda c: (0 if c.rsplit(".", 1)[-1] == written else 1, c))
        if not ranked:
            return None
        suggestion = did_you_mean(written, [c.rsplit(".", 1)[-1] for c in ranked])
        if suggestion:
            match = next(c for c in ranked if f"`{c.rsplit('.', 1)[-1]}`" in suggestion)
            return f"did you mean `{match}`?"
        return f"did you mean `{ranked[0]}`?" if len(ranked) == 1 else None

    def _resolve_resources(
        self,
        step: StepDecl,
        attribute: ast.Attribute | None,
        blocks: list[ast.Block],
        scope: Scope,
    ) -> None:
        request = ResourceRequest()
        fields: dict[str, tuple[Any, Span]] = {}
        if attribute is not None:
            fields.update(self._profile_fields(attribute.value, scope))
        for block in blocks:
            fields.update(
                self._resource_fields(block.body, scope, f"the resources of step `{step.name}`")
            )
        self._apply_resources(request, fields, step)
        step.resources = request

    def _profile_fields(self, expr: ast.Expr, scope: Scope) -> dict[str, tuple[Any, Span]]:
        if isinstance(expr, ast.ObjectLit):
            return self._resource_fields(expr.body, scope, "these resources")
        value = self.evaluator.value(expr, scope)
        if value is INVALID:
            return {}
        if isinstance(value, Profile):
            names = self.module_names(value.module)
            fields = self._resource_fields(
                value.block.body, Scope(names, "a resource profile"), "a resource profile"
            )
            return {k: (v, expr.span) for k, (v, _) in fields.items()}
        self.report(
            codes.TYPE_MISMATCH.at(
                expr.span,
                f"this is {t.describe(value)}",
                expected="a resource profile or `{ cpu = …, memory = … }`",
                found=t.describe(value),
            )
        )
        return {}

    def _resource_fields(
        self, body: ast.Body, scope: Scope, context: str
    ) -> dict[str, tuple[Any, Span]]:
        fields: dict[str, tuple[Any, Span]] = {}
        for item in body.items:
            if not isinstance(item, ast.Attribute):
                self.report(
                    codes.MISPLACED_BLOCK.at(
                        _item_name_span(item),
                        "",
                        what="this item",
                        help='write `cpu = 2`, `memory = 4Gi`, `gpu = 1 of "t4"`',
                    )
                )
                continue
            name = item.name.name
            if name not in RESOURCE_FIELDS:
                self.report(
                    codes.UNKNOWN_ATTRIBUTE.at(
                        item.name.span,
                        "not a resource",
                        name=name,
                        context=context,
                        help=did_you_mean(name, RESOURCE_FIELDS)
                        or "resources are cpu, memory, gpu, shm and disk",
                    )
                )
                continue
            expected = CPU if name == "cpu" else None
            value = self.evaluator.value(item.value, scope, expected)
            if value is not INVALID:
                fields[name] = (value, item.value.span)
        return fields

    def _apply_resources(
        self, request: ResourceRequest, fields: dict[str, tuple[Any, Span]], step: StepDecl
    ) -> None:
        for name, (value, span) in fields.items():
            request.spans[name] = span
            if name == "cpu":
                if isinstance(value, t.Quantity) and value.dimension == "millicores":
                    millis = round(value.amount)
                elif t.is_number(value):
                    millis = round(float(value) * 1000)
                elif isinstance(value, (t.Quantity, t.Duration)):
                    self.report(
                        codes.WRONG_UNIT.at(
                            span,
                            "not CPU",
                            unit=_unit_of(value),
                            kind="CPU",
                            help="CPU is a number of cores (`2`, `0.5`) or millicores (`500m`)",
                        )
                    )
                    continue
                else:
                    self.report(
                        codes.TYPE_MISMATCH.at(
                            span,
                            f"this is {t.describe(value)}",
                            expected="a number of cores for `cpu`",
                            found=f"`{t.type_of(value)}`",
                        )
                    )
                    continue
                if millis <= 0:
                    self.report(codes.NON_POSITIVE_RESOURCE.at(span, "", name="cpu"))
                    continue
                request.cpu_millis = millis
            elif name in ("memory", "shm", "disk"):
                if t.is_number(value):
                    self.report(
                        codes.MEMORY_WITHOUT_UNIT.at(
                            span,
                            "no unit",
                            name=name,
                            value=value,
                            help=f"write `{name} = {value}Mi` or `{name} = {value}Gi`",
                        )
                    )
                    continue
                if not isinstance(value, t.Quantity) or value.dimension != "bytes":
                    if isinstance(value, (t.Quantity, t.Duration)):
                        self.report(
                            codes.WRONG_UNIT.at(
                                span,
                                "not an amount of memory",
                                unit=_unit_of(value),
                                kind="memory",
                                help="memory units are Ki, Mi, Gi, Ti (or K, M, G, T)",
                            )
                        )
                    else:
                        self.report(
                            codes.TYPE_MISMATCH.at(
                                span,
                                f"this is {t.describe(value)}",
                                expected=f"an amount of memory for `{name}`",
                                found=f"`{t.type_of(value)}`",
                            )
                        )
                    continue
                amount = round(value.amount)
                if amount <= 0:
                    self.report(codes.NON_POSITIVE_RESOURCE.at(span, "", name=name))
                    continue
                setattr(request, f"{name}_bytes", amount)
                if name in ("shm", "disk"):
                    step.features[name] = span
            elif name == "gpu":
                if isinstance(value, bool) or not (isinstance(value, (int, t.GpuValue))):
                    self.report(
                        codes.INVALID_GPU_COUNT.at(
                            span, "not a whole number", value=t.describe(value)
                        )
                    )
                    continue
                gpu = value if isinstance(value, t.GpuValue) else t.GpuValue(value)
                if gpu.count < 1:
                    self.report(
                        codes.INVALID_GPU_COUNT.at(
                            span,
                            "must be at least 1",
                            value=gpu.count,
                            help="remove `gpu` for a step that needs no GPU",
                        )
                    )
                    continue
                request.gpu = gpu
                step.features["gpu"] = span
                if gpu.accelerator:
                    step.features["accelerator"] = span
                if gpu.mig:
                    step.features["mig"] = span

    def _resolve_policies(
        self, step: StepDecl, attributes: dict[str, ast.Attribute], scope: Scope
    ) -> None:
        retries = attributes.get("retries")
        if retries is not None:
            value = self.evaluator.typed(retries.value, scope, t.INT, "`retries`")
            if value is not INVALID:
                if value < 0 or value > 100:
                    self.report(
                        codes.INVALID_VALUE.at(
                            retries.value.span,
                            "",
                            name="retries",
                            reason="retries are between 0 and 100",
                        )
                    )
                else:
                    step.retries = value
                    if value:
                        step.features["retries"] = retries.name.span
        for name in ("backoff", "max_backoff", "timeout"):
            attribute = attributes.get(name)
            if attribute is None:
                continue
            value = self.evaluator.value(attribute.value, scope, t.DURATION)
            if value is INVALID:
                continue
            if not isinstance(value, t.Duration):
                self.report(
                    codes.WRONG_UNIT.at(
                        attribute.value.span,
                        "not a duration",
                        unit=_unit_of(value),
                        kind="time",
                        help=f"write a duration such as `{name} = 30m`",
                    )
                    if isinstance(value, t.Quantity)
                    else codes.TYPE_MISMATCH.at(
                        attribute.value.span,
                        f"this is {t.describe(value)}",
                        expected=f"a duration for `{name}`",
                        found=f"`{t.type_of(value)}`",
                        help=f"write `{name} = 30m` (units ms, s, m, h, d, w)",
                    )
                )
                continue
            if value.seconds <= 0:
                self.report(codes.NON_POSITIVE_RESOURCE.at(attribute.value.span, "", name=name))
                continue
            if name == "timeout":
                step.timeout_seconds = value.seconds
                step.features["timeout"] = attribute.name.span
            elif name == "backoff":
                step.backoff_seconds = value.seconds
            else:
                step.max_backoff_seconds = value.seconds
        cache = attributes.get("cache")
        if cache is not None:
            value = self.evaluator.value(cache.value, scope, t.DURATION)
            if isinstance(value, bool):
                step.cache_enabled = value
            elif isinstance(value, t.Duration):
                step.cache_expire_seconds = int(value.seconds)
            elif value is not INVALID:
                self.report(
                    codes.TYPE_MISMATCH.at(
                        cache.value.span,
                        f"this is {t.describe(value)}",
                        expected="`true`, `false` or an expiry such as `7d` for `cache`",
                        found=f"`{t.type_of(value)}`",
                    )
                )
        parallelism = attributes.get("parallelism")
        if parallelism is not None:
            value = self.evaluator.typed(parallelism.value, scope, t.INT, "`parallelism`")
            if value is not INVALID:
                if step.foreach_var is None:
                    self.report(
                        codes.MISPLACED_BLOCK.at(
                            parallelism.name.span,
                            "only `foreach` steps fan out",
                            what="`parallelism`",
                            help="add `foreach item in …` to the step, or remove `parallelism`",
                        )
                    )
                elif value < 1:
                    self.report(
                        codes.NON_POSITIVE_RESOURCE.at(
                            parallelism.value.span, "", name="parallelism"
                        )
                    )
                else:
                    step.parallelism = value
        code = attributes.get("code")
        if code is not None:
            value = self.evaluator.typed(code.value, scope, t.list_of(t.STR), "`code`")
            if value is not INVALID:
                step.code = tuple(value)

    def _resolve_ordering(
        self,
        program: Program,
        step: StepDecl,
        attributes: dict[str, ast.Attribute],
        outputs: dict[str, dict[str, OutputDecl]],
        finally_steps: set[str],
        foreach_steps: set[str],
        scope: Scope,
    ) -> None:
        after = attributes.get("after")
        if after is not None:
            entries = after.value.items if isinstance(after.value, ast.ListLit) else (after.value,)
            for entry in entries:
                if not isinstance(entry, ast.Name):
                    self.report(
                        codes.TYPE_MISMATCH.at(
                            entry.span,
                            "",
                            expected="a step name in `after`",
                            found="an expression",
                            help="write `after = [prepare, train]`",
                        )
                    )
                    continue
                if entry.name not in outputs:
                    self.report(
                        codes.UNKNOWN_STEP.at(
                            entry.span,
                            "no such step",
                            name=entry.name,
                            help=did_you_mean(entry.name, outputs),
                        )
                    )
                    continue
                if entry.name == step.name:
                    self.report(
                        codes.SELF_REFERENCE.at(
                            entry.span, "a step cannot wait for itself", name=step.name
                        )
                    )
                    continue
                if entry.name in finally_steps and not step.is_finally:
                    self.report(
                        codes.FINALLY_AS_INPUT.at(
                            entry.span,
                            "runs after every other step",
                            step=step.name,
                            source=entry.name,
                        )
                    )
                    continue
                step.after.append((entry.name, entry.span))
        when = attributes.get("when")
        if when is not None:
            sources = {
                name: MetricSource(
                    name, {o: d.type for o, d in declared.items()}, name in foreach_steps
                )
                for name, declared in outputs.items()
                if name != step.name
            }
            value = self.evaluator.value(when.value, scope.child(**sources))
            if value is INVALID:
                return
            if (isinstance(value, t.Symbolic) and value.type == t.BOOL) or isinstance(value, bool):
                step.when = value
                step.when_span = when.value.span
                if isinstance(value, t.Symbolic):
                    for name in value.steps:
                        if name in finally_steps and not step.is_finally:
                            self.report(
                                codes.FINALLY_AS_INPUT.at(
                                    when.value.span,
                                    "runs after every other step",
                                    step=step.name,
                                    source=name,
                                )
                            )
                            step.when = None
            else:
                self.report(
                    codes.GATE_NOT_BOOL.at(
                        when.value.span,
                        f"this is {t.describe(value)}",
                        found=t.describe(value),
                        help="compare it: `when = evaluate.metrics.accuracy >= params.min_accuracy`",
                    )
                )

    def _check_templates(
        self,
        step: StepDecl,
        attributes: dict[str, ast.Attribute],
        blocks: dict[str, list[ast.Block]],
        scope: Scope,
    ) -> None:
        params = scope.names.get("params")
        names: dict[str, object] = {
            "params": dict.fromkeys(params.members if isinstance(params, Namespace) else ()),
            "inputs": {i.name: None for i in step.inputs},
            "outputs": dict.fromkeys(step.outputs),
            "run": {"id": None, "status": None},
            "step": {"name": None},
        }
        if step.foreach_var:
            names[step.foreach_var] = None
        run = attributes.get("run")
        targets: list[ast.StrLit] = []
        if run is not None:
            if isinstance(run.value, ast.StrLit):
                targets.append(run.value)
            elif isinstance(run.value, ast.ListLit):
                targets.extend(i for i in run.value.items if isinstance(i, ast.StrLit))
        for env in blocks.get("env", []):
            targets.extend(
                i.value
                for i in env.body.items
                if isinstance(i, ast.Attribute) and isinstance(i.value, ast.StrLit)
            )
        for literal in targets:
            used = check_template(literal, names, self.diagnostics)
            step.params_used |= used

    # -- pipeline outputs and targets -------------------------------------------------------------------

    def _resolve_pipeline_outputs(
        self, program: Program, block: ast.Block, outputs: dict[str, dict[str, OutputDecl]]
    ) -> None:
        seen: set[str] = set()
        for item in block.body.items:
            if not isinstance(item, ast.Attribute):
                self.report(
                    codes.MISPLACED_BLOCK.at(
                        _item_name_span(item),
                        "",
                        what="this item",
                        help="write `name = step.output`",
                    )
                )
                continue
            if item.name.name in seen:
                self.report(
                    codes.DUPLICATE_DEFINITION.at(
                        item.name.span, "", kind="pipeline output", name=item.name.name
                    )
                )
                continue
            seen.add(item.name.name)
            bound = self._bind_source(
                program,
                StepDecl("", item.span, item.span, is_finally=True),
                item.value,
                outputs,
                set(),
            )
            if bound is None:
                continue
            if bound[0] != "step":
                self.report(
                    codes.TYPE_MISMATCH.at(
                        item.value.span,
                        "a dataset",
                        expected="`step.output`",
                        found="a dataset",
                        help="pipeline outputs are results of steps",
                    )
                )
                continue
            program.outputs.append(
                PipelineOutputDecl(item.name.name, bound[1], bound[2] or "", item.span)
            )

    def _resolve_target(self, block: ast.Block, scope: Scope) -> TargetDecl | None:
        assert block.label is not None
        name = block.label.name
        context = f"target `{name}`"
        attributes: dict[str, ast.Attribute] = {}
        nested: dict[str, ast.Block] = {}
        for item in block.body.items:
            if isinstance(item, ast.Attribute):
                if item.name.name not in TARGET_ATTRIBUTES:
                    self.report(
                        codes.UNKNOWN_ATTRIBUTE.at(
                            item.name.span,
                            "not a target setting",
                            name=item.name.name,
                            context=context,
                            help=did_you_mean(item.name.name, TARGET_ATTRIBUTES),
                        )
                    )
                    continue
                attributes[item.name.name] = item
            elif isinstance(item, ast.Block):
                kind = item.kind.name
                if (
                    kind not in ("accelerators", "nodes", *BACKEND_BLOCKS)
                    and not kind.isidentifier()
                ):
                    continue
                nested[kind] = item
            else:
                self.report(
                    codes.MISPLACED_BLOCK.at(item.name.span, "", what="a typed field in a target")
                )
        backend_attr = attributes.get("backend")
        if backend_attr is None:
            self.report(
                codes.MISSING_ATTRIBUTE.at(
                    block.label.span,
                    "",
                    context=context,
                    name="backend",
                    help="add `backend = local`, `ray` or `kubernetes`",
                )
            )
            return None
        backend_expr = backend_attr.value
        if isinstance(backend_expr, ast.Name):
            backend = backend_expr.name
        elif isinstance(backend_expr, ast.StrLit):
            backend = backend_expr.value
        else:
            self.report(
                codes.TYPE_MISMATCH.at(
                    backend_expr.span, "", expected="a backend name", found="an expression"
                )
            )
            return None
        target = TargetDecl(name, backend, block.label.span, backend_expr.span)
        target.store = self._string(attributes.get("store"), scope, "store")
        target.address = self._string(attributes.get("address"), scope, "address")
        target.namespace = self._string(attributes.get("namespace"), scope, "namespace")
        ignore = attributes.get("ignore_unsupported")
        if ignore is not None:
            value = self.evaluator.typed(
                ignore.value, scope, t.list_of(t.STR), "`ignore_unsupported`"
            )
            if value is not INVALID:
                target.ignore_unsupported = tuple(value)
        accelerators = attributes.get("accelerators")
        if accelerators is not None:
            if isinstance(accelerators.value, ast.ObjectLit):
                self._target_accelerators(target, accelerators.value.body, scope)
            else:
                self.report(
                    codes.TYPE_MISMATCH.at(
                        accelerators.value.span,
                        "",
                        expected="a block of accelerator mappings",
                        found="an expression",
                    )
                )
        for kind, child in nested.items():
            if kind == "accelerators":
                self._target_accelerators(target, child.body, scope)
            elif kind == "nodes":
                self._target_nodes(target, child, scope)
            elif kind == backend:
                target.settings = self._settings(child.body, scope)
                target.settings_span = child.kind.span
            elif kind in BACKEND_BLOCKS:
                self.report(
                    codes.INVALID_SETTING.at(
                        child.kind.span,
                        f"this target uses `{backend}`",
                        backend=backend,
                        reason=f"`{kind} {{ … }}` settings apply only to targets with `backend = {kind}`",
                        help=f"rename the block to `{backend} {{ … }}` or remove it",
                    )
                )
            else:
                self.report(
                    codes.UNKNOWN_BLOCK.at(
                        child.kind.span,
                        "not allowed in a target",
                        name=kind,
                        context=context,
                        help=did_you_mean(kind, ("accelerators", "nodes", backend)),
                    )
                )
        return target

    def _target_accelerators(self, target: TargetDecl, body: ast.Body, scope: Scope) -> None:
        for item in body.items:
            if isinstance(item, ast.Attribute):
                value = self.evaluator.value(item.value, scope)
                if value is not INVALID:
                    target.accelerators[item.name.name] = t.to_json(value)
                    target.accelerator_spans[item.name.name] = item.name.span
            elif isinstance(item, ast.Block):
                target.accelerators[item.kind.name] = self._settings(item.body, scope)
                target.accelerator_spans[item.kind.name] = item.kind.span

    def _target_nodes(self, target: TargetDecl, block: ast.Block, scope: Scope) -> None:
        for item in block.body.items:
            if not isinstance(item, ast.Block) or item.kind.name != "pool" or item.label is None:
                self.report(
                    codes.MISPLACED_BLOCK.at(
                        _item_name_span(item),
                        "",
                        what="this item",
                        help="describe each kind of node as `pool name { count = 4, cpu = 32, memory = 128Gi }`",
                    )
                )
                continue
            fields = {}
            count = 1
            for entry in item.body.items:
                if isinstance(entry, ast.Attribute) and entry.name.name == "count":
                    value = self.evaluator.typed(entry.value, scope, t.INT, "`count`")
                    count = value if value is not INVALID else 1
            body = ast.Body(
                tuple(
                    e
                    for e in item.body.items
                    if not (isinstance(e, ast.Attribute) and e.name.name == "count")
                ),
                item.body.span,
            )
            fields = self._resource_fields(body, scope, f"node pool `{item.label.name}`")
            request = ResourceRequest(cpu_millis=0)
            self._apply_resources(request, fields, StepDecl("", item.span, item.span))
            missing = [n for n in ("cpu", "memory") if n not in fields]
            if missing:
                self.report(
                    codes.MISSING_ATTRIBUTE.at(
                        item.label.span,
                        "",
                        context=f"node pool `{item.label.name}`",
                        name=missing[0],
                    )
                )
                continue
            target.nodes.append(
                NodePoolDecl(
                    item.label.name,
                    count,
                    request.cpu_millis,
                    request.memory_bytes or 0,
                    request.gpu,
                    item.label.span,
                )
            )

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

    # -- small helpers ---------------------------------------------------------------------------------

    def _attributes(
        self, block: ast.Block, allowed: Iterable[str], context: str
    ) -> dict[str, ast.Attribute]:
        allowed = tuple(allowed)
        found: dict[str, ast.Attribute] = {}
        for item in block.body.items:
            if isinstance(item, ast.Attribute) and item.name.name in allowed:
                found[item.name.name] = item
            else:
                name_span = _item_name_span(item)
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

    def _string_map(
        self, blocks: list[ast.Block], scope: Scope, what: str, *, template: bool
    ) -> dict[str, str]:
        result: dict[str, str] = {}
        for block in blocks:
            for item in block.body.items:
                if not isinstance(item, ast.Attribute):
                    self.report(
                        codes.MISPLACED_BLOCK.at(
                            _item_name_span(item),
                            "",
                            what="this item",
                            help=f'write `NAME = "value"` in `{what}`',
                        )
                    )
                    continue
                if not ENV_NAME.match(item.name.name):
                    self.report(
                        codes.INVALID_VALUE.at(
                            item.name.span,
                            "not a variable name",
                            name=item.name.name,
                            reason="environment variable names are letters, digits and `_`",
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
                        )
                    )
                    continue
                result[item.name.name] = (
                    value
                    if isinstance(value, str)
                    else str(t.to_json(value)).lower()
                    if isinstance(value, bool)
                    else str(t.to_json(value))
                )
        return result


@dataclass
class _Parts:
    attributes: list[ast.Attribute]
    fields: list[ast.Field]
    blocks: list[ast.Block]


def _partition(items: Iterable[ast.Item]) -> _Parts:
    parts = _Parts([], [], [])
    for item in items:
        if isinstance(item, ast.Attribute):
            parts.attributes.append(item)
        elif isinstance(item, ast.Field):
            parts.fields.append(item)
        else:
            parts.blocks.append(item)
    return parts


def _item_name_span(item: ast.Item) -> Span:
    return item.kind.span if isinstance(item, ast.Block) else item.name.span


def _artifact_accepts(expected: t.Type, actual: t.Type) -> bool:
    """Whether an artifact of type `actual` may feed an input of type `expected`."""
    if expected.name == "list" and actual.name == "list":
        return _artifact_accepts(expected.args[0], actual.args[0])
    if expected.name == actual.name:
        return True
    # A declared subtype is accepted where its base kind is expected, never the reverse.
    return expected.name in t.ARTIFACT_KINDS and expected.name == actual.artifact_kind


def _unit_of(value: object) -> str:
    if isinstance(value, t.Duration):
        return str(value)
    if isinstance(value, t.Quantity):
        return str(value)
    return str(value)
