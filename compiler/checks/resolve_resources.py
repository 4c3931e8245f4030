"""Resolving resource requests: `resources { … }` blocks, profiles, and their units."""

from __future__ import annotations

from typing import Any

from mlc.checks import types as t
from mlc.checks.evaluate import GPU_COUNT_HELP, INVALID, Scope
from mlc.checks.program import (
    ResourceRequest,
    StepDecl,
)
from mlc.checks.resolve_base import (
    CPU,
    RESOURCE_FIELDS,
    Profile,
    ResolverBase,
)
from mlc.diagnostics import catalog as codes
from mlc.front import ast
from mlc.source import Span


class ResourcesResolver(ResolverBase):
    """Resolves resource requests of steps and node pools."""

    def _resolve_resources(
        self,
        step: StepDecl,
        items: list[ast.Attribute | ast.Block],
        scope: Scope,
    ) -> None:
        """A step's resources: profiles and blocks merged key by key, later ones winning."""
        request = ResourceRequest()
        fields: dict[str, tuple[Any, Span]] = {}
        used_at: dict[str, Span] = {}
        for item in items:
            if isinstance(item, ast.Attribute):
                from_profile = self._profile_fields(item.value, scope)
                fields.update(from_profile)
                used_at.update(dict.fromkeys(from_profile, item.value.span))
            else:
                context = f"the resources of step `{step.name}`"
                own = self._resource_fields(item.body, scope, context)
                fields.update(own)
                for name in own:
                    used_at.pop(name, None)
        self._apply_resources(request, fields, step, used_at)
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
            # Spans at the profile's own values: a wrong value there is reported once, at the
            # line to fix, whatever the number of steps that use the profile.
            return fields
        self.report(
            codes.TYPE_MISMATCH.at(
                expr.span,
                f"this is {t.describe(value)}",
                expected="a resource profile or `{ cpu = …, memory = … }`",
                found=t.describe(value),
                help="name a `resources NAME { … }` profile, or write the amounts: "
                "`resources { cpu = 2, memory = 4Gi }`",
            )
        )
        return {}

    def _resource_fields(
        self, body: ast.Body, scope: Scope, context: str
    ) -> dict[str, tuple[Any, Span]]:
        fields: dict[str, tuple[Any, Span]] = {}
        for item in self._attributes_of(body.items, '`cpu = 2`, `memory = 4Gi`, `gpu = 1 of "t4"`'):
            name = item.name.name
            if not self._is_known(
                item.name,
                RESOURCE_FIELDS,
                context,
                "not a resource",
                fallback="resources are cpu, memory, gpu, shm and disk",
            ):
                continue
            expected = CPU if name == "cpu" else None
            value = self.evaluator.value(item.value, scope, expected)
            if value is not INVALID:
                fields[name] = (value, item.value.span)
        return fields

    def _apply_resources(
        self,
        request: ResourceRequest,
        fields: dict[str, tuple[Any, Span]],
        step: StepDecl,
        used_at: dict[str, Span] | None = None,
    ) -> None:
        """Checks each value at its span and records the request. `used_at` holds, for values
        from a resource profile, where the step uses it: what concerns the step (a target that
        cannot honour it, a request no node can hold) is reported there."""
        for name, (value, span) in fields.items():
            request.spans[name] = (used_at or {}).get(name, span)
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
                            unit=str(value),
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
                            help="write cores (`cpu = 2`, `cpu = 0.5`) or millicores (`cpu = 500m`)",
                        )
                    )
                    continue
                if millis <= 0:
                    self.not_positive(span, "cpu", value, example="500m")
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
                                unit=str(value),
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
                                help=f"write an amount with a unit: `{name} = 4Gi`",
                            )
                        )
                    continue
                amount = round(value.amount)
                if amount <= 0:
                    self.not_positive(span, name, value, example="4Gi")
                    continue
                setattr(request, f"{name}_bytes", amount)
                if name in ("shm", "disk"):
                    step.features[name] = request.spans[name]
            elif name == "gpu":
                if isinstance(value, bool) or not (isinstance(value, (int, t.GpuValue))):
                    self.report(
                        codes.INVALID_GPU_COUNT.at(
                            span,
                            "not a whole number",
                            value=t.describe(value),
                            help=GPU_COUNT_HELP,
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
                step.features["gpu"] = request.spans[name]
                if gpu.accelerator:
                    step.features["accelerator"] = request.spans[name]
                if gpu.mig:
                    step.features["mig"] = request.spans[name]
