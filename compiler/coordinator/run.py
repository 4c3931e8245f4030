"""The run coordinator: what a run means, written once for every backend.

One thread (the caller's) owns every decision and all lineage writes; an executor
(`mlc.coordinator.executor`) carries out the attempts it is handed, wherever they run, and
reports each end as an event. The loop:

1. a step whose upstream steps have all ended is *decided*: skipped (an input is missing, or
   its `when` condition is false), or, per invocation, cached or waiting to run;
2. waiting invocations start, in order, as soon as the executor's capacity reserves their
   resources (and their retry backoff and the `foreach` parallelism allow); an invocation
   whose attempt an earlier, killed coordinator of the pipeline left running is adopted, not
   started again;
3. each ended attempt is recorded, retried with exponential backoff, or failed. After a
   failure no new step starts unless `keep_going`; running steps finish, `finally` steps run.

Ctrl-C (KeyboardInterrupt) stops every running attempt and records the run as cancelled.
The coordinator never waits on a clock for an attempt: it sleeps on the executor's events,
waking only for a retry's backoff, to write lineage, and to let the progress display tick.
"""

from __future__ import annotations

import heapq
import queue
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

from mlc.coordinator.executor import AttemptEnded, AttemptNote, Executor, KnownAttempt
from mlc.coordinator.interrupts import deferred_interrupts
from mlc.coordinator.lookups import CacheLookups
from mlc.coordinator.preflight import Preflight
from mlc.coordinator.units import StepState, Unit, backoff_seconds
from mlc.coordinator.waiting import WaitingUnits
from mlc.ir.graph import condition_refs, dependencies, steps_in_order
from mlc.ir.model import IRDocument, Step, StepId
from mlc.runtime.attempt import Attempt, CacheEntryPlan
from mlc.runtime.cache_key import cache_key_parts
from mlc.runtime.context import RunInfo
from mlc.runtime.decisions import Decision, start_decision
from mlc.runtime.errors import ConditionFailure, StepFailure
from mlc.runtime.gates import gate_open
from mlc.runtime.invocation import invocations_of
from mlc.runtime.rendering import step_environment
from mlc.runtime.report import (
    FINAL_STATUSES,
    RunObserver,
    RunReport,
    StepReport,
    UnitUpdate,
    gib,
)
from mlc.runtime.step_logs import EarlierLog, describe_result
from mlc.runtime.wiring import OutputDigests, wire_inputs
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

TICK_SECONDS = 0.2
"""How often the progress display ticks while nothing happens."""
LINEAGE_SECONDS = 0.1
"""How long lineage may trail the steps (see `_write_lineage`)."""
CANCEL_REPORT_SECONDS = 10.0
"""How long a cancelled run waits for its stopped attempts to report."""
DECIDE_SLICE_SECONDS = 0.05
"""How long the coordinator decides ready steps before it starts what it has decided."""


@dataclass(frozen=True, slots=True)
class RunSettings:
    """How a run behaves, whatever the backend."""

    rerun: frozenset[str] = frozenset()
    keep_going: bool = False
    kill_grace_seconds: float = 10.0
    target: str = ""


@dataclass(slots=True)
class _Stop:
    """Why no new step starts: a failure without `keep_going` (`reason`), or cancellation."""

    reason: str = ""
    cancelled: bool = False


class Coordinator:
    """One run of one document on one executor (see the module docstring)."""

    def __init__(
        self,
        document: IRDocument,
        *,
        run_id: str,
        store: Store,
        lineage: Lineage,
        executor: Executor,
        preflight: Preflight,
        settings: RunSettings,
        observer: RunObserver,
    ) -> None:
        self.document = document
        self.run_id = run_id
        self.store = store
        self.lineage = lineage
        self.executor = executor
        self.capacity = executor.capacity
        self.preflight = preflight
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
        self.by_name = {unit.name: unit for unit in self.units}
        # Book-keeping that keeps each pass proportional to what changed, not to the size
        # of the pipeline: steps whose upstream steps have all ended (by position), how many
        # upstream steps each step still waits for, waiting units (by position) and how many
        # of them share each resource request, running units.
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
        self.events: queue.SimpleQueue[AttemptEnded | AttemptNote | None] = queue.SimpleQueue()
        """What the executor reports, and None when a cache lookup was answered (a wake-up)."""
        self.lookups: CacheLookups[Unit] = CacheLookups(store, lambda: self.events.put(None))
        self.started = time.time()
        self.host = current_host()
        self.lineage_queue: list[StepExecution] = []
        self.lineage_due = 0.0
        self.retrying: set[Unit] = set()
        self._flush: Callable[[], None] | None = getattr(executor, "flush", None)
        """An executor that batches what it starts (one Kubernetes Indexed Job for the items
        of a `foreach` step) submits the batch when told that the coordinator's pass ended."""
        self.adoptable: dict[tuple[str, str | None], KnownAttempt] = {}
        """Attempts that an earlier, killed coordinator of the pipeline left running, by
        invocation and cache key (see `resume`)."""

    # ------------------------------------------------------------------ the run

    def execute(self) -> RunReport:
        """Runs the pipeline to the end (or until cancelled) and reports."""
        self.executor.begin(self.run_id, self.document, self.events.put)
        try:
            self._begin()
        except BaseException:  # the run could not be recorded (a full disk): nothing started
            self.lookups.close()
            for problem in self.executor.end():
                self.observer.warning(problem)
            raise
        ended = False
        try:
            self._loop()
            ended = True
        except KeyboardInterrupt:
            self._cancel()
            ended = True
        finally:
            if not ended:  # an internal error: stop what runs, and never record success
                self._stop_after_error()
            status = self._run_status() if ended else "failed"
            self._end(status)
        return self._report(status)

    def _stop_after_error(self) -> None:
        """Stops the running attempts when the coordinator itself fails (its caller reports
        the error), without waiting for their reports."""
        attempts = [unit.attempt for unit in self.running if unit.attempt is not None]
        try:
            self.executor.cancel(attempts, 0.0)
        except Exception as exc:  # the original error is the one to report
            self.observer.warning(f"the running steps could not be stopped: {exc}")

    def resume(self, earlier_runs: Sequence[str]) -> None:
        """Before `execute`: adopt the attempts that earlier coordinators of these runs (killed,
        or cut off) left running on the executor, instead of starting them again. Ended
        attempts need nothing: their outputs and cache entries are in the store."""
        if not earlier_runs:
            return
        for known in self.executor.known_attempts(earlier_runs):
            if known.running:
                self.adoptable[(known.invocation, known.cache_key)] = known

    def _begin(self) -> None:
        version = code_version(self.document.base_dir)
        self.lineage.start_run(
            Run(
                run_id=self.run_id,
                pipeline=self.pipeline,
                spec_path=self.document.spec,
                target=self.settings.target,
                backend=self.executor.backend,
                host=self.host,
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

    def _loop(self) -> None:
        while len(self.settled) < len(self.states):
            progressed = self._decide_ready_steps()
            progressed |= self._conclude_lookups()
            progressed |= self._start_waiting_units()
            if progressed and self._flush is not None:
                self._flush()  # the executor may submit what it was handed as one batch
            if len(self.settled) == len(self.states):
                break
            busy = bool(self.running) or bool(self.lookups)
            if not busy and not progressed and not self._backing_off():
                self._give_up_blocked()
                continue
            if time.monotonic() >= self.lineage_due:
                self._write_lineage()
            try:
                ended: AttemptEnded | AttemptNote | None = (
                    self.events.get_nowait()  # steps are still to be decided: no waiting
                    if self.ready
                    else self.events.get(timeout=self._wait_seconds())
                )
                self._handle_waiting(ended)
            except queue.Empty:
                pass
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
        one may settle it at once, e.g. when cached, and make its successors ready), for at
        most `DECIDE_SLICE_SECONDS` at a time: what was decided then starts while the rest is
        decided (a store's cache lookups, tens of milliseconds each on S3, overlap the starts)."""
        progressed = False
        deadline = time.monotonic() + DECIDE_SLICE_SECONDS
        while self.ready:
            if progressed and time.monotonic() > deadline:
                break
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
            started = start_decision(
                unit.invocation,
                parts,
                lineage=self.lineage,
                pipeline=self.pipeline,
                rerun=self.settings.rerun,
                current_run=self.run_id,
            )
            unit.cache_key = started.cache_key if isinstance(started, Decision) else started.key
            unit.parts = parts.to_json()
            if isinstance(started, Decision):
                self._apply_decision(unit, started)
            else:
                self.lookups.ask(unit, started, group=state)

    def _conclude_lookups(self) -> bool:
        """Decides the units whose cache lookups were answered (in the order they were asked)."""
        answered = self.lookups.answered()
        for unit, pending, answer in answered:
            if not unit.final:  # not skipped meanwhile (the run was cancelled)
                self._apply_decision(unit, pending.conclude(answer))
        return bool(answered)

    def _apply_decision(self, unit: Unit, decision: Decision) -> None:
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
                reservation = self.capacity.try_reserve(step.resources)
                if reservation is None:
                    refused.add(key)
                    self._show_wait(unit)
                    continue
                self._launch(unit, reservation)
                started = True
        return started

    def _show_wait(self, unit: Unit) -> None:
        """Tells the observer what a unit that did not fit waits for, when the capacity can
        say (`why_waiting`) and it changed since it was last said."""
        why = getattr(self.capacity, "why_waiting", None)
        text = (why(unit.step.resources) or "") if why is not None else ""
        if text and text != unit.waiting_for:
            unit.waiting_for = text
            self.observer.unit_changed(
                UnitUpdate(unit.name, unit.status, "", unit.attempts, waiting_for=text)
            )

    def _at_parallelism(self, step: Step) -> bool:
        """Whether as many units of a `foreach` step run as its `parallelism` allows."""
        parallelism = step.foreach.parallelism if step.foreach is not None else None
        if not parallelism:
            return False
        return self.states[step.id].running >= parallelism

    def _launch(self, unit: Unit, reservation: object) -> None:
        with deferred_interrupts():  # handed over and booked whole, or not at all
            self._hand_over(unit, reservation)

    def _hand_over(self, unit: Unit, reservation: object) -> None:
        unit.attempts += 1
        unit.waiting_for = ""
        self._set_status(unit, "running")
        if unit.started_at is None:
            unit.started_at = time.time()
        total = unit.step.retry.retries + 1
        self._notify(unit, f"attempt {unit.attempts}/{total}" if total > 1 else "")
        attempt = unit.attempt = self._attempt(unit, reservation)
        known = self.adoptable.pop((unit.name, unit.cache_key), None)
        if known is not None:
            self.observer.warning(
                f"`{unit.name}` is still running from run {known.run_id}: waiting for it"
            )
            self.executor.adopt(known, attempt)
        else:
            self.executor.start(attempt)

    def _attempt(self, unit: Unit, reservation: object) -> Attempt:
        """The unit's next attempt, as the executor receives it."""
        step = unit.step
        run = RunInfo(self.run_id, self._status_so_far() if step.is_finally else "running")
        return Attempt(
            run_id=self.run_id,
            invocation=unit.invocation,
            number=unit.attempts,
            inputs=unit.inputs,
            params=self.params,
            run=run,
            env=step_environment({}, unit.invocation, self.preflight.secrets[step.id], run),
            base_dir=self.document.base_dir,
            cache=self._cache_entry_plan(unit),
            earlier_log=unit.earlier_log,
            kill_grace_seconds=self.settings.kill_grace_seconds,
            reservation=reservation,
        )

    def _cache_entry_plan(self, unit: Unit) -> CacheEntryPlan | None:
        """The cache entry a successful attempt writes (None when the step is not cached)."""
        if unit.cache_key is None or unit.parts is None or not unit.step.cache.enabled:
            return None
        return CacheEntryPlan(
            key=unit.cache_key,
            parts=unit.parts,
            run_id=self.run_id,
            invocation=unit.name,
            expire_seconds=unit.step.cache.expire_seconds,
        )

    # ------------------------------------------------------------------ finishing

    def _handle_waiting(self, ended: AttemptEnded | AttemptNote | None) -> None:
        """Books `ended` and every report already waiting behind it, each whole (one held
        Ctrl-C for all of them: see `mlc.coordinator.interrupts`); ends with `queue.Empty`."""
        with deferred_interrupts():
            while True:
                if ended is not None:
                    self._book(ended)
                ended = self.events.get_nowait()

    def _handle(self, ended: AttemptEnded | AttemptNote | None) -> None:
        if ended is None:
            return  # a cache lookup was answered: the next pass concludes it
        with deferred_interrupts():  # an attempt's end is booked whole
            self._book(ended)

    def _book(self, ended: AttemptEnded | AttemptNote) -> None:
        unit = self.by_name.get(ended.attempt.name)
        if unit is None or unit.attempt is not ended.attempt:
            return  # not an attempt of this coordinator's (an executor must not do this)
        if isinstance(ended, AttemptNote):
            self._notify(unit, ended.detail)
            return
        unit.attempt = None
        unit.log_ref, unit.log_tail = ended.log_ref, ended.log_tail
        unit.host = ended.host
        if ended.log_problem is not None:
            self.observer.warning(
                f"the log of `{unit.name}` could not be stored: {ended.log_problem}"
            )
        if ended.attempt.reservation is not None:
            self.capacity.release(ended.attempt.reservation)
        if ended.result is not None:
            unit.exit_code = ended.result.exit_code
            self._check_memory(unit, ended.result.peak_memory_bytes)
        if unit.cancel_requested or self.stop.cancelled:
            self._finish(unit, "cancelled", error="cancelled")
            return
        if ended.outputs is not None:
            unit.outputs = ended.outputs
            unit.error = None
            unit.earlier_log = EarlierLog()
            self._finish(unit, "ran")
            return
        unit.error = describe_result(ended.result, ended.error)
        retry = unit.step.retry
        if ended.retryable and unit.attempts <= retry.retries:
            # The next attempt's log continues this one's.
            unit.earlier_log = ended.log_whole
            wait = backoff_seconds(unit.attempts, retry.backoff_seconds, retry.max_backoff_seconds)
            unit.not_before = time.monotonic() + wait
            self.retrying.add(unit)
            self._set_status(unit, "waiting")
            self.observer.unit_changed(
                UnitUpdate(
                    unit.name,
                    unit.status,
                    f"attempt {unit.attempts} failed ({unit.error}); retrying in {wait:g}s",
                    unit.attempts,
                    retry_in_s=wait,
                )
            )
            return
        unit.earlier_log = EarlierLog()
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
                host=unit.host or self.host,
                image=unit.step.image or "",
                log_ref=unit.log_ref or "",
                error=unit.error if status in ("failed", "cancelled") else None,
                params=cast(dict[str, Any], (unit.parts or {}).get("params", {})),
                code=cast(dict[str, str], (unit.parts or {}).get("code", {})),
                inputs=inputs,
                outputs={n: Output(o.digest, o.kind) for n, o in unit.outputs.items()},
            )
        )

    def _write_lineage(self) -> None:
        """Writes the queued step executions in one transaction. The coordinator does so at most
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
        attempts = []
        for unit in self.running:
            unit.cancel_requested = True
            if unit.attempt is not None:
                attempts.append(unit.attempt)
        try:
            self.executor.cancel(attempts, self.settings.kill_grace_seconds)
        except KeyboardInterrupt:  # asked twice: no grace
            self.executor.cancel(attempts, 0.0)
        # Every stopped attempt still reports its end (its log, its exit code).
        deadline = time.monotonic() + CANCEL_REPORT_SECONDS
        while self.running and time.monotonic() < deadline:
            try:
                self._handle(self.events.get(timeout=max(0.01, deadline - time.monotonic())))
            except queue.Empty:
                pass
            except KeyboardInterrupt:
                self.executor.cancel(attempts, 0.0)
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
        self.lookups.close()
        for problem in self.executor.end():
            self.observer.warning(problem)
        self._write_lineage()
        try:
            self.lineage.finish_run(self.run_id, cast(RunStatus, status), time.time())
        except StoreError as exc:
            self.observer.warning(f"the end of the run could not be recorded: {exc}")

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
