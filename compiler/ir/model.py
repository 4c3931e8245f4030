"""The IR document: everything a backend needs to run a pipeline, resolved and typed.

Every value is canonical: CPU in millicores, memory and disk in bytes, durations in seconds,
params bound to their values, references bound to typed ids. Nothing here refers to the AST;
`source` fields point back to the text for messages at run time. Changing the shape of any
model is a schema change: bump `SCHEMA_VERSION` and regenerate `docs/ir.schema.json`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, NewType

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = 2

StepId = NewType("StepId", str)
"""`step:<name>`: a step of the pipeline."""

DatasetId = NewType("DatasetId", str)
"""`dataset:<name>`: a declared, versioned dataset."""

NodeId = StepId | DatasetId

JsonValue = Any
ArtifactKind = Literal["dataset", "model", "metrics", "file", "dir"]
MetricType = Literal["int", "float", "bool", "str"]


def step_id(name: str) -> StepId:
    """The id of the step called `name`."""
    return StepId(f"step:{name}")


def dataset_id(name: str) -> DatasetId:
    """The id of the dataset called `name`."""
    return DatasetId(f"dataset:{name}")


class IRModel(BaseModel):
    """Base of every IR model: frozen, no unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)


class SourceRef(IRModel):
    """Where a node was declared: file (relative, POSIX), 1-based line and column."""

    file: str
    line: int
    column: int


class ArtifactType(IRModel):
    """The type of an artifact: its name (a built-in kind or a declared subtype) and kind."""

    name: str
    kind: ArtifactKind
    metric_keys: dict[str, MetricType] | None = None


class DatasetVersion(IRModel):
    """How a dataset is pinned: a content digest, a named tag, or `latest` (moving)."""

    kind: Literal["digest", "tag", "latest"]
    value: str | None = None


class Dataset(IRModel):
    """A declared dataset: a location and a version."""

    id: DatasetId
    name: str
    uri: str
    version: DatasetVersion
    type: ArtifactType
    source: SourceRef


class Param(IRModel):
    """A pipeline param with its bound value."""

    name: str
    type: str
    value: JsonValue
    default: JsonValue = None
    constraint: str | None = None


class InputSource(IRModel):
    """Where an input comes from: an output of a step, or a dataset."""

    node: NodeId
    output: str | None = None


class InputPort(IRModel):
    """A typed input of a step; `fan_in` when it collects one artifact per `foreach` item."""

    name: str
    type: ArtifactType
    fan_in: bool = False
    source: InputSource


class OutputPort(IRModel):
    """A typed output of a step."""

    name: str
    type: ArtifactType


class Command(IRModel):
    """What a step runs.

    `exec`: `argv` is a list of Jinja2 templates, run without a shell. `shell`: `argv` holds one
    template run by `/bin/sh -c`, every substituted value shell-quoted. `call`: `function` is
    `module:function`, called with `args` and the input and output paths.
    """

    kind: Literal["exec", "shell", "call"]
    argv: tuple[str, ...] = ()
    function: str | None = None
    args: dict[str, JsonValue] = Field(default_factory=dict)


class SecretRef(IRModel):
    """A secret by reference: the backend looks up `key` of secret `name`; values never appear."""

    name: str
    key: str


class GpuRequest(IRModel):
    """A GPU request: a count and optionally a portable accelerator type and MIG profile."""

    count: int
    accelerator: str | None = None
    mig: str | None = None


class Resources(IRModel):
    """Canonical resource request of one step (or one `foreach` item)."""

    cpu_millis: int
    memory_bytes: int | None = None
    gpu: GpuRequest | None = None
    shm_bytes: int | None = None
    disk_bytes: int | None = None


class RetryPolicy(IRModel):
    """How often a failed step is retried and how long to wait in between (doubling)."""

    retries: int = 0
    backoff_seconds: float = 10.0
    max_backoff_seconds: float = 600.0


class CachePolicy(IRModel):
    """Whether a step's results may be reused, and for how long."""

    enabled: bool = True
    expire_seconds: int | None = None


class Foreach(IRModel):
    """Fan-out: the step runs once per item, bound to `var`, at most `parallelism` at a time."""

    var: str
    items: tuple[JsonValue, ...]
    parallelism: int | None = None


class MetricRef(IRModel):
    """A metric of an upstream step, read at run time."""

    kind: Literal["metric"] = "metric"
    step: StepId
    output: str
    key: str


class Const(IRModel):
    """A constant in a condition.

    A `when` computed at compile time from params alone (`when = params.deploy`) is one `Const`
    holding its value, with `text` the condition as written, for "skipped because" messages.
    """

    kind: Literal["const"] = "const"
    value: JsonValue
    text: str | None = None


class Op(IRModel):
    """An operator applied to sub-conditions."""

    kind: Literal["op"] = "op"
    op: Literal["and", "or", "not", "==", "!=", "<", "<=", ">", ">=", "in", "+", "-", "*", "/"]
    args: tuple[Condition, ...]


Condition = Annotated[MetricRef | Const | Op, Field(discriminator="kind")]


class Step(IRModel):
    """One step of the pipeline, fully resolved."""

    id: StepId
    name: str
    is_finally: bool = False
    image: str | None = None
    command: Command
    env: dict[str, str] = Field(default_factory=dict)
    secrets: dict[str, SecretRef] = Field(default_factory=dict)
    inputs: tuple[InputPort, ...] = ()
    outputs: tuple[OutputPort, ...] = ()
    resources: Resources
    retry: RetryPolicy = RetryPolicy()
    timeout_seconds: float | None = None
    cache: CachePolicy = CachePolicy()
    after: tuple[StepId, ...] = ()
    when: Condition | None = None
    foreach: Foreach | None = None
    params_used: dict[str, JsonValue] = Field(default_factory=dict)
    code: tuple[str, ...] = ()
    source: SourceRef


class PipelineOutput(IRModel):
    """A result the pipeline exports: an output of one of its steps."""

    name: str
    step: StepId
    output: str


class NodePool(IRModel):
    """A kind of node a target offers, for feasibility checks."""

    name: str
    count: int
    cpu_millis: int
    memory_bytes: int
    gpu: GpuRequest | None = None


class Target(IRModel):
    """The selected target: a backend and its settings."""

    name: str
    backend: str
    store: str | None = None
    address: str | None = None
    namespace: str | None = None
    accelerators: dict[str, JsonValue] = Field(default_factory=dict)
    nodes: tuple[NodePool, ...] = ()
    ignore_unsupported: tuple[str, ...] = ()
    settings: dict[str, JsonValue] = Field(default_factory=dict)


class Pipeline(IRModel):
    """A pipeline: params, datasets, steps and exported outputs."""

    name: str
    params: tuple[Param, ...] = ()
    datasets: tuple[Dataset, ...] = ()
    steps: tuple[Step, ...] = ()
    outputs: tuple[PipelineOutput, ...] = ()


class IRDocument(IRModel):
    """The compiled artifact: schema and compiler versions, the spec it came from, the pipeline."""

    schema_version: int = SCHEMA_VERSION
    compiler_version: str
    spec: str
    base_dir: str
    pipeline: Pipeline
    target: Target | None = None


Op.model_rebuild()
