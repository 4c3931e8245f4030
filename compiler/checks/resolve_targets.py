"""Resolving `target` blocks: backend, store, accelerator mapping, node inventory."""

from __future__ import annotations

from mlc.checks import types as t
from mlc.checks.evaluate import INVALID, Scope
from mlc.checks.program import (
    NodePoolDecl,
    ResourceRequest,
    StepDecl,
    TargetDecl,
)
from mlc.checks.resolve_base import (
    BACKEND_BLOCKS,
    RESOURCE_FIELDS,
    TARGET_ATTRIBUTES,
    item_name,
    item_name_span,
)
from mlc.checks.resolve_resources import ResourcesResolver
from mlc.checks.suggest import did_you_mean
from mlc.diagnostics import catalog as codes
from mlc.front import ast


class TargetsResolver(ResourcesResolver):
    """Resolves the targets declared beside a pipeline."""

    def _resolve_target(self, block: ast.Block, scope: Scope) -> TargetDecl | None:
        assert block.label is not None
        name = block.label.name
        context = f"target `{name}`"
        attributes: dict[str, ast.Attribute] = {}
        nested: dict[str, ast.Block] = {}
        for item in block.body.items:
            if isinstance(item, ast.Attribute):
                if not self._is_known(
                    item.name, TARGET_ATTRIBUTES, context, "not a target setting"
                ):
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
                    codes.MISPLACED_BLOCK.at(
                        item.name.span,
                        "a target holds settings",
                        what="a typed field in a target",
                        help=f"write `{item.name.name} = …`",
                    )
                )
        backend_attr = attributes.get("backend")
        if backend_attr is None:
            self.report_missing(
                block,
                "backend",
                TARGET_ATTRIBUTES,
                context=context,
                help="add `backend = local`, `ray` or `kubernetes`",
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
                    backend_expr.span,
                    "not a backend name",
                    expected="a backend name",
                    found="an expression",
                    help="write `backend = local`, `ray` or `kubernetes`",
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
                items = ignore.value.items if isinstance(ignore.value, ast.ListLit) else ()
                target.ignore_spans = {
                    item.value: item.span for item in items if isinstance(item, ast.StrLit)
                }
        accelerators = attributes.get("accelerators")
        if accelerators is not None:
            if isinstance(accelerators.value, ast.ObjectLit):
                self._target_accelerators(target, accelerators.value.body, scope)
            else:
                self.report(
                    codes.TYPE_MISMATCH.at(
                        accelerators.value.span,
                        "not a block",
                        expected="a block of accelerator mappings",
                        found="an expression",
                        help='write `accelerators { "a100-80gb" = "A100-80G" }`',
                    )
                )
        for kind, child in nested.items():
            if kind == "accelerators":
                self._target_accelerators(target, child.body, scope)
            elif kind == "nodes":
                self._target_nodes(target, child, scope)
            elif kind == backend:
                target.settings = self._settings(child.body, scope)
                target.setting_spans = {
                    item_name(item): item_name_span(item) for item in child.body.items
                }
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
                target.nodes_reported = True
                self.report(
                    codes.MISPLACED_BLOCK.at(
                        item_name_span(item),
                        "not a node pool",
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
            reported = len(self.diagnostics)
            fields = self._resource_fields(body, scope, f"node pool `{item.label.name}`")
            request = ResourceRequest(cpu_millis=0)
            self._apply_resources(request, fields, StepDecl("", item.span, item.span))
            written = {e.name.name for e in body.items if isinstance(e, ast.Attribute)}
            missing = [
                n
                for n in ("cpu", "memory")
                if n not in written and not self.misspelled(body.items, n, RESOURCE_FIELDS)
            ]
            if len(self.diagnostics) > reported or missing:
                # A pool reported as wrong leaves the inventory unknown: nothing is checked
                # against it, so that its mistake is not reported again at every step.
                target.nodes_reported = True
            if missing:
                self.report(
                    codes.MISSING_ATTRIBUTE.at(
                        item.label.span,
                        f"no `{missing[0]}`",
                        context=f"node pool `{item.label.name}`",
                        name=missing[0],
                        help=f"add `{missing[0]} = …` to the pool",
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
