"""Lowering: a checked `Program` to the IR document that backends run.

Lowering cannot fail: every problem was reported by the checks. It canonicalises units,
binds ids, and drops spans in favour of `SourceRef`s (file, line, column).
"""

from __future__ import annotations

from typing import Any

from mlc import __version__
from mlc.checks import types as t
from mlc.checks.program import Program, StepDecl, TargetDecl
from mlc.ir import model as ir
from mlc.source import SourceMap, Span


def _source(span: Span, sources: SourceMap) -> ir.SourceRef:
    position = sources.position(span)
    return ir.SourceRef(file=span.path, line=position.line, column=position.column)


def _artifact(type_: t.Type) -> ir.ArtifactType:
    base = type_.args[0] if type_.name == "list" and type_.args else type_
    keys = dict(base.metric_keys) if base.metric_keys is not None else None
    return ir.ArtifactType(name=base.name, kind=base.artifact_kind or "file", metric_keys=keys)


def _gpu(gpu: t.GpuValue | None) -> ir.GpuRequest | None:
    if gpu is None:
        return None
    return ir.GpuRequest(count=gpu.count, accelerator=gpu.accelerator, mig=gpu.mig)


def _condition(step: StepDecl, sources: SourceMap) -> Any:
    """The step's `when`: a tree evaluated at run time, or, when params alone decide it, the
    constant it evaluated to (kept, so that every backend skips a step whose condition is false).
    """
    value = step.when
    if isinstance(value, t.Symbolic):
        return _lower_condition(value.condition)
    if isinstance(value, bool):
        return ir.Const(value=value, text=_text(step.when_span, sources))
    return None


def _text(span: Span | None, sources: SourceMap) -> str | None:
    """The text a span covers, on one line."""
    source = sources.get(span.path) if span is not None else None
    if span is None or source is None:
        return None
    return " ".join(source.text[span.start : span.end].split())


def _lower_condition(node: Any) -> Any:
    kind = node["kind"]
    if kind == "metric":
        return ir.MetricRef(step=ir.step_id(node["step"]), output=node["output"], key=node["key"])
    if kind == "const":
        return ir.Const(value=node["value"])
    return ir.Op(op=node["op"], args=tuple(_lower_condition(a) for a in node["args"]))


def lower_step(step: StepDecl, program: Program, sources: SourceMap) -> ir.Step:
    """One step in IR form."""
    inputs = tuple(
        ir.InputPort(
            name=port.name,
            type=_artifact(port.type),
            fan_in=port.fan_in,
            source=ir.InputSource(
                node=ir.step_id(port.node)
                if port.source_kind == "step"
                else ir.dataset_id(port.node),
                output=port.output,
            ),
        )
        for port in step.inputs
    )
    foreach = None
    if step.foreach_var is not None and step.foreach_items is not None:
        foreach = ir.Foreach(
            var=step.foreach_var,
            items=tuple(t.to_json(i) for i in step.foreach_items),
            parallelism=step.parallelism,
        )
    params_used = {
        name: t.to_json(program.params[name].value)
        for name in sorted(step.params_used)
        if name in program.params
    }
    resources = step.resources
    return ir.Step(
        id=ir.step_id(step.name),
        name=step.name,
        is_finally=step.is_finally,
        image=step.image,
        command=ir.Command(
            kind=step.command_kind,
            argv=step.argv,
            function=step.function,
            args=dict(sorted(step.args.items())),
        ),
        env=dict(sorted(step.env.items())),
        secrets={k: ir.SecretRef(name=n, key=key) for k, (n, key) in sorted(step.secrets.items())},
        inputs=inputs,
        outputs=tuple(
            ir.OutputPort(name=o.name, type=_artifact(o.type)) for o in step.outputs.values()
        ),
        resources=ir.Resources(
            cpu_millis=resources.cpu_millis,
            memory_bytes=resources.memory_bytes,
            gpu=_gpu(resources.gpu),
            shm_bytes=resources.shm_bytes,
            disk_bytes=resources.disk_bytes,
        ),
        retry=ir.RetryPolicy(
            retries=step.retries,
            backoff_seconds=step.backoff_seconds,
            max_backoff_seconds=step.max_backoff_seconds,
        ),
        timeout_seconds=step.timeout_seconds,
        cache=ir.CachePolicy(enabled=step.cache_enabled, expire_seconds=step.cache_expire_seconds),
        after=tuple(ir.step_id(name) for name, _ in step.after),
        when=_condition(step, sources),
        foreach=foreach,
        params_used=params_used,
        code=step.code,
        source=_source(step.head_span, sources),
    )


def lower_target(target: TargetDecl) -> ir.Target:
    """The chosen target in IR form."""
    return ir.Target(
        name=target.name,
        backend=target.backend,
        store=target.store,
        address=target.address,
        namespace=target.namespace,
        accelerators=dict(sorted(target.accelerators.items())),
        nodes=tuple(
            ir.NodePool(
                name=p.name,
                count=p.count,
                cpu_millis=p.cpu_millis,
                memory_bytes=p.memory_bytes,
                gpu=_gpu(p.gpu),
            )
            for p in target.nodes
        ),
        ignore_unsupported=target.ignore_unsupported,
        settings=target.settings,
    )


def lower(program: Program, sources: SourceMap, target: str | None) -> ir.IRDocument:
    """The IR document of a checked program, for the chosen target (if any)."""
    pipeline = ir.Pipeline(
        name=program.name,
        params=tuple(
            ir.Param(
                name=p.name,
                type=str(p.type),
                value=t.to_json(p.value),
                default=p.default,
                constraint=p.constraint,
            )
            for p in program.params.values()
        ),
        datasets=tuple(
            ir.Dataset(
                id=ir.dataset_id(d.name),
                name=d.name,
                uri=d.uri,
                version=ir.DatasetVersion(kind=d.version_kind, value=d.version_value),
                type=_artifact(d.type),
                source=_source(d.span, sources),
            )
            for d in program.datasets.values()
        ),
        steps=tuple(lower_step(s, program, sources) for s in program.steps.values()),
        outputs=tuple(
            ir.PipelineOutput(name=o.name, step=ir.step_id(o.step), output=o.output)
            for o in program.outputs
        ),
    )
    chosen = program.targets.get(target) if target else None
    return ir.IRDocument(
        compiler_version=__version__,
        spec=program.path,
        base_dir=program.base_dir,
        pipeline=pipeline,
        target=lower_target(chosen) if chosen else None,
    )
