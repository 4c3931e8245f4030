"""One attempt carried out where it executes: directory, inputs, task, outputs, cache entry.

The coordinator decides an `Attempt` (what to run: the invocation, its input digests, its
environment, its cache entry); the executor renders it where it runs (`render_attempt`: the
attempt directory, the log file, the `Task` and its `AttemptPlan`); the process that executes
it (a local worker, a Ray task, a Kubernetes pod) does the file-system work around it. That keeps the
per-step work of many steps in as many processes, in parallel, instead of on the scheduler's
threads, and it is the only arrangement a remote executor can have: it must fetch its own
inputs and put its own outputs into the shared store.

`carry_out` runs an `AttemptPlan` with its `Task` against a store and reports twice: once
when the task ended (so the caller can stop its timeout clock), once when the outputs are in
the store and the cache entry is written, or why not. Both reports are plain JSON.
"""

from __future__ import annotations

import contextlib
import os
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlc.runtime.cache_entries import CachedOutput, CacheEntry, remember
from mlc.runtime.context import RunInfo, StepPaths
from mlc.runtime.errors import StepFailure
from mlc.runtime.process import DEFAULT_KILL_GRACE_SECONDS
from mlc.runtime.step_logs import EarlierLog, attempt_header
from mlc.runtime.task import Task, TaskResult, execute_task, open_log
from mlc.runtime.workdir import (
    OutputSlot,
    attempt_paths,
    collect_outputs,
    empty_attempt,
    prepare_attempt,
)
from mlc.store.base import Store
from mlc.store.digest import Digest
from mlc.store.errors import StoreError

if TYPE_CHECKING:  # imported when needed: a worker never loads the IR's models
    from mlc.ir.model import Step
    from mlc.runtime.invocation import Invocation


@dataclass(frozen=True, slots=True)
class CacheEntryPlan:
    """The cache entry an attempt writes when it succeeds."""

    key: str
    parts: Mapping[str, Any]
    run_id: str
    invocation: str
    expire_seconds: float | None = None

    def to_json(self) -> dict[str, Any]:
        """A plain dict."""
        return {
            "key": self.key,
            "parts": dict(self.parts),
            "run_id": self.run_id,
            "invocation": self.invocation,
            "expire_seconds": self.expire_seconds,
        }


@dataclass(frozen=True, slots=True)
class Attempt:
    """One attempt of one invocation, decided by the coordinator, to be carried out.

    Nothing in it depends on where it runs: the executor picks the attempt directory and the
    log file, adds its own environment (GPU visibility, `TMPDIR`) and renders the task there
    (`render_attempt`).
    """

    run_id: str
    invocation: Invocation
    number: int
    """1 for the first attempt, 2 for the first retry, …"""
    inputs: Mapping[str, Digest | list[Digest]]
    params: Mapping[str, Any]
    run: RunInfo
    env: Mapping[str, str]
    """What the step adds to the environment: its `env`, its secrets, `MLC_RUN_ID`,
    `MLC_STEP` (the executor puts it over the environment steps run in where it runs)."""
    base_dir: str
    """The spec's directory: the working directory of the step, and where `call` modules
    are imported from."""
    cache: CacheEntryPlan | None
    """The cache entry a successful attempt writes (None when the step is not cached)."""
    earlier_log: EarlierLog = field(default_factory=EarlierLog)
    """The log of the earlier attempts, to which this attempt's log is added."""
    kill_grace_seconds: float = 10.0
    """How long a stopped attempt gets between SIGTERM and SIGKILL."""
    reservation: object = None
    """What the executor's capacity granted it (the executor's own object; not JSON)."""

    @property
    def step(self) -> Step:
        """The step the attempt belongs to."""
        return self.invocation.step

    @property
    def name(self) -> str:
        """`train` or `train[2]`."""
        return self.invocation.name

    @property
    def key(self) -> str:
        """`RUN/INVOCATION/NUMBER`: unique in a store, stable across re-attaches."""
        return f"{self.run_id}/{self.name}/{self.number}"

    @property
    def timeout_seconds(self) -> float | None:
        """The step's timeout, which the executor enforces (None: none)."""
        return self.step.timeout_seconds or None

    def to_json(self) -> dict[str, Any]:
        """Plain JSON: what a remote executor ships to where the attempt runs (the step as
        the IR writes it, so the far side needs nothing but `mlc.runtime` to render it)."""
        return {
            "run_id": self.run_id,
            "step": self.step.model_dump(mode="json"),
            "index": self.invocation.index,
            "item": self.invocation.item,
            "number": self.number,
            "inputs": dict(self.inputs),
            "params": dict(self.params),
            "run": {"id": self.run.id, "status": self.run.status},
            "env": dict(self.env),
            "base_dir": self.base_dir,
            "cache": None if self.cache is None else self.cache.to_json(),
            "earlier_log": self.earlier_log.to_json(),
            "kill_grace_seconds": self.kill_grace_seconds,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Attempt:
        """The attempt a `to_json` dict describes (without a reservation)."""
        from mlc.ir.model import Step
        from mlc.runtime.invocation import Invocation

        step = Step.model_validate(data["step"])
        cache = data.get("cache")
        return cls(
            run_id=data["run_id"],
            invocation=Invocation(step, data.get("index"), data.get("item")),
            number=data["number"],
            inputs=data["inputs"],
            params=data["params"],
            run=RunInfo(data["run"]["id"], data["run"]["status"]),
            env=data["env"],
            base_dir=data["base_dir"],
            cache=None if cache is None else CacheEntryPlan(**cache),
            earlier_log=EarlierLog.from_json(data.get("earlier_log") or {}),
            kill_grace_seconds=data.get("kill_grace_seconds", 10.0),
        )


@dataclass(frozen=True, slots=True)
class AttemptPlan:
    """Where an attempt runs and what it reads and writes (the task itself is separate)."""

    root: str
    """The attempt directory (see `mlc.runtime.workdir`)."""
    inputs: Mapping[str, Digest | list[Digest]]
    outputs: tuple[OutputSlot, ...]
    log_path: str
    """Where the attempt's log is appended (a worker's log file, which the caller reads from
    where it ended after the previous attempt)."""
    header: str
    """The line written to the log before the task starts."""
    cache: CacheEntryPlan | None = None
    empty_log: bool = False
    """Empty the log file first (the caller has read everything in it)."""
    timed: bool = True
    """Whether the caller keeps a timeout on the task, and so needs to hear the moment it
    ended; if not, a worker may send both reports at once, after collecting."""

    def to_json(self) -> dict[str, Any]:
        """A plain dict."""
        return {
            "root": self.root,
            "inputs": dict(self.inputs),
            "outputs": [slot.to_json() for slot in self.outputs],
            "log_path": self.log_path,
            "header": self.header,
            "cache": None if self.cache is None else self.cache.to_json(),
            "empty_log": self.empty_log,
            "timed": self.timed,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AttemptPlan:
        """The plan a `to_json` dict describes."""
        cache = data.get("cache")
        return cls(
            root=data["root"],
            inputs=data["inputs"],
            outputs=tuple(OutputSlot(**slot) for slot in data["outputs"]),
            log_path=data["log_path"],
            header=data["header"],
            cache=None if cache is None else CacheEntryPlan(**cache),
            empty_log=data.get("empty_log", False),
            timed=data.get("timed", True),
        )


def render_env(attempt: Attempt, paths: StepPaths) -> dict[str, str]:
    """The step's `env` values that are templates, rendered with what its command sees
    (params, input and output paths, the `foreach` variable, `run`, `step`). Secrets are
    values, never templates: an entry a secret overrides is left alone."""
    step = attempt.step
    templates = {
        name: value for name, value in step.env.items() if "{" in value and name not in step.secrets
    }
    if not templates:
        return {}
    from mlc.runtime.context import template_context
    from mlc.runtime.templates import render_template

    context = template_context(attempt.invocation, attempt.params, paths, attempt.run)
    return {name: render_template(value, context) for name, value in templates.items()}


def render_attempt(
    attempt: Attempt,
    *,
    root: str,
    log_path: str,
    environ: Mapping[str, str],
    extra_env: Mapping[str, str] | None = None,
    empty_log: bool = False,
) -> tuple[Task, AttemptPlan]:
    """An attempt made concrete where it runs: its task (templates rendered with the paths
    under `root`, the environment `environ` + the step's + `TMPDIR` + `extra_env`) and the
    plan of its directory and log. Raises `StepFailure` when a template cannot be rendered."""
    from mlc.runtime.rendering import render_task

    outputs = tuple(OutputSlot.of(port) for port in attempt.step.outputs)
    paths = attempt_paths(Path(root), attempt.inputs, outputs)
    env = dict(environ)
    env.update(attempt.env)
    env.update(render_env(attempt, paths))
    env["TMPDIR"] = f"{root}/tmp"
    if extra_env:
        env.update(extra_env)
    task = render_task(
        attempt.invocation,
        params=attempt.params,
        paths=paths,
        run=attempt.run,
        env=env,
        cwd=attempt.base_dir,
        log_path=log_path,
        base_dir=attempt.base_dir,
    )
    plan = AttemptPlan(
        root=root,
        inputs=attempt.inputs,
        outputs=outputs,
        log_path=log_path,
        header=attempt_header(attempt.name, attempt.number),
        cache=attempt.cache,
        empty_log=empty_log,
        timed=attempt.timeout_seconds is not None,
    )
    return task, plan


@dataclass(frozen=True, slots=True)
class Collected:
    """The second report of an attempt: its outputs in the store, or why there are none."""

    outputs: dict[str, CachedOutput] | None = None
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        """A plain dict."""
        outputs = None
        if self.outputs is not None:
            outputs = {n: {"digest": o.digest, "kind": o.kind} for n, o in self.outputs.items()}
        return {"outputs": outputs, "error": self.error}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Collected:
        """The report a `to_json` dict describes."""
        outputs = data.get("outputs")
        return cls(
            outputs=None
            if outputs is None
            else {n: CachedOutput(Digest(o["digest"]), o["kind"]) for n, o in outputs.items()},
            error=data.get("error"),
        )


def carry_out(
    plan: AttemptPlan,
    task: Task,
    store: Store,
    *,
    ended: Callable[[TaskResult | None], None],
    collected: Callable[[Collected], None],
    emptied: set[str] | None = None,
    timeout_seconds: float | None = None,
    grace_seconds: float = DEFAULT_KILL_GRACE_SECONDS,
) -> None:
    """Prepares the attempt directory, executes the task, collects the outputs into the store,
    writes the cache entry, reports, and empties the directory. Never raises for a failing
    step.

    `ended` is called exactly once: with the task's result as soon as it has finished, or with
    None when it never started (the preparation failed). `collected` is called once after it,
    when the outputs are in the store and the cache entry is written (so a step reported done
    is cached, even if the caller is killed right after); the caller need not wait for the
    clean-up, which follows.

    `emptied` is the attempt directories this process left empty after earlier attempts (a
    worker keeps one set for its life): such a directory is not emptied again first.

    With `timeout_seconds`, a command runs in a process group of its own, which is stopped at
    the timeout (SIGTERM, `grace_seconds`, SIGKILL); without it the command joins this
    process's group, which the caller stops (a local worker leads its own group). A `call`
    runs in this process either way: its caller keeps its timeout.
    """
    reported = False

    def end(result: TaskResult | None) -> None:
        nonlocal reported
        if not reported:
            reported = True
            ended(result)

    known_empty = emptied is not None and plan.root in emptied
    if emptied is not None:
        emptied.discard(plan.root)
    try:
        outcome = _attempt(
            plan,
            task,
            store,
            end,
            known_empty=known_empty,
            timeout_seconds=timeout_seconds,
            grace_seconds=grace_seconds,
        )
    finally:
        end(None)
    collected(outcome)
    with contextlib.suppress(OSError):
        empty_attempt(Path(plan.root))
        if emptied is not None:
            emptied.add(plan.root)


def _attempt(
    plan: AttemptPlan,
    task: Task,
    store: Store,
    ended: Callable[[TaskResult | None], None],
    *,
    known_empty: bool,
    timeout_seconds: float | None,
    grace_seconds: float,
) -> Collected:
    try:
        log = _start_log(plan)
        try:
            try:
                _, paths = prepare_attempt(
                    Path(plan.root), store, plan.inputs, plan.outputs, known_empty=known_empty
                )
            except OSError as exc:
                raise StepFailure(
                    f"cannot prepare the attempt directory {plan.root}: {exc.strerror}"
                ) from None
            result = execute_task(
                task,
                new_session=timeout_seconds is not None,
                timeout_seconds=timeout_seconds,
                grace_seconds=grace_seconds,
                log_fd=log,
            )
        finally:
            os.close(log)
        ended(result)
        if not result.ok:
            return Collected()
        outputs = collect_outputs(store, plan.outputs, paths, Path(plan.root))
        if plan.cache is not None:
            _remember(store, plan.cache, outputs=outputs)
        return Collected(outputs=outputs)
    except (StepFailure, StoreError) as exc:
        return Collected(error=str(exc))
    except Exception as exc:  # an internal error must still end the attempt cleanly
        with contextlib.suppress(OSError), open(plan.log_path, "a", encoding="utf-8") as handle:
            traceback.print_exc(file=handle)
        return Collected(error=f"internal error: {type(exc).__name__}: {exc}")


def _start_log(plan: AttemptPlan) -> int:
    """The attempt's log, open for appending, with its header written."""
    try:
        log = open_log(plan.log_path)
    except OSError as exc:
        raise StepFailure(f"cannot write the step's log {plan.log_path}: {exc.strerror}") from None
    try:
        if plan.empty_log:
            os.ftruncate(log, 0)
        os.write(log, plan.header.encode("utf-8"))
    except OSError as exc:
        os.close(log)
        raise StepFailure(f"cannot write the step's log {plan.log_path}: {exc.strerror}") from None
    return log


def _remember(store: Store, plan: CacheEntryPlan, *, outputs: dict[str, CachedOutput]) -> None:
    entry = CacheEntry(
        key=plan.key,
        parts=dict(plan.parts),
        outputs=outputs,
        created_at=time.time(),
        run_id=plan.run_id,
        invocation=plan.invocation,
    )
    remember(store, entry, expire_seconds=plan.expire_seconds)
