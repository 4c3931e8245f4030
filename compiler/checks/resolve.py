"""Resolution: from a loaded module to a checked `Program`, one pipeline at a time.

Each kind of block has a method that knows which attributes and nested blocks it accepts;
anything else is a located diagnostic with the closest accepted name. Values are evaluated
with params bound, so a resource computed from a param is checked like a literal.
"""

from __future__ import annotations

from pathlib import Path

from mlc.checks import types as t
from mlc.checks.evaluate import (
    INVALID,
    MetricSource,
    Namespace,
    Scope,
    SelfStep,
    Unresolved,
    VersionRef,
)
from mlc.checks.loader import LoadedModule
from mlc.checks.program import (
    DatasetDecl,
    OutputDecl,
    PipelineOutputDecl,
    Program,
    StepDecl,
)
from mlc.checks.resolve_base import (
    BUILTIN_TYPES,
    DIGEST,
    PIPELINE_KINDS,
    ModuleScope,
    partition_items,
)
from mlc.checks.resolve_params import ParamsResolver
from mlc.checks.resolve_steps import StepsResolver
from mlc.checks.resolve_targets import TargetsResolver
from mlc.checks.suggest import closest, did_you_mean
from mlc.diagnostics import Label
from mlc.diagnostics import catalog as codes
from mlc.front import ast
from mlc.source import Span


class Resolver(ParamsResolver, StepsResolver, TargetsResolver):
    """Resolves the modules of one compilation; diagnostics go to a shared list."""

    def resolve_pipeline(self, loaded: LoadedModule, block: ast.Block, display: str) -> Program:
        """Resolves one pipeline block and every target of its file."""
        assert block.label is not None
        scope = self.scope_of(loaded)
        self._current = scope
        base_dir = Path(display).parent.as_posix() or "."
        program = Program(display, base_dir, block.label.name, block.label.span)
        parts = partition_items(block.body.items)
        # Blocks whose kind is misspelled (`stepx train`, `paramsx`) are reported once, below;
        # what they declare is then unknown, not missing.
        misspelled = {
            id(child): closest(child.kind.name, PIPELINE_KINDS)
            for child in parts.blocks
            if child.kind.name not in PIPELINE_KINDS
        }
        self.misspelled_names = {
            child.label.name
            for child in parts.blocks
            if child.label is not None and misspelled.get(id(child)) in ("step", "dataset")
        }
        self.outputs_unknown = set()
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
                codes.DUPLICATE_DEFINITION.at(
                    extra.kind.span,
                    "a second `params` block",
                    kind="block",
                    name="params",
                    secondary=[Label(params_blocks[0].kind.span, "the first one")],
                    help="declare every param in one `params { … }` block",
                )
            )
        if params_blocks:
            self._resolve_params(program, params_blocks[0])
        self._check_overrides(program, block)
        # Each step sets `on_access` while it is resolved, to learn which params it reads.
        # A param reported as wrong reads as INVALID: nothing computed from it is reported.
        params_ns = Namespace(
            "params",
            {p.name: INVALID if p.invalid else p.value for p in program.params.values()},
            complete="params" not in misspelled.values(),
        )
        module_names = self.module_names(loaded)
        base_names: dict[str, object] = {
            **module_names,
            "params": params_ns,
            "latest": VersionRef("latest"),
        }

        step_blocks: list[ast.Block] = []
        step_spans: dict[str, Span] = {}
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
                if child.label.name in step_spans:
                    self.report(
                        codes.DUPLICATE_DEFINITION.at(
                            child.label.span,
                            "defined again here",
                            kind="step",
                            name=child.label.name,
                            secondary=[Label(step_spans[child.label.name], "first defined here")],
                            help="rename one of them",
                        )
                    )
                    continue
                step_blocks.append(child)
                step_spans[child.label.name] = child.label.span
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
        # Steps as `when` conditions and `args` name them, to read their metrics.
        step_sources = {
            name: MetricSource(
                name, {o: d.type for o, d in declared.items()}, name in foreach_steps
            )
            for name, declared in declared_outputs.items()
        }
        unknown: dict[str, object] = {
            name: Unresolved()
            for name in self.misspelled_names | self.outputs_unknown
            if name not in program.datasets
        }
        pipeline_scope = Scope(base_names, f"pipeline `{program.name}`").child(
            {**step_sources, **unknown}
        )

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
                pipeline_scope.child({child.label.name: SelfStep(child.label.name)}),
            )
            step.params_used |= used
            program.steps[step.name] = step
        params_ns.on_access = None
        for param in program.params.values():
            param.used = any(
                param.name in s.params_used or param.name in s.foreach_params
                for s in program.steps.values()
            )

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

    def _resolve_dataset(
        self, program: Program, block: ast.Block, scope: ModuleScope, expr_scope: Scope
    ) -> None:
        if block.label is None:
            self.report(
                codes.MISSING_ATTRIBUTE.at(
                    block.kind.span,
                    "needs a name",
                    context="this dataset",
                    name="name",
                    help='write `dataset raw { uri = "…", version = … }`',
                )
            )
            return
        name = block.label.name
        if name in program.datasets:
            self.report(
                codes.DUPLICATE_DEFINITION.at(
                    block.label.span,
                    "defined again here",
                    kind="dataset",
                    name=name,
                    secondary=[Label(program.datasets[name].span, "first defined here")],
                    help="rename one of them",
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
        allowed = ("uri", "version")
        if "uri" not in attributes:
            self.report_missing(
                block, "uri", allowed, context=f"dataset `{name}`", help='add `uri = "data/…"`'
            )
        if version is None:
            self.report_missing(
                block,
                "version",
                allowed,
                context=f"dataset `{name}`",
                help='pin it with `version = "sha256:…"`, name a tag with '
                '`version = tag("v1")`, or track it with `version = latest`',
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
            elif isinstance(value, VersionRef):
                version_kind, version_value = value.kind, value.value
            elif value is not INVALID:
                self.report(
                    codes.INVALID_VERSION.at(
                        version.value.span,
                        "not a version",
                        value=t.describe(value),
                        help='write `"sha256:…"`, `tag("…")` or `latest`',
                    )
                )
        program.datasets[name] = DatasetDecl(
            name, dataset_type, uri or "", version_kind, version_value, block.label.span
        )

    def _resolve_pipeline_outputs(
        self, program: Program, block: ast.Block, outputs: dict[str, dict[str, OutputDecl]]
    ) -> None:
        seen: dict[str, Span] = {}
        for item in self._attributes_of(block.body.items, "`name = step.output`"):
            if item.name.name in seen:
                self.report(
                    codes.DUPLICATE_DEFINITION.at(
                        item.name.span,
                        "defined again here",
                        kind="pipeline output",
                        name=item.name.name,
                        secondary=[Label(seen[item.name.name], "first defined here")],
                        help="rename one of them",
                    )
                )
                continue
            seen[item.name.name] = item.name.span
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
