"""The checked program: what the resolver makes of a spec, before lowering to the IR.

Unlike the AST, every name here is bound and every value evaluated; unlike the IR, it still
carries spans, so the graph, resource and target checks can point at the text.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mlc.checks import types as t
from mlc.source import Span


@dataclass(eq=False)
class ParamDecl:
    """A pipeline param, bound to a value."""

    name: str
    type: t.Type
    default: object
    value: object
    constraint: str | None
    span: Span
    used: bool = False
    invalid: bool = False
    """Its value (default or given) was reported as wrong: what reads it is not checked again,
    so one bad `--param` is one error, not one per resource computed from it."""


@dataclass(eq=False)
class DatasetDecl:
    """A declared dataset."""

    name: str
    type: t.Type
    uri: str
    version_kind: str
    version_value: str | None
    span: Span


@dataclass(eq=False)
class OutputDecl:
    """A step output."""

    name: str
    type: t.Type
    span: Span


@dataclass(eq=False)
class InputDecl:
    """A step input bound to its source: `node` is a step or dataset name."""

    name: str
    type: t.Type
    source_kind: str  # "step" | "dataset"
    node: str
    output: str | None
    fan_in: bool
    span: Span
    source_span: Span


@dataclass(eq=False)
class ResourceRequest:
    """Canonical resources of a step."""

    cpu_millis: int = 1000
    memory_bytes: int | None = None
    gpu: t.GpuValue | None = None
    shm_bytes: int | None = None
    disk_bytes: int | None = None
    spans: dict[str, Span] = field(default_factory=dict)


@dataclass(eq=False)
class StepDecl:
    """A step with everything resolved."""

    name: str
    span: Span
    head_span: Span
    is_finally: bool = False
    image: str | None = None
    command_kind: str = "exec"
    argv: tuple[str, ...] = ()
    function: str | None = None
    args: dict[str, object] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    secrets: dict[str, tuple[str, str]] = field(default_factory=dict)
    inputs: list[InputDecl] = field(default_factory=list)
    input_names: set[str] = field(default_factory=set)
    """Every declared input, bound or not: templates may name each without a second error."""
    outputs: dict[str, OutputDecl] = field(default_factory=dict)
    resources: ResourceRequest = field(default_factory=ResourceRequest)
    retries: int = 0
    backoff_seconds: float = 10.0
    max_backoff_seconds: float = 600.0
    timeout_seconds: float | None = None
    cache_enabled: bool = True
    cache_expire_seconds: int | None = None
    after: list[tuple[str, Span]] = field(default_factory=list)
    when: object = None  # a Symbolic bool, a constant bool, or None
    when_span: Span | None = None
    when_references: dict[str, Span] = field(default_factory=dict)
    """Each step a `when` condition reads, at its first reference (`evaluate.scores.f1`)."""
    foreach_var: str | None = None
    foreach_items: list[object] | None = None
    parallelism: int | None = None
    params_used: set[str] = field(default_factory=set)
    """The params the step reads (its cache key holds their values)."""
    foreach_params: set[str] = field(default_factory=set)
    """The params read only to list the `foreach` items (each invocation's key holds its item)."""
    code: tuple[str, ...] = ()
    features: dict[str, Span] = field(default_factory=dict)


@dataclass(eq=False)
class PipelineOutputDecl:
    """An exported result."""

    name: str
    step: str
    output: str
    span: Span


@dataclass(eq=False)
class NodePoolDecl:
    """A node pool of a target's inventory."""

    name: str
    count: int
    cpu_millis: int
    memory_bytes: int
    gpu: t.GpuValue | None
    span: Span


@dataclass(eq=False)
class TargetDecl:
    """A target block."""

    name: str
    backend: str
    span: Span
    backend_span: Span
    store: str | None = None
    address: str | None = None
    namespace: str | None = None
    accelerators: dict[str, object] = field(default_factory=dict)
    accelerator_spans: dict[str, Span] = field(default_factory=dict)
    nodes: list[NodePoolDecl] = field(default_factory=list)
    nodes_reported: bool = False
    """A node pool of its inventory was reported as wrong: what fits is not checked."""
    ignore_unsupported: tuple[str, ...] = ()
    settings: dict[str, object] = field(default_factory=dict)
    setting_spans: dict[str, Span] = field(default_factory=dict)
    ignore_spans: dict[str, Span] = field(default_factory=dict)
    implied: bool = False
    """Not declared: `--target BACKEND` named a backend, used with its defaults."""


@dataclass(eq=False)
class Program:
    """One checked pipeline with the targets declared beside it."""

    path: str
    base_dir: str
    name: str
    span: Span
    params: dict[str, ParamDecl] = field(default_factory=dict)
    datasets: dict[str, DatasetDecl] = field(default_factory=dict)
    steps: dict[str, StepDecl] = field(default_factory=dict)
    outputs: list[PipelineOutputDecl] = field(default_factory=list)
    targets: dict[str, TargetDecl] = field(default_factory=dict)
