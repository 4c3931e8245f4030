"""The local run: a scheduler over invocations, resources and a pool of worker processes.

One thread (the caller's) owns every decision and all lineage writes; each running attempt
has a small thread that prepares its directory, hands the task to a worker, waits for it
(killing the worker's process group at the timeout), and puts the outputs into the store. The
scheduler loop:

1. a step whose upstream steps have all ended is *decided*: skipped (an input is missing, or
   its `when` condition is false), or, per invocation, cached or waiting to run;
2. waiting invocations start, in order, as soon as their resources fit (and their retry
   backoff and the `foreach` parallelism allow);
3. each finished attempt is recorded, retried with exponential backoff, or failed. After a
   failure no new step starts unless `keep_going`; running steps finish, `finally` steps run.

Ctrl-C (KeyboardInterrupt) kills every running process group and records the run as
cancelled.
"""

from __future__ import annotations

import contextlib
import heapq
import os
import queue
import signal
import time
import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from mlc.backends.local.attempt_threads import AttemptThreads
from mlc.backends.local.log_batches import LogBatches
from mlc.backends.local.pool import CUDA_VARIABLE, Worker, WorkerDied, WorkerPool
from mlc.backends.local.resources import Grant, ResourceLedger, gib
from mlc.backends.local.step_logs import EarlierLog, LogPart, store_log
from mlc.backends.local.units import StepState, Unit, backoff_seconds, describe_result
from mlc.backends.local.waiting import WaitingUnits
from mlc.backends.local.workspace import RunWorkspace, attempt_header
from mlc.ir.graph import condition_refs, dependencies, steps_in_order
from mlc.ir.model import IRDocument, Step, StepId
from mlc.runtime.attempt import AttemptPlan, CacheEntryPlan, Collected
from mlc.runtime.cache_entries import CachedOutput
from mlc.runtime.cache_key import cache_key_parts
from mlc.runtime.context import RunInfo
from mlc.runtime.datasets import ResolvedDatasets
from mlc.runtime.decisions import decide
from mlc.runtime.errors import ConditionFailure, StepFailure
from mlc.runtime.gates import gate_open
from mlc.runtime.invocation import invocations_of
from mlc.runtime.rendering import render_task, step_environment
from mlc.runtime.report import FINAL_STATUSES, RunObserver, RunReport, StepReport, UnitUpdate
from mlc.runtime.task import TaskResult
from mlc.runtime.wiring import OutputDigests, wire_inputs
from mlc.runtime.workdir import OutputSlot, attempt_paths, remove_tree
from mlc.store.base import Store
from mlc.store.digest import Digest
from mlc.store.errors import StoreError
from mlc.store.lineage import (
    Dataset,
    Lineage,
    Output,
    Run,
    RunStatus,
    StepExecution,
    StepStatus,
    code_version,
    current_host,
    current_user,
)
from mlc.store.uri import store_address

TICK_SECONDS = 0.2
LINEAGE_SECONDS = 0.1


@dataclass(frozen=True, slots=True)
class RunSettings:
    """How a local run behaves."""

    rerun: frozenset[str] = frozenset()
    keep_going: bool = False
    kill_grace_seconds: float = 10.0
    target: str = ""


@dataclass(frozen=True, slots=True)
class Preflight:
    """What was checked and computed before the run: per-step code digests and secrets,
    resolved datasets."""

    code: Mapping[str, dict[str, str]]
    secrets: Mapping[str, dict[str, str]]
    datasets: ResolvedDatasets


@dataclass(slots=True)
class _Outcome:
    unit: Unit
    attempt: int
    result: TaskResult | None = None
    outputs: dict[str, CachedOutput] | None = None
    error: str | None = None
    log_ref: str | None = None
    log_tail: list[str] | None = None
    log_problem: str | None = None
    """Why the log could not be stored, if it could not."""
    notes: list[str] = field(default_factory=list)
    """What mlc adds to the attempt's log (an internal error's traceback)."""
    log_start: int = 0
    """Where the attempt's part of the worker's log file begins."""
    killed: bool = False
    """The worker was killed (timeout, cancel) or died before it reported."""
    root: Path | None = None
    """The attempt directory (the worker's)."""


@dataclass(slots=True)
class _Stop:
    reason: str = ""
    cancelled: bool = False
    failed_units: list[str] = field(default_factory=list)


class LocalRun:
    """One run of one document on this machine (see the module docstring)."""

    def __init__(
        self,
        document: IRDocument,
        *,
        run_id: str,
        store: Store,
        lineage: Lineage,
        ledger: ResourceLedger,
        preflight: Preflight,
        environ: Mapping[str, str],
        settings: RunSettings,
        observer: RunObserver,
    ) -> None:
        self.document = document
        self.run_id = run_id
        self.store = store
        self.lineage = lineage
        self.ledger = ledger
        self.preflight = preflight
        self.environ = dict(environ)
        self.settings = settings
        self.observer = observer
        self.pipeline = document.pipeline.name
        self.params = {p.name: p.value for p in document.pipeline.params}
        self.datasets = {n: r.digest for n, r in preflight.datasets.by_name.items()}
        needs = dependencies(document)
        self.order = steps_in_order(document)
        self.states: dict[str, StepState] = {
            s.id: StepState(s, [Unit(i) for i in invocations_of(s)]) for s in self.order
        }
        self.predecessors = {s.id: needs[s.id] for s in self.order}
        self.units = [unit for s in self.order for unit in self.states[s.id].units]
        # Book-keeping that keeps each scheduler pass proportional to what changed, not to
        # the size of the pipeline: steps whose upstream steps have all ended (by position),
        # how many upstream steps each step still waits for, waiting units (by position) and
        # how many of them share each resource request, running units.
        self.position = {id(unit): index for index, unit in enumerate(self.units)}
        self.step_position = {s.id: index for index, s in enumerate(self.order)}
        self.successors: dict[StepId, list[StepId]] = {s.id: [] for s in self.order}
        for step_id, predecessors in self.predecessors.items():
            for predecessor in predecessors:
                self.successors[predecessor].append(step_id)
        self.unsettled_predecessors = {s: len(p) for s, p in self.predecessors.items()}
        self.ready: list[int] = [
            self.step_position[s] for s, n in self.unsettled_predecessors.items() if n == 0
        ]
        heapq.heapify(self.ready)
        self.settled: set[StepId] = set()
        self.waiting = WaitingUnits()
        self.running: set[Unit] = set()
        self.produced: dict[str, OutputDigests] = {}
        self.stop = _Stop()
        self.events: queue.Queue[_Outcome] = queue.Queue()
        self.attempt_threads = AttemptThreads()
        self.logs = LogBatches(store)
        self.started = time.time()
        self.workspace = RunWorkspace(self._local_dir(), run_id)
        base_env = {k: v for k, v in self.environ.items() if k != CUDA_VARIABLE}
        self.pool = WorkerPool(base_env, str(self.workspace.workers_log))
        self.store_address = store_address(store)
        self.host = current_host()
        self.lineage_queue: list[StepExecution] = []
        self.lineage_due = 0.0
        self.retrying: set[Unit] = set()
        self.gpus_present = bool(ledger.machine.gpus)

    def _local_dir(self) -> str:
        return str(getattr(self.store, "local_dir", ".mlc"))

    # ------------------------------------------------------------------ the run

    def execute(self) -> RunReport:
        """Runs the pipeline to the end (or until cancelled) and reports."""
        self._start_workers()
        self._begin()
        try:
            self._loop()
        except KeyboardInterrupt:
            self._cancel()
        finally:
            status = self._run_status()
            self._end(status)
        return self._report(status)

    def _begin(self) -> None:
        version = code_version(self.document.base_dir)
        self.lineage.start_run(
            Run(
                run_id=self.run_id,
                pipeline=self.pipeline,
                spec_path=self.document.spec,
                target=self.settings.target,
                backend="local",
                host=current_host(),
                user=current_user(),
                git_commit=version.commit,
                git_dirty=version.dirty,
                params=self.params,
                started_at=self.started,
            )
        )
        for resolved in self.preflight.datasets.by_name.values():
            self.lineage.record_dataset(
                Dataset(resolved.digest, resolved.dataset.name, resolved.dataset.uri, resolved.kind)
            )
        self.observer.run_started(self.run_id, self.pipeline, [u.name for u in self.units])
        for warning in self.preflight.datasets.warnings:
            self.observer.warning(warning)

    def _start_workers(self) -> None:
        """Starts as many workers as steps of the smallest CPU request can run at once (at
        most one per core), so that they import while the run is being set up. On a machine
        with GPUs they start on demand: each is started for a `CUDA_VISIBLE_DEVICES`."""
        if self.gpus_present:
            return
        smallest = min((u.step.resources.cpu_millis for u in self.units), default=0)
        if smallest <= 0:
            return
        fits = self.ledger.machine.cpu_millis // smallest
        self.pool.start(min(len(self.units), fits, os.cpu_count() or 1), None)

    def _loop(self) -> None:
        while len(self.settled) < len(self.states):
            progressed = self._decide_ready_steps()
            progressed |= self._start_waiting_units()
            if len(self.settled) == len(self.states):
                break
            running = bool(self.running)
            if not running and not progressed and not self._backing_off():
                self._give_up_blocked()
                continue
            if time.monotonic() >= self.lineage_due:
                self._write_lineage()
            try:
                outcome: _Outcome | None = self.events.get(timeout=self._wait_seconds())
            except queue.Empty:
                outcome = None
            while outcome is not None:
                self._handle(outcome)
                try:
                    outcome = self.events.get_nowait()
                except queue.Empty:
                    outcome = None
            self.observer.tick()

    def _backing_off(self) -> bool:
        return bool(self.waiting)

    def _wait_seconds(self) -> float:
        now = time.monotonic()
        # Only retried units wait for a backoff (the others may start as soon as they fit).
        self.retrying = {u for u in self.retrying if u.status == "waiting" and u.not_before > now}
        soonest = min((u.not_before - now for u in self.retrying), default=TICK_SECONDS)
        if self.lineage_queue:
            soonest = min(soonest, self.lineage_due - now)
        return max(0.01, min(TICK_SECONDS, soonest))

    def _give_up_blocked(self) -> None:
        """Nothing runs and nothing can start: end what is left rather than wait forever."""
        for unit in self.units:
            if not unit.final:
                self._finish(unit, "skipped", reason="its upstream steps did not complete")
        for state in self.states.values():
            state.decided = True
            self._note_if_settled(state)

    # ------------------------------------------------------------------ deciding

    def _decide_ready_steps(self) -> bool:
        """Decides the steps whose upstream steps have all ended, in pipeline order (deciding
        one may settle it at once, e.g. when cached, and make its successors ready)."""
        progressed = False
        while self.ready:
            state = self.states[self.order[heapq.heappop(self.ready)].id]
            if state.decided:
                continue
            state.decided = True
            progressed = True
            self._decide(state)
            self._note_if_settled(state)
        return progressed

    def _note_if_settled(self, state: StepState) -> None:
        """Once a step has settled, counts it off for the steps that wait for it."""
        step_id = state.step.id
        if step_id in self.settled or not state.settled:
            return
        self.settled.add(step_id)
        for successor in self.successors[step_id]:
            self.unsettled_predecessors[successor] -= 1
            if self.unsettled_predecessors[successor] == 0:
                heapq.heappush(self.ready, self.step_position[successor])

    def _set_status(self, unit: Unit, status: str) -> None:
        """Changes a unit's status, keeping the waiting and running sets and the step's
        counts in step."""
        previous = unit.status
        if previous == status:
            return
        state = self.states[unit.step.id]
        state.ended += (status in FINAL_STATUSES) - (previous in FINAL_STATUSES)
        state.running += (status == "running") - (previous == "running")
        if previous == "waiting":
            self.waiting.remove(self.position[id(unit)], _request_key(unit.step))
        elif previous == "running":
            self.running.discard(unit)
        unit.status = status
        if status == "waiting":
            step_position = self.step_position[unit.step.id]
            self.waiting.add(unit, self.position[id(unit)], step_position, _request_key(unit.step))
        elif status == "running":
            self.running.add(unit)

    def _decide(self, state: StepState) -> None:
        step = state.step
        if self.stop.cancelled:
            self._finish_all(state, "skipped", "the run was cancelled")
            return
        if self.stop.reason and not step.is_finally:
            self._finish_all(state, "skipped", self.stop.reason)
            return
        problem = self._upstream_problem(step)
        if problem is not None:
            self._finish_all(state, "skipped", problem)
            return
        if step.when is not None:
            try:
                is_open, text = gate_open(step, self.store, self.produced)
            except ConditionFailure as exc:
                self._finish_all(state, "failed", None, error=str(exc))
                return
            if not is_open:
                self._finish_all(state, "skipped", f"its condition `{text}` is false")
                return
        try:
            wiring = wire_inputs(step, self.datasets, self.produced)
        except StepFailure as exc:
            self._finish_all(state, "failed", None, error=str(exc))
            return
        run = RunInfo(self.run_id, self._status_so_far() if step.is_finally else "running")
        for unit in state.units:
            unit.inputs = dict(wiring.digests)
            parts = cache_key_parts(
                unit.invocation,
                code=self.preflight.code[step.id],
                input_digests=wiring.digests,
                run=run,
            )
            decision = decide(
                unit.invocation,
                parts,
                store=self.store,
                lineage=self.lineage,
                pipeline=self.pipeline,
                rerun=self.settings.rerun,
                current_run=self.run_id,
            )
            unit.cache_key = decision.cache_key
            unit.parts = parts.to_json()
            if decision.entry is not None:
                unit.outputs = dict(decision.entry.outputs)
                self._finish(unit, "cached")
            else:
                unit.reasons = decision.reasons
                self._set_status(unit, "waiting")
                self._notify(unit, "; ".join(decision.reasons))

    def _upstream_problem(self, step: Step) -> str | None:
        def outcome(node: str) -> str:
            return self.states[node].outcome if node in self.states else "succeeded"

        for port in step.inputs:
            node = port.source.node
            if node in self.states and outcome(node) != "succeeded":
                producer = node.removeprefix("step:")
                return f"input `{port.name}` comes from `{producer}`, which {_past(outcome(node))}"
        for before in step.after:
            if outcome(before) in ("failed", "cancelled"):
                return f"it runs after `{before.removeprefix('step:')}`, which {_past(outcome(before))}"
        for ref in condition_refs(step.when):
            if outcome(ref.step) != "succeeded":
                name = ref.step.removeprefix("step:")
                return f"its condition reads `{name}`, which {_past(outcome(ref.step))}"
        return None

    def _status_so_far(self) -> str:
        failed = any(
            u.status in ("failed", "cancelled") for u in self.units if not u.step.is_finally
        )
        return "failed" if failed else "succeeded"

    # ------------------------------------------------------------------ starting

    def _start_waiting_units(self) -> bool:
        started = False
        now = time.monotonic()
        # A request that did not fit will not fit again in this pass (nothing is released
        # during it); once every waiting request has failed, the rest cannot start either
        # (unless the run is stopping: then every unit is visited, to be skipped).
        # A step whose request was refused, or whose `parallelism` is reached, cannot start any
        # of its units: the rest of them are not looked at (see `WaitingUnits`).
        refused: set[tuple[object, ...]] = set()
        stopping = self.stop.cancelled or bool(self.stop.reason)
        for step_position in self.waiting.steps():
            if refused and not stopping and len(refused) == len(self.waiting.requests):
                break
            step = self.order[step_position]
            key = _request_key(step)
            if not stopping and (key in refused or self._at_parallelism(step)):
                continue
            for unit in self.waiting.units_of(step_position):
                if unit.not_before > now:
                    continue
                if self.stop.cancelled or (
                    self.stop.reason and not step.is_finally and unit.attempts == 0
                ):
                    reason = self.stop.reason or "the run was cancelled"
                    self._finish(unit, "skipped", reason=reason)
                    started = True
                    continue
                if key in refused or self._at_parallelism(step):
                    if stopping:
                        continue  # the others may still have to be skipped
                    break
                grant = self.ledger.try_acquire(step.resources)
                if grant is None:
                    refused.add(key)
                    continue
                self._launch(unit, grant)
                started = True
        return started

    def _at_parallelism(self, step: Step) -> bool:
        """Whether as many units of a `foreach` step run as its `parallelism` allows."""
        parallelism = step.foreach.parallelism if step.foreach is not None else None
        if not parallelism:
            return False
        return self.states[step.id].running >= parallelism

    def _launch(self, unit: Unit, grant: Grant) -> None:
        unit.attempts += 1
        unit.grant = grant
        self._set_status(unit, "running")
        if unit.started_at is None:
            unit.started_at = time.time()
        total = unit.step.retry.retries + 1
        self._notify(unit, f"attempt {unit.attempts}/{total}" if total > 1 else "")
        self._hand_over(unit, unit.attempts, grant)

    # ------------------------------------------------------------------ one attempt

    def _hand_over(self, unit: Unit, attempt: int, grant: Grant) -> None:
        """Renders one attempt and hands it to a worker, which prepares it, runs it and
        collects its outputs (`mlc.runtime.attempt`); a thread then waits for the worker's
        reports and keeps the timeout (`_see_through`)."""
        outcome = _Outcome(unit, attempt)
        step = unit.step
        worker = None
        try:
            cuda = grant.cuda_visible_devices if grant.gpus or self.gpus_present else None
            worker = self.pool.acquire(cuda)
            # Each worker reuses one attempt directory, emptied after every attempt: making
            # and deleting directories per step makes the filesystem slow to allocate inodes.
            root = outcome.root = self.workspace.scratch_dir(worker.pid)
            outputs = tuple(OutputSlot.of(port) for port in step.outputs)
            paths = attempt_paths(root, unit.inputs, outputs)
            extra = {"TMPDIR": f"{root}/tmp"}
            if cuda is not None:
                extra[CUDA_VARIABLE] = cuda
            run = RunInfo(self.run_id, self._status_so_far() if step.is_finally else "running")
            env = step_environment(
                self.environ, unit.invocation, self.preflight.secrets[step.id], run, extra
            )
            # The log goes to the worker's own file (see `WorkerLogs`).
            log_path = self.workspace.worker_logs.path(worker.pid)
            outcome.log_start, empty_log = self.workspace.worker_logs.begin(worker.pid)
            task = render_task(
                unit.invocation,
                params=self.params,
                paths=paths,
                run=run,
                env=env,
                cwd=self.document.base_dir,
                log_path=log_path,
                base_dir=self.document.base_dir,
            )
            plan = AttemptPlan(
                root=str(root),
                inputs=unit.inputs,
                outputs=outputs,
                log_path=log_path,
                header=attempt_header(unit.name, attempt),
                cache=self._cache_entry_plan(unit),
                empty_log=empty_log,
                timed=bool(step.timeout_seconds),
            )
            worker.send(
                {"store": self.store_address, "task": task.to_json(), "attempt": plan.to_json()}
            )
        except (StepFailure, StoreError) as exc:
            outcome.error = str(exc)
        except Exception as exc:  # an internal error must still end the attempt cleanly
            outcome.error = f"internal error: {type(exc).__name__}: {exc}"
            outcome.notes.append(traceback.format_exc())
        if outcome.error is not None or worker is None:
            if worker is not None:
                self.pool.release(worker)
            self.attempt_threads.submit(self._conclude, outcome, None)
        else:
            self.attempt_threads.submit(self._see_through, worker, outcome)

    def _see_through(self, worker: Worker, outcome: _Outcome) -> None:
        """(On an attempt thread.) Waits for the worker's reports, takes the attempt's log
        from the worker's log file before the worker may start another, then concludes."""
        part = None
        try:
            self._await(worker, outcome.unit, outcome)
        except Exception as exc:  # an internal error must still end the attempt cleanly
            outcome.error = f"internal error: {type(exc).__name__}: {exc}"
            outcome.notes.append(traceback.format_exc())
        finally:
            try:
                part = self.workspace.worker_logs.take(worker.pid, outcome.log_start)
            except OSError as exc:
                outcome.notes.append(f"--- mlc: the attempt's log could not be read: {exc} ---\n")
            self.pool.release(worker)
            self._conclude(outcome, part)

    def _conclude(self, outcome: _Outcome, part: LogPart | None) -> None:
        """(On an attempt thread.) Adds what mlc has to say to the attempt's log, stores the
        log of every attempt so far and reports the outcome to the scheduler."""
        unit, attempt = outcome.unit, outcome.attempt
        notes = list(outcome.notes)
        failed = outcome.outputs is None
        if failed:
            notes.append(
                f"--- mlc: attempt {attempt} failed: "
                f"{describe_result(outcome.result, outcome.error)} ---\n"
            )
        # Stored here, off the scheduler's thread: the log is complete once the attempt
        # has ended (a retry stores the logs of both attempts again).
        try:
            stored = store_log(
                self.store, self.logs, unit.earlier_log, part, "".join(notes).encode("utf-8")
            )
        except (OSError, StoreError) as exc:
            outcome.log_problem = str(exc)
        except Exception as exc:  # the outcome must reach the scheduler, or the run waits
            outcome.log_problem = f"internal error: {type(exc).__name__}: {exc}"
        else:
            outcome.log_ref, outcome.log_tail = stored.digest, stored.tail
            # Kept only while another attempt may follow: the next one's log is added to it.
            retried = failed and attempt <= unit.step.retry.retries
            unit.earlier_log = stored.whole if retried else EarlierLog()
        self.events.put(outcome)
        if outcome.killed and outcome.root is not None:
            # The worker did not get to clean up; its directory dies with it.
            with contextlib.suppress(OSError):
                remove_tree(outcome.root)

    def _await(self, worker: Worker, unit: Unit, outcome: _Outcome) -> None:
        """Waits for the worker's two reports, killing it at the step's timeout."""
        timeout = unit.step.timeout_seconds
        deadline = time.monotonic() + timeout if timeout else None
        try:
            ended = worker.receive(deadline)
            if ended is None:
                self.pool.kill(worker, self.settings.kill_grace_seconds)
                outcome.killed = True
                code = worker.process.returncode or -signal.SIGKILL
                outcome.result = TaskResult(code, f"timed out after {timeout:g}s", timed_out=True)
                return
            if ended["ended"] is not None:
                outcome.result = TaskResult(**ended["ended"])
            report = worker.receive(None)
        except WorkerDied as died:
            outcome.killed = True
            outcome.result = died.result
            return
        collected = Collected.from_json(report["collected"] if report else {})
        outcome.error = collected.error
        if collected.outputs is not None and not unit.cancel_requested:
            outcome.outputs = collected.outputs

    def _cache_entry_plan(self, unit: Unit) -> CacheEntryPlan | None:
        """The cache entry a successful attempt writes (None when the step is not cached)."""
        if unit.cache_key is None or unit.parts is None or not unit.step.cache.enabled:
            return None
        return CacheEntryPlan(
            key=unit.cache_key,
            parts=dict(unit.parts),
            run_id=self.run_id,
            invocation=unit.name,
            expire_seconds=unit.step.cache.expire_seconds,
        )

    # ------------------------------------------------------------------ finishing

    def _handle(self, outcome: _Outcome) -> None:
        unit = outcome.unit
        unit.log_ref, unit.log_tail = outcome.log_ref, outcome.log_tail or []
        if outcome.log_problem is not None:
            self.observer.warning(
                f"the log of `{unit.name}` could not be stored: {outcome.log_problem}"
            )
        if unit.grant is not None:
            self.ledger.release(unit.grant)
            unit.grant = None
        if outcome.result is not None:
            unit.exit_code = outcome.result.exit_code
            self._check_memory(unit, outcome.result.peak_memory_bytes)
        if unit.cancel_requested or self.stop.cancelled:
            self._finish(unit, "cancelled", error="cancelled")
            return
        if outcome.outputs is not None:
            unit.outputs = outcome.outputs
            unit.error = None
            self._finish(unit, "ran")
            return
        unit.error = describe_result(outcome.result, outcome.error)
        retry = unit.step.retry
        if unit.attempts <= retry.retries:
            wait = backoff_seconds(unit.attempts, retry.backoff_seconds, retry.max_backoff_seconds)
            unit.not_before = time.monotonic() + wait
            self.retrying.add(unit)
            self._set_status(unit, "waiting")
            self._notify(
                unit, f"attempt {unit.attempts} failed ({unit.error}); retrying in {wait:g}s"
            )
            return
        self._finish(unit, "failed", error=unit.error)
        if not self.settings.keep_going and not self.stop.reason:
            self.stop.reason = f"the run stopped after `{unit.name}` failed"

    def _check_memory(self, unit: Unit, peak: int | None) -> None:
        """Keeps the attempt's peak memory and warns when it was above the step's request:
        memory is accounted, not enforced, so an understated request lets too many steps run
        at once."""
        unit.peak_memory_bytes = peak
        asked = unit.step.resources.memory_bytes
        if peak is not None and asked and peak > asked:
            self.observer.warning(
                f"`{unit.name}` used up to {gib(peak)} of memory but asks for {gib(asked)}; "
                "raise its `memory` so that the scheduler does not run too many steps at once"
            )

    def _finish_all(
        self, state: StepState, status: str, reason: str | None, error: str | None = None
    ) -> None:
        for unit in state.units:
            self._finish(unit, status, reason=reason, error=error)

    def _finish(
        self, unit: Unit, status: str, *, reason: str | None = None, error: str | None = None
    ) -> None:
        self._set_status(unit, status)
        if reason:
            unit.reasons = [reason]
        if error:
            unit.error = error
        if unit.started_at is not None:
            unit.ended_at = time.time()
        self._record(unit)
        detail = error or reason or ""
        self._notify(unit, detail)
        state = self.states[unit.step.id]
        if state.settled and state.outcome == "succeeded":
            self.produced[unit.step.id] = _step_outputs(state)
        self._note_if_settled(state)

    def _record(self, unit: Unit) -> None:
        """Queues a unit's lineage; `_write_lineage` writes the queue in one transaction."""
        status = unit.status if unit.status != "running" else "cancelled"
        inputs: dict[str, Digest] = {}
        for name, value in unit.inputs.items():
            if isinstance(value, list):
                inputs.update({f"{name}[{i}]": d for i, d in enumerate(value)})
            else:
                inputs[name] = value
        self.lineage_queue.append(
            StepExecution(
                run_id=self.run_id,
                step_id=unit.invocation.lineage_id,
                status=cast(StepStatus, status),
                cache_key=unit.cache_key or "",
                attempts=unit.attempts,
                exit_code=unit.exit_code,
                started_at=unit.started_at,
                ended_at=unit.ended_at,
                host=self.host,
                image=unit.step.image or "",
                log_ref=unit.log_ref or "",
                inputs=inputs,
                outputs={n: Output(o.digest, o.kind) for n, o in unit.outputs.items()},
            )
        )

    def _write_lineage(self) -> None:
        """Writes the queued step executions in one transaction. The scheduler does so at most
        every `LINEAGE_SECONDS` (and at the end): lineage trails the steps by that much, and a
        crash loses at most that much of it, never a cache entry or an output."""
        self.lineage_due = time.monotonic() + LINEAGE_SECONDS
        if not self.lineage_queue:
            return
        batch, self.lineage_queue = self.lineage_queue, []
        try:
            self.lineage.record_steps(batch)
        except StoreError as exc:
            names = ", ".join(f"`{step.step_id}`" for step in batch)
            self.observer.warning(f"lineage of {names} could not be recorded: {exc}")

    def _notify(self, unit: Unit, detail: str) -> None:
        self.observer.unit_changed(
            UnitUpdate(unit.name, unit.status, detail, unit.attempts, unit.elapsed())
        )

    # ------------------------------------------------------------------ cancelling and ending

    def _cancel(self) -> None:
        self.stop.cancelled = True
        self.observer.warning("cancelling: stopping the running steps")
        for unit in self.units:
            if unit.status == "running":
                unit.cancel_requested = True
        try:
            self.pool.kill_all(self.settings.kill_grace_seconds)
        except KeyboardInterrupt:
            self.pool.kill_all(0.0)
        deadline = time.monotonic() + 10
        while self.attempt_threads.busy() and time.monotonic() < deadline:
            try:
                self._handle(self.events.get(timeout=0.1))
            except queue.Empty:
                pass
            except KeyboardInterrupt:
                self.pool.kill_all(0.0)
        while True:
            try:
                self._handle(self.events.get_nowait())
            except queue.Empty:
                break
        for unit in self.units:
            if not unit.final:
                status = "cancelled" if unit.attempts else "skipped"
                self._finish(unit, status, reason="the run was cancelled")

    def _run_status(self) -> str:
        if self.stop.cancelled:
            return "cancelled"
        if any(u.status in ("failed", "cancelled") for u in self.units):
            return "failed"
        return "succeeded"

    def _end(self, status: str) -> None:
        self.attempt_threads.wait_idle(10.0)  # an attempt's clean-up may still be under way
        for problem in self.logs.close():
            self.observer.warning(f"logs could not be stored: {problem}")
        self._write_lineage()
        try:
            self.lineage.finish_run(self.run_id, cast(RunStatus, status), time.time())
        except StoreError as exc:
            self.observer.warning(f"the end of the run could not be recorded: {exc}")
        self.pool.shutdown()
        self.workspace.close()

    def _report(self, status: str) -> RunReport:
        steps = [
            StepReport(
                name=u.name,
                status=u.status,
                cache_key=u.cache_key,
                outputs={n: o.digest for n, o in u.outputs.items()},
                attempts=u.attempts,
                duration_s=(u.ended_at - u.started_at) if u.started_at and u.ended_at else 0.0,
                reasons=list(u.reasons) if u.status in ("ran", "skipped") else [],
                error=u.error if u.status in ("failed", "cancelled") else None,
                log_ref=u.log_ref,
                log_tail=u.log_tail if u.status == "failed" else [],
                peak_memory_bytes=u.peak_memory_bytes,
                exit_code=u.exit_code,
            )
            for u in self.units
        ]
        outputs: dict[str, Any] = {}
        for exported in self.document.pipeline.outputs:
            produced = self.produced.get(exported.step, {})
            if exported.output in produced:
                outputs[exported.name] = produced[exported.output]
        return RunReport(
            run_id=self.run_id,
            pipeline=self.pipeline,
            status=status,
            steps=steps,
            duration_s=time.time() - self.started,
            outputs=outputs,
            warnings=list(self.preflight.datasets.warnings),
        )


def _request_key(step: Step) -> tuple[object, ...]:
    """What a step asks of the ledger, as a hashable key (equal keys fit or not alike)."""
    resources = step.resources
    gpu = resources.gpu
    gpu_key = None if gpu is None else (gpu.count, gpu.accelerator, gpu.mig)
    return (resources.cpu_millis, resources.memory_bytes, gpu_key)


def _past(outcome: str) -> str:
    return {"failed": "failed", "cancelled": "was cancelled"}.get(outcome, "was skipped")


def _step_outputs(state: StepState) -> OutputDigests:
    if state.step.foreach is None:
        return {name: output.digest for name, output in state.units[0].outputs.items()}
    names = [port.name for port in state.step.outputs]
    return {name: [unit.outputs[name].digest for unit in state.units] for name in names}
