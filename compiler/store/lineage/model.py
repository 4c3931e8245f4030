"""The facts lineage keeps: runs, step executions, datasets, and provenance trees."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from mlc.store.digest import Digest

RunStatus = Literal["running", "succeeded", "failed", "cancelled", "interrupted"]
"""`interrupted` is never recorded: it is how a `running` run whose coordinator is gone is
shown (`mlc.store.leases.as_seen_now`)."""
StepStatus = Literal["ran", "cached", "failed", "skipped", "cancelled"]
RUN_STATUSES: tuple[str, ...] = ("running", "succeeded", "failed", "cancelled")
STEP_STATUSES: tuple[str, ...] = ("ran", "cached", "failed", "skipped", "cancelled")


@dataclass(frozen=True, slots=True)
class Run:
    """One run of a pipeline on a target."""

    run_id: str
    pipeline: str
    spec_path: str = ""
    target: str = ""
    backend: str = ""
    host: str = ""
    user: str = ""
    git_commit: str | None = None
    git_dirty: bool | None = None
    params: dict[str, Any] = field(default_factory=dict)
    started_at: float = 0.0
    """Seconds since the epoch."""
    ended_at: float | None = None
    status: RunStatus = "running"

    def to_json(self) -> dict[str, Any]:
        """A plain dict (also the shape of the `runs` record)."""
        return {
            "run_id": self.run_id,
            "pipeline": self.pipeline,
            "spec_path": self.spec_path,
            "target": self.target,
            "backend": self.backend,
            "host": self.host,
            "user": self.user,
            "git_commit": self.git_commit,
            "git_dirty": self.git_dirty,
            "params": self.params,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "status": self.status,
        }


@dataclass(frozen=True, slots=True)
class Output:
    """An output of a step execution: its digest and kind (`file` or `dir`)."""

    digest: Digest
    kind: str = "file"


STEP_ID_PREFIX = "step:"
"""Steps are recorded under their IR id, `step:NAME` (`step:NAME[i]` for a `foreach` item;
see `mlc.ir.model.step_id`, which lineage does not import: it would bring in the IR models)."""


def step_name(step_id: str) -> str:
    """The name a step id stands for, as the spec writes it (`step:train` -> `train`)."""
    return step_id.removeprefix(STEP_ID_PREFIX)


@dataclass(frozen=True, slots=True)
class StepExecution:
    """One execution of one step in a run (a cache hit is an execution with status `cached`)."""

    run_id: str
    step_id: str
    status: StepStatus
    cache_key: str = ""
    attempts: int = 1
    exit_code: int | None = None
    started_at: float | None = None
    ended_at: float | None = None
    host: str = ""
    image: str = ""
    log_ref: str = ""
    """Where the log is: a path, or an object digest in the store."""
    error: str | None = None
    """Why a failed or cancelled execution did not succeed (a non-zero exit, an output that
    could not be stored, a timeout), as the run reported it."""
    params: dict[str, Any] = field(default_factory=dict)
    """The params the step read, with their values (its cache key's)."""
    code: dict[str, str] = field(default_factory=dict)
    """The digests of the code it ran (its module and the project modules it imports, the
    paths it declares in `code`), as in its cache key."""
    inputs: dict[str, Digest] = field(default_factory=dict)
    outputs: dict[str, Output] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """The step as the spec names it: `train`, `train[2]` for the id `step:train[2]`."""
        return step_name(self.step_id)

    def to_json(self) -> dict[str, Any]:
        """A plain dict (also the shape of the `steps` record)."""
        return {
            "run_id": self.run_id,
            "step_id": self.step_id,
            "status": self.status,
            "cache_key": self.cache_key,
            "attempts": self.attempts,
            "exit_code": self.exit_code,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "host": self.host,
            "image": self.image,
            "log_ref": self.log_ref,
            "error": self.error,
            "params": dict(sorted(self.params.items())),
            "code": dict(sorted(self.code.items())),
            "inputs": dict(sorted(self.inputs.items())),
            "outputs": {
                name: {"digest": o.digest, "kind": o.kind}
                for name, o in sorted(self.outputs.items())
            },
        }


@dataclass(frozen=True, slots=True)
class Dataset:
    """A declared dataset seen by a run: its name, URI and pinned digest."""

    digest: Digest
    name: str
    uri: str = ""
    kind: str = "file"

    def to_json(self) -> dict[str, Any]:
        """A plain dict (also the shape of the `datasets` record)."""
        return {"digest": self.digest, "name": self.name, "uri": self.uri, "kind": self.kind}


@dataclass(frozen=True, slots=True)
class ProvenanceNode:
    """How a digest came to be: produced by a step (with the inputs it read), or a dataset."""

    digest: Digest
    source: Literal["step", "dataset", "unknown"]
    kind: str | None = None
    step: StepExecution | None = None
    output: str | None = None
    """The output name under which `step` produced this digest."""
    datasets: tuple[Dataset, ...] = ()
    inputs: tuple[tuple[str, ProvenanceNode], ...] = ()
    repeated: bool = False
    """True when this digest was already expanded higher in the tree (shown once)."""
    run: Run | None = None
    """The run of `step`: its pipeline, target, backend and code version."""
    cached_from: StepExecution | None = None
    """When `step` was a cache hit: the execution, in an earlier run, that ran and made this
    digest (None when lineage does not know it)."""
    cached_from_run: Run | None = None
    """The run of `cached_from`."""

    @property
    def maker(self) -> tuple[StepExecution | None, Run | None]:
        """The execution that did the work, and its run: `cached_from` for a cache hit (None
        when unknown), else `step`."""
        if self.step is not None and self.step.status == "cached":
            return self.cached_from, self.cached_from_run
        return self.step, self.run

    def to_json(self) -> dict[str, Any]:
        """A nested plain dict for `--format json`: what `mlc lineage` shows, whole."""
        document: dict[str, Any] = {"digest": self.digest, "source": self.source, "kind": self.kind}
        if self.step is not None:
            document["produced_by"] = _execution_json(self.step, self.output, self.run)
            if self.step.status == "cached":
                document["cached_from"] = (
                    None
                    if self.cached_from is None
                    else _execution_json(self.cached_from, self.output, self.cached_from_run)
                )
        if self.datasets:
            document["datasets"] = [d.to_json() for d in self.datasets]
        if self.repeated:
            document["repeated"] = True
        document["inputs"] = {name: node.to_json() for name, node in self.inputs}
        return document


def _execution_json(step: StepExecution, output: str | None, run: Run | None) -> dict[str, Any]:
    return {
        "run_id": step.run_id,
        "step_id": step.step_id,
        "step": step.name,
        "output": output,
        "status": step.status,
        "cache_key": step.cache_key,
        "params": dict(sorted(step.params.items())),
        "code": dict(sorted(step.code.items())),
        "image": step.image,
        "host": step.host,
        "started_at": step.started_at,
        "ended_at": step.ended_at,
        "pipeline": run.pipeline if run else None,
        "target": run.target if run else None,
        "backend": run.backend if run else None,
        "git_commit": run.git_commit if run else None,
        "git_dirty": run.git_dirty if run else None,
    }
