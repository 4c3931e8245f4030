"""The conformance suite's harness: backends under test, spec projects, the `mlc` command line,
and what two runs must have in common.

A test writes a *project* (a spec, the Python module its `call` steps import, and a `state/`
directory where steps leave notes for the test outside the store), drives it with the real
`mlc` command as a user would (`mlc apply … --format json`, `mlc runs`, `mlc lineage`), and
compares what it reads back. Nothing here fakes a backend: every run is a real `mlc apply`.

A backend joins the suite through `TARGETS`, one target declaration per backend, always named
`conformance`; the spec of a project is its pipeline followed by that declaration.
"""

from __future__ import annotations

import hashlib
import json
import os
import string
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest

TARGETS: dict[str, str] = {
    "local": "target conformance {\n  backend = local\n}\n",
    "ray": 'target conformance {\n  backend = ray\n  address = "${address}"\n}\n',
    "kubernetes": (
        'target conformance {\n  backend = kubernetes\n  namespace = "${namespace}"\n'
        '  kubernetes {\n    image = "${image}"\n    pod_template = "${pod_template}"\n'
        '    env_from_secrets = ["${credentials}"]\n  }\n}\n'
    ),
}
"""The target declaration of each backend under test (`--target conformance`). A declaration
may use `${placeholders}` filled from the settings its cluster fixture returns (see
`conftest.CLUSTERS`), e.g. `address = "${address}"` for Ray."""

REFERENCE = "local"
"""The backend every other backend is compared with."""

TARGET = "conformance"
COMMAND_TIMEOUT_S = 180.0
"""How long any one `mlc` command may take before the test gives up: far beyond any case, so
that only a hang reaches it."""


@dataclass(frozen=True)
class Backend:
    """A backend under test: its name, its target declaration, and the environment variables
    its cluster needs (for instance the address of a Ray cluster)."""

    name: str
    target: str
    environ: Mapping[str, str] = field(default_factory=dict)
    attempts_outlive_coordinator: bool = False
    """Whether what a killed `mlc apply` started goes on without it (Kubernetes Jobs), to be
    adopted by the next apply, rather than stopping with it (a local worker, a Ray task)."""
    store: str | None = None
    """Where each project's store goes, for a backend whose workers cannot reach this
    machine's directories (a URI prefix: `s3://bucket/prefix`); None: in the project."""


def declared(name: str, settings: Mapping[str, str] | None = None) -> Backend:
    """The backend `name` as `TARGETS` declares it, its placeholders filled from `settings`."""
    return Backend(name, string.Template(TARGETS[name]).substitute(settings or {}))


def not_on(backend: str, reason: str) -> pytest.MarkDecorator:
    """Marks a case a backend cannot support: for that backend the test is an expected failure
    (strict: when the backend learns it, the mark must go), shown with `reason`."""
    return pytest.mark.not_on(backend, reason=reason)


# ---------------------------------------------------------------------- digests, by hand


def file_digest(content: bytes) -> str:
    """A file's version: the sha256 of its bytes (docs/store.md, "Digests")."""
    return "sha256:" + hashlib.sha256(content).hexdigest()


def dir_digest(files: Mapping[str, bytes]) -> str:
    """A directory's version: the digest of its manifest, canonical JSON of (path, digest,
    size, mode) sorted by path (docs/store.md, "Manifests"); files here are never executable."""
    entries = [
        {"digest": file_digest(content), "mode": 0o644, "path": path, "size": len(content)}
        for path, content in sorted(files.items())
    ]
    manifest = {"entries": entries, "format": "mlc.manifest", "version": 1}
    encoded = json.dumps(manifest, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return file_digest(encoded.encode())


# ---------------------------------------------------------------------- step modules

NOTES = '''"""Steps of a conformance case. They leave notes for the test in `state/`, next to this
file and outside the store: how often they ran, when, and as which process."""

import os
import time
from pathlib import Path

STATE = Path(__file__).with_name("state")


def note(name, text):
    """Appends a line to the note `name`."""
    STATE.mkdir(exist_ok=True)
    with open(STATE / name, "a") as handle:
        handle.write(text + "\\n")


def count(name):
    """Notes one more execution of `name` and returns how many there have been."""
    note(name + ".runs", str(os.getpid()))
    return len((STATE / (name + ".runs")).read_text().splitlines())


def wait_for_file(name, seconds=120.0):
    """Waits until the test creates `state/name`."""
    deadline = time.monotonic() + seconds
    while not (STATE / name).exists():
        if time.monotonic() > deadline:
            raise TimeoutError("the test never created state/" + name)
        time.sleep(0.02)
'''
"""The start of every step module: helpers for the notes steps leave for the test."""


def step_module(functions: str) -> str:
    """A step module: the notes helpers, then the case's functions."""
    return NOTES + "\n\n" + functions.strip() + "\n"


# ---------------------------------------------------------------------- running mlc


def mlc_command() -> list[str]:
    """The `mlc` entry point of the environment running the tests."""
    script = Path(sys.executable).with_name("mlc")
    return [str(script)] if script.exists() else [sys.executable, "-m", "mlc"]


@dataclass(frozen=True)
class Applied:
    """What `mlc apply --format json` said: its exit code, its report, its stderr."""

    code: int
    report: dict[str, Any]
    stderr: str

    @property
    def run_id(self) -> str:
        run_id: str = self.report["run_id"]
        return run_id

    @property
    def status(self) -> str:
        status: str = self.report["status"]
        return status

    @property
    def steps(self) -> dict[str, dict[str, Any]]:
        """The step reports by invocation name (`train`, `train[2]`)."""
        return {step["name"]: step for step in self.report["steps"]}

    @property
    def statuses(self) -> dict[str, str]:
        return {name: step["status"] for name, step in self.steps.items()}

    @property
    def outputs(self) -> dict[str, dict[str, str]]:
        """Each step's output digests by output name."""
        return {name: step["outputs"] for name, step in self.steps.items()}

    @property
    def cache_keys(self) -> dict[str, str | None]:
        return {name: step["cache_key"] for name, step in self.steps.items()}

    def __str__(self) -> str:
        return f"exit code {self.code}\n{json.dumps(self.report, indent=2)}\n{self.stderr}"


class Project:
    """A spec directory and its store: `pipeline.mlspec` (the pipeline, then the backend's
    target declaration), `steps.py` (the module of its `call` steps) and `state/` (the notes
    steps leave), driven through the `mlc` command."""

    def __init__(self, root: Path, backend: Backend, pipeline: str, module: str = "") -> None:
        self.backend = backend
        self.root = root
        self.spec_dir = root / "spec"
        self.store: Path | str = root / "store"
        if backend.store is not None:
            self.store = f"{backend.store}/{root.name}-{uuid.uuid4().hex[:12]}"
        self.state = self.spec_dir / "state"
        self.state.mkdir(parents=True)
        spec = f"mlspec 1\n\n{pipeline.strip()}\n\n{backend.target.strip()}\n"
        (self.spec_dir / "pipeline.mlspec").write_text(spec)
        if module:
            (self.spec_dir / "steps.py").write_text(step_module(module))

    # -- the environment of every command

    def environ(self) -> dict[str, str]:
        """The caller's environment without `MLC_*`, no GPUs, a short kill grace period, an IR
        cache of the project's own, and what the backend's cluster needs."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("MLC_")}
        env["MLC_LOCAL_GPUS"] = ""
        env["MLC_KILL_GRACE_SECONDS"] = "0.5"
        env["MLC_IR_CACHE_DIR"] = str(self.root / "ir-cache")
        env.update(self.backend.environ)
        return env

    # -- commands

    def mlc(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Runs `mlc ARGS --store STORE` in the spec's directory."""
        completed = subprocess.run(
            [*mlc_command(), *args, "--store", str(self.store)],
            capture_output=True,
            text=True,
            env=self.environ(),
            cwd=self.spec_dir,
            timeout=COMMAND_TIMEOUT_S,
            check=False,
        )
        assert "Traceback" not in completed.stderr, completed.stderr
        return completed

    def mlc_json(self, *args: str) -> Any:
        """The JSON `mlc ARGS --format json` prints; the command must succeed."""
        completed = self.mlc(*args, "--format", "json")
        assert completed.returncode == 0, completed.stderr
        return json.loads(completed.stdout)

    def apply_args(self, *options: str) -> list[str]:
        return [
            *mlc_command(),
            "apply",
            "pipeline.mlspec",
            "--target",
            TARGET,
            "--format",
            "json",
            "--store",
            str(self.store),
            *options,
        ]

    def start_apply(self, *options: str) -> subprocess.Popen[str]:
        """Starts `mlc apply pipeline.mlspec --target conformance --format json` (and
        `options`), in the background."""
        return subprocess.Popen(
            self.apply_args(*options),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=self.environ(),
            cwd=self.spec_dir,
        )

    def finish(self, process: subprocess.Popen[str], warnings: Iterable[str] = ()) -> Applied:
        """Waits for a started apply and reads its report; the spec must have no warning but
        those whose codes `warnings` names."""
        try:
            stdout, stderr = process.communicate(timeout=COMMAND_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            stdout, stderr = process.communicate()
            raise AssertionError(f"mlc apply did not end:\n{stdout}\n{stderr}") from None
        assert "Traceback" not in stderr, stderr
        unexpected = stderr
        for code in warnings:
            assert f"warning[{code}]" in stderr, f"no warning {code}:\n{stderr}"
            unexpected = unexpected.replace(f"warning[{code}]", "")
        assert "warning[" not in unexpected, f"the case's spec has warnings:\n{stderr}"
        try:
            report = json.loads(stdout)
        except json.JSONDecodeError:
            code = process.returncode
            raise AssertionError(f"no report (exit code {code}):\n{stdout}\n{stderr}") from None
        return Applied(process.returncode, report, stderr)

    def apply(self, *options: str, warnings: Iterable[str] = ()) -> Applied:
        """`mlc apply pipeline.mlspec --target conformance --format json` (and `options`),
        which may print the warnings whose codes `warnings` names."""
        return self.finish(self.start_apply(*options), warnings)

    def runs(self) -> list[dict[str, Any]]:
        """`mlc runs --format json`: the runs of the store, newest first."""
        runs: list[dict[str, Any]] = self.mlc_json("runs")
        return runs

    def run_record(self, run_id: str) -> dict[str, Any]:
        """`mlc runs show RUN --format json`: the run's lineage record with its steps."""
        record: dict[str, Any] = self.mlc_json("runs", "show", run_id)
        return record

    def lineage(self, artifact: str) -> dict[str, Any]:
        """`mlc lineage ARTIFACT --format json`: the provenance tree of an output."""
        tree: dict[str, Any] = self.mlc_json("lineage", artifact)
        return tree

    # -- notes the steps left

    def notes(self, name: str) -> list[str]:
        """The lines of `state/name` (none when the step never wrote it)."""
        path = self.state / name
        return path.read_text().splitlines() if path.exists() else []

    def executions(self, function: str) -> int:
        """How many times a step function that calls `count(function)` was executed."""
        return len(self.notes(f"{function}.runs"))

    def release(self, name: str) -> None:
        """Creates `state/name`, which a step waiting in `wait_for_file(name)` waits for."""
        (self.state / name).touch()


class Projects:
    """Makes the projects of one test: one on the backend under test, one on the reference
    backend (each in a directory and a store of its own)."""

    def __init__(self, root: Path, backend: Backend, reference: Backend) -> None:
        self.root = root
        self.backend = backend
        self.reference_backend = reference

    def under_test(self, pipeline: str, module: str = "") -> Project:
        """The project on the backend under test."""
        return Project(self.root / "under-test", self.backend, pipeline, module)

    def reference(self, pipeline: str, module: str = "") -> Project:
        """The same project on the reference backend."""
        return Project(self.root / "reference", self.reference_backend, pipeline, module)


T = TypeVar("T")


def in_background(work: Callable[[], T]) -> Future[T]:
    """Starts `work` on a thread of its own: a case's reference run needs nothing from the run
    under test, so it runs meanwhile (both mostly wait: on steps, workers, the disk)."""
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="reference")
    try:
        return pool.submit(work)
    finally:
        pool.shutdown(wait=False)


# ---------------------------------------------------------------------- processes


def wait_for(condition: Callable[[], object], what: str, seconds: float = 60.0) -> None:
    """Polls `condition` until it holds; fails naming `what` after `seconds` (far more than
    it ever needs: the machine may be loaded)."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {seconds:.0f}s waiting for {what}")
        time.sleep(0.05)


def alive(pid: int) -> bool:
    """True while a process runs (a zombie has ended: it only waits to be reaped)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


# ---------------------------------------------------------------------- comparing runs

RUN_DEPENDENT = "(the command reads `run`)"
"""What replaces the cache key of a step whose command reads `{{ run.… }}`: its key includes
the run id, so it differs between any two runs by design."""

_VOLATILE_RUN = ("run_id", "started_at", "ended_at", "host", "user", "backend")
_VOLATILE_EXECUTION = ("run_id", "started_at", "ended_at", "host", "log_ref")
_VOLATILE_PRODUCER = ("run_id", "host", "started_at", "ended_at", "backend")


@dataclass(frozen=True)
class Outcome:
    """What a run must be on every backend, read back through the command line: its status, each
    step's report (status, attempts, cache key, output digests, reasons), its lineage record and
    its step executions, and the provenance of its exported outputs. What two runs of one spec
    may differ in is left out: run ids, times, hosts and users, log references, the backend."""

    status: str
    steps: dict[str, dict[str, Any]]
    run: dict[str, Any]
    executions: dict[str, dict[str, Any]]
    provenance: dict[str, Any]
    stderr: str = field(default="", compare=False)
    """What `mlc apply` printed on stderr: not compared, shown when the runs differ (a warning
    such as "lineage … could not be recorded" explains a difference)."""


def outcome(project: Project, applied: Applied, run_dependent: Iterable[str] = ()) -> Outcome:
    """The outcome of an applied run. `run_dependent` names the steps whose commands read
    `run`: their cache keys are left out."""
    unkeyed = {f"step:{name}" for name in run_dependent}
    steps = {
        step["name"]: {
            "status": step["status"],
            "attempts": step["attempts"],
            "cache_key": RUN_DEPENDENT if step["name"] in run_dependent else step["cache_key"],
            "outputs": step["outputs"],
            "reasons": step.get("reasons", []),
        }
        for step in applied.report["steps"]
    }
    record = project.run_record(applied.run_id)
    executions = {
        execution["step_id"]: _without(execution, _VOLATILE_EXECUTION, unkeyed)
        for execution in record.pop("steps")
    }
    provenance = {
        name: [_tree(project.lineage(d), unkeyed) for d in _listed(digests)]
        for name, digests in sorted(applied.report["outputs"].items())
    }
    run = _without(record, _VOLATILE_RUN, unkeyed)
    return Outcome(applied.status, steps, run, executions, provenance, applied.stderr)


def _listed(digests: str | list[str]) -> list[str]:
    return digests if isinstance(digests, list) else [digests]


def _without(record: dict[str, Any], volatile: Iterable[str], unkeyed: set[str]) -> dict[str, Any]:
    kept = {k: v for k, v in record.items() if k not in volatile}
    if kept.get("step_id") in unkeyed:
        kept["cache_key"] = RUN_DEPENDENT
    return kept


def _tree(node: dict[str, Any], unkeyed: set[str]) -> dict[str, Any]:
    kept = dict(node)
    # An output a resumed run reused from the cache names the execution that made it: that
    # execution is compared (a run that was not interrupted made it itself).
    made_by = kept.pop("cached_from", None)
    if made_by is not None:
        kept["produced_by"] = made_by
    if "produced_by" in kept:
        kept["produced_by"] = _without(kept["produced_by"], _VOLATILE_PRODUCER, unkeyed)
    kept["inputs"] = {name: _tree(child, unkeyed) for name, child in node["inputs"].items()}
    return kept


Shape = tuple[str, dict[str, "Shape"]]


def provenance_shape(tree: Mapping[str, Any]) -> Shape:
    """A provenance tree (`mlc lineage --format json`) as (producing step id, {input name:
    shape}): which step made an output from which inputs, all the way back."""
    producer = tree.get("produced_by") or {}
    inputs = {name: provenance_shape(child) for name, child in tree["inputs"].items()}
    return producer.get("step_id", tree["source"]), inputs


def assert_same_outcome(actual: Outcome, reference: Outcome) -> None:
    """The run on the backend under test ended like the reference run; otherwise the failure
    lists every difference by its place (`steps.join.cache_key: … != …`)."""
    mine, theirs = _flatten(_compared(actual)), _flatten(_compared(reference))
    differences = [
        f"  {place}: {mine.get(place, '(missing)')!r} != {theirs.get(place, '(missing)')!r}"
        for place in sorted(mine.keys() | theirs.keys())
        if mine.get(place, _MISSING) != theirs.get(place, _MISSING)
    ]
    assert not differences, (
        "the run differs from the reference run:\n"
        + "\n".join(differences)
        + f"\n-- stderr of the run:\n{actual.stderr}\n-- stderr of the reference run:\n"
        + reference.stderr
    )


def _compared(result: Outcome) -> dict[str, Any]:
    """What of an outcome two runs must agree on (all but stderr)."""
    return {name: value for name, value in asdict(result).items() if name != "stderr"}


_MISSING = object()


def _flatten(value: Any, place: str = "") -> dict[str, Any]:
    """Nested dicts and lists as {"a.b[0].c": leaf}."""
    if isinstance(value, dict) and value:
        items = [(f"{place}.{key}" if place else str(key), v) for key, v in value.items()]
    elif isinstance(value, list) and value:
        items = [(f"{place}[{i}]", v) for i, v in enumerate(value)]
    else:
        return {place: value}
    flat: dict[str, Any] = {}
    for inner, child in items:
        flat.update(_flatten(child, inner))
    return flat
