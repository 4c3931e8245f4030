"""Resolving `step` blocks: templates, commands, inputs and outputs, policies, gates."""

from __future__ import annotations

import dataclasses

from mlc.checks import types as t
from mlc.checks.evaluate import INVALID, LoopVar, MetricSource, Namespace, Scope, Unresolved
from mlc.checks.loader import LoadedModule
from mlc.checks.program import (
    InputDecl,
    OutputDecl,
    Program,
    StepDecl,
)
from mlc.checks.resolve_base import (
    CALL_TARGET,
    RESOURCE_FIELDS,
    SECRET_REF,
    STEP_ATTRIBUTES,
    STEP_BLOCKS,
    TEMPLATE_EXCLUDED,
    ModuleScope,
    Template,
    artifact_accepts,
    item_name_span,
)
from mlc.checks.resolve_resources import ResourcesResolver
from mlc.checks.suggest import closest, did_you_mean, did_you_mean_or_list
from mlc.checks.templates import TemplateReads, check_template, split_command
from mlc.diagnostics import Label
from mlc.diagnostics import catalog as codes
from mlc.front import ast
from mlc.source import Span

FINALLY_HELP = (
    "a `finally` step runs after every other step, so nothing else can wait for it; "
    "make this step `finally` too, or depend on a step that is not"
)


class StepsResolver(ResourcesResolver):
    """Resolves the steps of a pipeline."""

    def _template_items(self, block: ast.Block, loaded: LoadedModule) -> list[ast.Item]:
        """The step's items after those of its template (step items override)."""
        if block.extends is None:
            return list(block.body.items)
        template = self._find_template(block.extends, loaded)
        if template is None:
            self.failed_extends.add(block)
            return list(block.body.items)
        self.template_of[block] = template
        inherited = []
        for item in template.block.body.items:
            name = item.kind.name if isinstance(item, ast.Block) else item.name.name
            if name in TEMPLATE_EXCLUDED:
                self.report(
                    codes.MISPLACED_BLOCK.at(
                        item_name_span(item),
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
            if imported is None and alias in loaded.failed_imports:
                return None
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
            if (
                isinstance(item, ast.Block)
                and item.kind.name not in STEP_BLOCKS
                and closest(item.kind.name, STEP_BLOCKS) == "outputs"
            ):
                self.outputs_unknown.add(step)  # `outputz { … }`, reported as unknown
            if isinstance(item, ast.Block) and item.kind.name == "outputs":
                for entry in item.body.items:
                    if not isinstance(entry, ast.Field) or entry.value is not None:
                        self.report(
                            codes.MISPLACED_BLOCK.at(
                                item_name_span(entry),
                                "declare an output as `name: type`",
                                what="this item",
                                help="outputs have a name and a type, such as `model: model`",
                            )
                        )
                        continue
                    output_type = self._artifact_type(entry.type, scope)
                    if output_type is None:
                        # Its type was reported; the output still exists, of any type, so
                        # its uses are not reported again.
                        output_type = t.ANY
                    if entry.name.name in outputs:
                        self.report(
                            codes.DUPLICATE_DEFINITION.at(
                                entry.name.span,
                                "defined again here",
                                kind="output",
                                name=entry.name.name,
                                secondary=[
                                    Label(outputs[entry.name.name].span, "first defined here")
                                ],
                                help="rename one of them",
                            )
                        )
                        continue
                    outputs[entry.name.name] = OutputDecl(
                        entry.name.name, output_type, entry.name.span
                    )
        return outputs

    def _foreach_items(self, step: StepDecl, items: ast.Expr, scope: Scope) -> object:
        """The value of a `foreach` list. The params it reads go to `step.foreach_params`,
        not to `params_used`: each invocation's cache key holds its own item, so adding an
        item to a sweep does not re-run the others."""
        params = scope.lookup("params")
        if not isinstance(params, Namespace):
            return self.evaluator.value(items, scope)
        step_reads = params.on_access
        params.on_access = step.foreach_params.add
        try:
            return self.evaluator.value(items, scope)
        finally:
            params.on_access = step_reads

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
        reported = len(self.diagnostics)
        step = self._resolve_step_items(
            program, block, items, outputs, foreach_steps, finally_steps, scope
        )
        self._point_at_step(block, reported)
        return step

    def _point_at_step(self, block: ast.Block, reported: int) -> None:
        """Moves what was reported about a step at its template's lines to the step: a
        template is shared by many steps, and the error is this step's (its setting meets
        the template's, or the template's setting is wrong in this step's pipeline). The
        template's line stays as a related location."""
        template = self.template_of.get(block)
        if template is None or block.label is None:
            return
        inside = template.block.span
        for index in range(reported, len(self.diagnostics)):
            diagnostic = self.diagnostics[index]
            span = diagnostic.span
            if span.path != inside.path or not inside.start <= span.start < inside.end:
                continue
            self.diagnostics[index] = dataclasses.replace(
                diagnostic,
                primary=Label(
                    block.label.span,
                    f"step `{block.label.name}` extends template `{template.block.label.name}`"
                    if template.block.label
                    else "this step",
                ),
                secondary=(
                    Label(span, diagnostic.primary.message or "set by the template"),
                    *diagnostic.secondary,
                ),
            )

    def _resolve_step_items(
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
            items_value = self._foreach_items(step, block.foreach.items, scope)
            if isinstance(items_value, list):
                step.foreach_var = block.foreach.var.name
                step.foreach_items = items_value
                step.features["foreach"] = block.foreach.span
                scope = scope.child({block.foreach.var.name: LoopVar(block.foreach.var.name)})
            else:
                if items_value is not INVALID:
                    self.report(
                        codes.FOREACH_NOT_LIST.at(
                            block.foreach.items.span,
                            f"this is {t.describe(items_value)}",
                            found=t.describe(items_value),
                            help="fan out over a list: a literal such as `[1, 2, 3]` or a "
                            "`list[…]` param",
                        )
                    )
                # The items were reported; the variable still names something, so its uses
                # are not reported again as unknown names.
                scope = scope.child({block.foreach.var.name: Unresolved()})
                step.foreach_var = block.foreach.var.name
        attributes: dict[str, ast.Attribute] = {}
        blocks: dict[str, list[ast.Block]] = {}
        # Resource settings merge key by key in the order written, template first: a profile
        # sets its keys, a block its own, and a later one wins.
        resource_items: list[ast.Attribute | ast.Block] = []
        for item in items:
            if isinstance(item, ast.Attribute):
                fallback = (
                    f"`{item.name.name}` is a resource: write `resources {{ {item.name.name} = … }}`"
                    if item.name.name in RESOURCE_FIELDS
                    else None
                )
                if not self._is_known(
                    item.name, STEP_ATTRIBUTES, context, "not a step setting", fallback=fallback
                ):
                    continue
                attributes[item.name.name] = item
                if item.name.name == "resources":
                    resource_items.append(item)
            elif isinstance(item, ast.Block):
                if not self._is_known(
                    item.kind, STEP_BLOCKS, context, "not allowed in a step", block=True
                ):
                    continue
                self._check_header(item, allow_type=False, allow_extends=False, allow_foreach=False)
                if item.label is not None:
                    self.report(
                        codes.MISPLACED_BLOCK.at(
                            item.label.span,
                            "remove it",
                            what=f"a name on `{item.kind.name}`",
                            help=f"write `{item.kind.name} {{ … }}`",
                        )
                    )
                blocks.setdefault(item.kind.name, []).append(item)
                if item.kind.name == "resources":
                    resource_items.append(item)
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
        self._resolve_resources(step, resource_items, scope)
        self._resolve_policies(step, attributes, scope)
        self._resolve_ordering(
            program, step, attributes, outputs, finally_steps, foreach_steps, scope
        )
        self._check_templates(step, attributes, blocks, scope)
        if (
            "args" in blocks
            and step.command_kind != "call"
            and not self.misspelled(block.body.items, "call", STEP_ATTRIBUTES)
        ):
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
            if block in self.failed_extends:
                return  # the unknown template was reported; it may have set `run`
            if self.misspelled(block.body.items, "run", STEP_ATTRIBUTES) or self.misspelled(
                block.body.items, "call", STEP_ATTRIBUTES
            ):
                return  # `runn = …` was reported as unknown, with `run` as its suggestion
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
            strings = value.items if isinstance(value, ast.ListLit) else (value,)
            for string in strings:
                if isinstance(string, ast.StrLit):
                    self.passes_to_a_process(string.value, string, "run")
            if isinstance(value, ast.StrLit):
                step.command_kind = "shell" if use_shell else "exec"
                step.argv = (value.value,) if use_shell else tuple(split_command(value.value))
                if not step.argv:
                    self.report(
                        codes.INVALID_VALUE.at(
                            value.span,
                            "empty",
                            name="run",
                            reason="the command is empty",
                            help='write the command to run, as in `run = "python train.py"`',
                        )
                    )
            elif isinstance(value, ast.ListLit) and all(
                isinstance(i, ast.StrLit) for i in value.items
            ):
                step.command_kind = "exec"
                step.argv = tuple(i.value for i in value.items if isinstance(i, ast.StrLit))
                if use_shell and shell is not None:
                    # At the step's own setting of the two; the other is a related location.
                    own_run = _inside(run.name.span, block.span) and not _inside(
                        shell.name.span, block.span
                    )
                    primary, other = (run, shell) if own_run else (shell, run)
                    self.report(
                        codes.CONFLICTING_ATTRIBUTES.at(
                            primary.name.span,
                            "the list form runs no shell"
                            if own_run
                            else "`shell` needs `run` as one string",
                            context=context,
                            first="shell",
                            second="run = [ … ]",
                            secondary=[
                                Label(
                                    other.name.span,
                                    "`shell = true` is set here"
                                    if own_run
                                    else "`run` is set here",
                                )
                            ],
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
                            shell.name.span,
                            "a `call` step runs no shell",
                            context=context,
                            first="shell",
                            second="call",
                            help="remove `shell`",
                        )
                    )
            step.args = {}
            for args_block in blocks.get("args", []):
                for item in self._attributes_of(args_block.body.items, "`name = value`"):
                    value = self.evaluator.value(item.value, scope)
                    if isinstance(value, LoopVar):
                        self.evaluator.loop_var_error(value, item.value)
                        continue
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
                    if value is not INVALID and not t.is_value(value):
                        self.report(
                            codes.TYPE_MISMATCH.at(
                                item.value.span,
                                f"this is a {t.type_of(value)}",
                                expected=f"a value for `{item.name.name}`",
                                found=f"a {t.type_of(value)}",
                                help="pass an artifact as an input (`inputs { … }`), and values "
                                "in `args`",
                            )
                        )
                        continue
                    if value is not INVALID:
                        step.args[item.name.name] = t.to_json(value)

    def _resolve_secrets(self, step: StepDecl, blocks: list[ast.Block], scope: Scope) -> None:
        for block in blocks:
            step.features.setdefault("secrets", block.kind.span)
            for item in self._attributes_of(block.body.items, '`ENV_NAME = "secret-name/key"`'):
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
        names: dict[str, Span] = {}
        for block in blocks:
            for item in block.body.items:
                if isinstance(item, ast.Block) or (
                    isinstance(item, ast.Field) and item.value is None
                ):
                    self.report(
                        codes.MISPLACED_BLOCK.at(
                            item_name_span(item),
                            "an input needs a source",
                            what="this item",
                            help="write `name = step.output` or `name = dataset`",
                        )
                    )
                    continue
                name_ident = item.name
                if name_ident.name in names or name_ident.name in step.outputs:
                    clash = name_ident.name in step.outputs
                    self.report(
                        codes.DUPLICATE_DEFINITION.at(
                            name_ident.span,
                            "also the name of an output" if clash else "declared again here",
                            kind="input or output" if clash else "input",
                            name=name_ident.name,
                            secondary=[Label(step.outputs[name_ident.name].span, "the output")]
                            if clash
                            else [Label(names[name_ident.name], "first declared here")],
                            help="a step's inputs and outputs need different names"
                            if clash
                            else None,
                        )
                    )
                    continue
                names[name_ident.name] = name_ident.span
                step.input_names.add(name_ident.name)
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
                    if not artifact_accepts(expected_item, source_type) or (
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
                                    program,
                                    step.name,
                                    outputs,
                                    expected_item,
                                    source_expr,
                                    name_ident.name,
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
        root = _dotted(expr)
        if root is not None and root.split(".", 1)[0] in self.misspelled_names | (
            self.outputs_unknown
        ):
            return None  # a step or dataset whose block was reported as misspelled
        if isinstance(expr, ast.Name):
            if expr.name in program.datasets:
                return ("dataset", expr.name, None, program.datasets[expr.name].type)
            if expr.name in outputs:
                candidates = list(outputs[expr.name])
                self.report(
                    codes.TYPE_MISMATCH.at(
                        expr.span,
                        "a step, not one of its outputs",
                        expected="an artifact (`step.output` or a dataset)",
                        found=f"step `{expr.name}`",
                        help=f"write `{expr.name}.{candidates[0]}`"
                        if candidates
                        else f"step `{expr.name}` declares no outputs: add `outputs {{ … }}`",
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
                        expr.span,
                        "a step cannot read its own output",
                        name=step.name,
                        help="read another step's output; a step's own outputs are "
                        "`{{ outputs.NAME }}` in its command",
                    )
                )
                return None
            if source_step in finally_steps and not step.is_finally:
                self.report(
                    codes.FINALLY_AS_INPUT.at(
                        expr.span,
                        "runs after every other step",
                        step=step.name,
                        source=source_step,
                        help=FINALLY_HELP,
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
                        help=did_you_mean_or_list(
                            expr.name.name, outputs[source_step], f"outputs of `{source_step}`"
                        )
                        or f"step `{source_step}` declares no outputs: add `outputs {{ … }}`",
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
                help="write `data = prepare.train` (a step's output) or `data = raw` (a dataset)",
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
        input_name: str,
    ) -> str | None:
        """Artifacts of the wanted type, the one named most like the input or reference first."""
        candidates = [
            f"{name}.{output}"
            for name, declared in outputs.items()
            if name != step
            for output, decl in declared.items()
            if artifact_accepts(wanted, decl.type)
        ]
        candidates += [
            name for name, d in program.datasets.items() if artifact_accepts(wanted, d.type)
        ]
        if not candidates:
            return None
        written = expr.name.name if isinstance(expr, ast.Member) else ""
        by_leaf = {c.rsplit(".", 1)[-1]: c for c in sorted(candidates)}
        for name in (written, input_name):
            match = closest(name, by_leaf) if name else None
            if match:
                return f"did you mean `{by_leaf[match]}`?"
        if len(candidates) == 1:
            return f"did you mean `{candidates[0]}`?"
        shown = ", ".join(f"`{c}`" for c in sorted(candidates)[:4])
        return f"`{wanted}` artifacts in this pipeline: {shown}"

    def _resolve_policies(
        self, step: StepDecl, attributes: dict[str, ast.Attribute], scope: Scope
    ) -> None:
        retries = attributes.get("retries")
        if retries is not None:
            value = self.evaluator.typed(retries.value, scope, t.INT, "`retries`")
            if value is not INVALID:
                if value < 0:
                    self.not_positive(
                        retries.value.span, "retries", value, example="2", zero_allowed=True
                    )
                elif value > 100:
                    self.report(
                        codes.INVALID_VALUE.at(
                            retries.value.span,
                            f"this is {value}",
                            name="retries",
                            reason="retries are between 0 and 100",
                            help="write at most `retries = 100`",
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
                        unit=str(value),
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
                self.not_positive(attribute.value.span, name, value, example="30m")
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
            elif isinstance(value, t.Duration) and value.seconds <= 0:
                self.not_positive(cache.value.span, "cache", value, example="7d")
            elif isinstance(value, t.Duration):
                step.cache_expire_seconds = int(value.seconds)
            elif value is not INVALID:
                self.report(
                    codes.TYPE_MISMATCH.at(
                        cache.value.span,
                        f"this is {t.describe(value)}",
                        expected="`true`, `false` or an expiry such as `7d` for `cache`",
                        found=f"`{t.type_of(value)}`",
                        help="write `cache = false` to always run the step, or `cache = 7d`",
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
                    self.not_positive(parallelism.value.span, "parallelism", value, example="8")
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
                            "not a step name",
                            expected="a step name in `after`",
                            found="an expression",
                            help="write `after = [prepare, train]`",
                        )
                    )
                    continue
                if entry.name in self.misspelled_names:
                    continue  # its block was reported as misspelled
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
                            entry.span,
                            "a step cannot wait for itself",
                            name=step.name,
                            help=f"remove `{step.name}` from `after`",
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
                            help=FINALLY_HELP,
                        )
                    )
                    continue
                step.after.append((entry.name, entry.span))
        when = attributes.get("when")
        if when is not None:
            value = self.evaluator.value(when.value, scope)
            if value is INVALID:
                return
            if (isinstance(value, t.Symbolic) and value.type == t.BOOL) or isinstance(value, bool):
                step.when = value
                step.when_span = when.value.span
                if isinstance(value, t.Symbolic):
                    step.when_references = _references(when.value, set(value.steps))
                    for name in value.steps:
                        if name in finally_steps and not step.is_finally:
                            self.report(
                                codes.FINALLY_AS_INPUT.at(
                                    step.when_references.get(name, when.value.span),
                                    "runs after every other step",
                                    step=step.name,
                                    source=name,
                                    help=FINALLY_HELP,
                                )
                            )
                            step.when = None
            else:
                self.report(
                    codes.GATE_NOT_BOOL.at(
                        when.value.span,
                        f"this is {t.describe(value)}",
                        found=t.describe(value),
                        help=_gate_help(value, _dotted(when.value)),
                    )
                )

    def _check_templates(
        self,
        step: StepDecl,
        attributes: dict[str, ast.Attribute],
        blocks: dict[str, list[ast.Block]],
        scope: Scope,
    ) -> None:
        params = scope.lookup("params")
        # A misspelled `params` or `outputs` block leaves its members unknown: not checked.
        names: dict[str, object] = {
            "params": dict.fromkeys(params.members)
            if isinstance(params, Namespace) and params.complete
            else None,
            "inputs": dict.fromkeys(sorted(step.input_names)),
            "outputs": None if step.name in self.outputs_unknown else dict.fromkeys(step.outputs),
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
        reads = TemplateReads()
        reported = len(self.diagnostics)
        for literal in targets:
            reads.add(check_template(literal, names, self.diagnostics))
        step.params_used |= reads.of("params")
        # Paths are judged only from templates that could be read whole.
        if run is not None and targets and len(self.diagnostics) == reported:
            self._check_paths_passed(step, reads)

    def _check_paths_passed(self, step: StepDecl, reads: TemplateReads) -> None:
        """A `run` step learns where an input is, and where to write an output, only from its
        templates: an output never passed cannot be written (an error), an input never
        passed cannot be read (a warning: the step still runs)."""
        for port in step.inputs:
            instead = (
                f"to run after `{port.node}` without reading it, use `after = [{port.node}]`"
                if port.source_kind == "step"
                else "or remove the input"
            )
            help = (
                f"pass its path to the command, e.g. `--in {{{{ inputs.{port.name} }}}}`; {instead}"
            )
            self._check_passed(step, reads, ("inputs", port.name), port.span, help)
        for output in step.outputs.values():
            help = (
                f"pass its path to the command, e.g. `--out {{{{ outputs.{output.name} }}}}`, "
                "and write the output there"
            )
            self._check_passed(step, reads, ("outputs", output.name), output.span, help)

    def _check_passed(
        self, step: StepDecl, reads: TemplateReads, member: tuple[str, str], span: Span, help: str
    ) -> None:
        """Reports `{{ root.name }}` missing from a `run` step's templates (nothing can be said
        when they read `root` whole)."""
        root, name = member
        if root in reads.whole or name in reads.of(root):
            return
        code = codes.INPUT_NOT_PASSED if root == "inputs" else codes.OUTPUT_NOT_PASSED
        label = f"`{{{{ {root}.{name} }}}}` is in neither `run` nor `env`"
        self.report(code.at(span, label, name=name, step=step.name, help=help))


def _gate_help(value: object, written: str | None) -> str:
    """How to make a `when` condition of what was written, with names the spec declares."""
    metrics: list[str] = []
    if isinstance(value, MetricSource):
        metrics = [
            f"{value.step}.{output}.{key}"
            for output, kind in value.outputs.items()
            for key, _ in kind.metric_keys or ()
        ]
    elif isinstance(value, t.Symbolic) and value.type.artifact_kind == "metrics" and written:
        metrics = [f"{written}.{key}" for key, _ in value.type.metric_keys or ()]
    if metrics:
        return f"compare one of its metrics: `when = {metrics[0]} >= 0.9`"
    return "write a comparison that is true or false, such as `STEP.OUTPUT.KEY >= 0.9` on declared metrics"


def _inside(span: Span, outer: Span) -> bool:
    return span.path == outer.path and outer.start <= span.start < outer.end


def _references(expr: object, steps: set[str]) -> dict[str, Span]:
    """The first reference to each of `steps` in an expression: the whole chain of members
    that starts at the step's name (`evaluate.scores.f1`), so that an error about one step of
    a condition underlines that step's part of it."""
    found: dict[str, Span] = {}

    def walk(node: object) -> None:
        if isinstance(node, ast.Member | ast.Name):
            root = _dotted(node)
            if root is not None:
                first = root.split(".", 1)[0]
                if first in steps:
                    found.setdefault(first, node.span)
                return
        if dataclasses.is_dataclass(node) and not isinstance(node, type):
            for item in dataclasses.fields(node):
                walk(getattr(node, item.name))
        elif isinstance(node, tuple | list):
            for item in node:
                walk(item)

    walk(expr)
    return found


def _dotted(expr: ast.Expr) -> str | None:
    """`a.b.c` as written, for a name or a chain of members."""
    if isinstance(expr, ast.Name):
        return expr.name
    if isinstance(expr, ast.Member):
        base = _dotted(expr.value)
        return None if base is None else f"{base}.{expr.name.name}"
    return None
