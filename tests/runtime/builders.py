"""Small builders of IR documents for tests, straight from the pydantic models.

They spell out only what a test is about; everything else gets a sensible default (1 CPU, no
retries, tiny backoffs, caching on).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from mlc.ir.model import (
    ArtifactType,
    CachePolicy,
    Command,
    Condition,
    Const,
    Dataset,
    DatasetVersion,
    Foreach,
    GpuRequest,
    InputPort,
    InputSource,
    IRDocument,
    MetricRef,
    NodePool,
    Op,
    OutputPort,
    Param,
    Pipeline,
    PipelineOutput,
    Resources,
    RetryPolicy,
    SecretRef,
    SourceRef,
    Step,
    Target,
    dataset_id,
    step_id,
)

HERE = SourceRef(file="test.mlspec", line=1, column=1)


def artifact(kind: str = "file", metrics: Mapping[str, str] | None = None) -> ArtifactType:
    """An artifact type of a built-in kind (metrics may declare typed keys)."""
    return ArtifactType(name=kind, kind=kind, metric_keys=dict(metrics) if metrics else None)  # type: ignore[arg-type]


def out(name: str, kind: str = "file", metrics: Mapping[str, str] | None = None) -> OutputPort:
    """An output port."""
    return OutputPort(name=name, type=artifact(kind, metrics))


def inp(name: str, source: str, kind: str = "file", *, fan_in: bool = False) -> InputPort:
    """An input from `step.output` or from `dataset:name`."""
    if source.startswith("dataset:"):
        src = InputSource(node=dataset_id(source.removeprefix("dataset:")))
    else:
        producer, _, output = source.partition(".")
        src = InputSource(node=step_id(producer), output=output)
    return InputPort(name=name, type=artifact(kind), fan_in=fan_in, source=src)


def sh(script: str) -> Command:
    """An exec command `sh -c SCRIPT` (templates are rendered inside SCRIPT)."""
    return Command(kind="exec", argv=("sh", "-c", script))


def step(
    name: str,
    command: Command,
    *,
    inputs: Sequence[InputPort] = (),
    outputs: Sequence[OutputPort] = (),
    cpu_millis: int = 1000,
    memory_bytes: int | None = None,
    gpu: GpuRequest | None = None,
    retries: int = 0,
    backoff_seconds: float = 0.01,
    timeout_seconds: float | None = None,
    cache: CachePolicy | None = None,
    when: Condition | None = None,
    foreach: tuple[str, Sequence[Any]] | None = None,
    parallelism: int | None = None,
    after: Iterable[str] = (),
    env: Mapping[str, str] | None = None,
    secrets: Mapping[str, str] | None = None,
    is_finally: bool = False,
    params_used: Mapping[str, Any] | None = None,
    code: Sequence[str] = (),
    image: str | None = None,
) -> Step:
    """A step; `secrets` maps an env name to `secret/key`."""
    return Step(
        id=step_id(name),
        name=name,
        is_finally=is_finally,
        image=image,
        command=command,
        env=dict(env or {}),
        secrets={
            n: SecretRef(name=ref.partition("/")[0], key=ref.partition("/")[2])
            for n, ref in (secrets or {}).items()
        },
        inputs=tuple(inputs),
        outputs=tuple(outputs),
        resources=Resources(cpu_millis=cpu_millis, memory_bytes=memory_bytes, gpu=gpu),
        retry=RetryPolicy(
            retries=retries, backoff_seconds=backoff_seconds, max_backoff_seconds=60.0
        ),
        timeout_seconds=timeout_seconds,
        cache=cache or CachePolicy(),
        after=tuple(step_id(a) for a in after),
        when=when,
        foreach=Foreach(var=foreach[0], items=tuple(foreach[1]), parallelism=parallelism)
        if foreach
        else None,
        params_used=dict(params_used or {}),
        code=tuple(code),
        source=HERE,
    )


def metric(step_name: str, output: str, key: str) -> MetricRef:
    """`step.output.key` in a condition."""
    return MetricRef(step=step_id(step_name), output=output, key=key)


def op(name: str, *args: Condition | Any) -> Op:
    """An operator over conditions (plain values become constants)."""
    return Op(
        op=name,  # type: ignore[arg-type]
        args=tuple(a if isinstance(a, MetricRef | Const | Op) else Const(value=a) for a in args),
    )


def dataset(name: str, uri: str, version: str = "latest", kind: str = "dataset") -> Dataset:
    """A dataset: `version` is `latest`, `tag:NAME` or a `sha256:` digest."""
    if version.startswith("sha256:"):
        pinned = DatasetVersion(kind="digest", value=version)
    elif version.startswith("tag:"):
        pinned = DatasetVersion(kind="tag", value=version.removeprefix("tag:"))
    else:
        pinned = DatasetVersion(kind="latest")
    return Dataset(
        id=dataset_id(name), name=name, uri=uri, version=pinned, type=artifact(kind), source=HERE
    )


def target(
    name: str = "test",
    *,
    cpu_millis: int | None = None,
    memory_bytes: int = 8 << 30,
    gpu: GpuRequest | None = None,
    ignore_unsupported: Sequence[str] = (),
) -> Target:
    """A local target, with one node pool when `cpu_millis` is given."""
    nodes = ()
    if cpu_millis is not None:
        nodes = (
            NodePool(
                name="box", count=1, cpu_millis=cpu_millis, memory_bytes=memory_bytes, gpu=gpu
            ),
        )
    return Target(
        name=name, backend="local", nodes=nodes, ignore_unsupported=tuple(ignore_unsupported)
    )


def document(
    base_dir: Path,
    steps: Sequence[Step],
    *,
    params: Mapping[str, Any] | None = None,
    datasets: Sequence[Dataset] = (),
    target: Target | None = None,
    outputs: Mapping[str, str] | None = None,
    name: str = "test",
) -> IRDocument:
    """An IR document; `outputs` maps exported names to `step.output`."""
    return IRDocument(
        compiler_version="test",
        spec=str(base_dir / "test.mlspec"),
        base_dir=str(base_dir),
        pipeline=Pipeline(
            name=name,
            params=tuple(
                Param(name=n, type=type(v).__name__, value=v) for n, v in (params or {}).items()
            ),
            datasets=tuple(datasets),
            steps=tuple(steps),
            outputs=tuple(
                PipelineOutput(
                    name=n, step=step_id(ref.partition(".")[0]), output=ref.partition(".")[2]
                )
                for n, ref in (outputs or {}).items()
            ),
        ),
        target=target,
    )
