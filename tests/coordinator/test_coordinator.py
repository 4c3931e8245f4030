"""The coordinator decides; an executor only carries attempts out.

These tests drive the coordinator with an in-process fake executor (`fake_executor`) to pin
down what the coordinator promises any executor. The backend conformance suite
(`tests/conformance/`) runs the same semantics on real backends.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from mlc.coordinator import RunSettings, apply_run
from mlc.coordinator.executor import KnownAttempt
from mlc.coordinator.preflight import plan
from mlc.ir.model import IRDocument, Step
from mlc.runtime.attempt import Attempt
from mlc.runtime.errors import PreflightError
from mlc.runtime.report import RunReport, UnitUpdate
from mlc.store.base import Store
from mlc.store.lineage import Run, open_lineage
from mlc.store.uri import open_store

from tests.coordinator.fake_executor import FakeExecutor, Slots
from tests.runtime.builders import document, inp, metric, op, out, sh, step


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = open_store(tmp_path / "store")
    yield opened
    opened.close()


def run(
    executor: FakeExecutor,
    doc: IRDocument,
    *,
    keep_going: bool = False,
    observer: object = None,
    resume: Sequence[str] | None = None,
) -> RunReport:
    return apply_run(
        doc,
        executor,
        store=executor.store,
        environ={},
        settings=RunSettings(keep_going=keep_going, kill_grace_seconds=0.5, target="test"),
        observer=observer,  # type: ignore[arg-type]
        resume=resume,
    )


def statuses(report: RunReport) -> dict[str, str]:
    return {s.name: s.status for s in report.steps}


def chain(names: Sequence[str], **options: object) -> list[Step]:
    """Steps each reading the previous one's output `out`."""
    steps = []
    for index, name in enumerate(names):
        inputs = [inp("data", f"{names[index - 1]}.out")] if index else []
        steps.append(step(name, sh("true"), inputs=inputs, outputs=[out("out")], **options))  # type: ignore[arg-type]
    return steps


def test_steps_start_after_their_upstream_steps_and_every_end_is_recorded(
    store: Store, tmp_path: Path
) -> None:
    executor = FakeExecutor(store)
    report = run(executor, document(tmp_path, chain(["a", "b", "c"])))
    assert report.status == "succeeded"
    assert [a.name for a in executor.started] == ["a", "b", "c"]
    assert statuses(report) == {"a": "ran", "b": "ran", "c": "ran"}
    # Each attempt receives the digests its upstream attempt reported.
    b = executor.started[1]
    assert b.inputs == {"data": report.steps[0].outputs["out"]}
    assert executor.begun and executor.ended
    lineage = open_lineage(store)
    try:
        recorded = lineage.find_run(report.run_id)
        steps = lineage.steps_of(report.run_id)
    finally:
        lineage.close()
    assert (recorded.backend, recorded.status) == ("fake", "succeeded")
    assert sorted((s.step_id, s.status) for s in steps) == [
        ("step:a", "ran"),
        ("step:b", "ran"),
        ("step:c", "ran"),
    ]


def test_a_failed_attempt_is_retried_and_the_next_attempt_continues_its_log(
    store: Store, tmp_path: Path
) -> None:
    executor = FakeExecutor(store, script={"flaky": ["fail", "ok"], "bad": ["fail", "fail"]})
    steps = [step("flaky", sh("true"), retries=2), step("bad", sh("true"), retries=1)]
    report = run(executor, document(tmp_path, steps), keep_going=True)
    flaky, bad = report.steps
    assert (flaky.status, flaky.attempts) == ("ran", 2)
    assert (bad.status, bad.attempts, bad.error) == ("failed", 2, "exited with code 3")
    first, second = (a for a in executor.started if a.name == "flaky")
    assert (first.number, second.number) == (1, 2)
    assert second.earlier_log.digest == f"log of {first.key}"


def test_a_failed_step_stops_the_run_and_skips_what_has_not_started(
    store: Store, tmp_path: Path
) -> None:
    executor = FakeExecutor(store, script={"bad": ["fail"]}, capacity=Slots(slots=1))
    steps = [step("bad", sh("true")), step("other", sh("true"))]
    report = run(executor, document(tmp_path, steps))
    assert report.status == "failed"
    assert statuses(report) == {"bad": "failed", "other": "skipped"}
    assert report.steps[0].error == "exited with code 3"
    assert report.steps[1].reasons == ["the run stopped after `bad` failed"]


def test_keep_going_runs_what_does_not_depend_on_a_failure(store: Store, tmp_path: Path) -> None:
    executor = FakeExecutor(store, script={"bad": ["fail"]}, capacity=Slots(slots=1))
    steps = [step("bad", sh("true")), step("other", sh("true"))]
    report = run(executor, document(tmp_path, steps), keep_going=True)
    assert statuses(report) == {"bad": "failed", "other": "ran"}


def test_no_more_attempts_run_at_once_than_the_capacity_reserves(
    store: Store, tmp_path: Path
) -> None:
    executor = FakeExecutor(store, capacity=Slots(slots=2))
    steps = [step(f"s{i}", sh("true")) for i in range(6)]
    report = run(executor, document(tmp_path, steps))
    assert report.count("ran") == 6
    assert executor.capacity.most_in_use == 2
    assert executor.capacity.in_use == 0  # every reservation was given back


def test_foreach_parallelism_bounds_the_items_running_at_once(store: Store, tmp_path: Path) -> None:
    executor = FakeExecutor(store)
    sweep = step("sweep", sh("true"), foreach=("x", range(5)), parallelism=1)
    report = run(executor, document(tmp_path, [sweep]))
    assert report.count("ran") == 5
    assert executor.capacity.most_in_use == 1
    assert [a.invocation.item for a in executor.started] == [0, 1, 2, 3, 4]


def test_a_false_gate_skips_the_step_and_its_dependents_and_finally_still_runs(
    store: Store, tmp_path: Path
) -> None:
    executor = FakeExecutor(store, metrics={"evaluate": {"accuracy": 0.5}})
    steps = [
        step("evaluate", sh("true"), outputs=[out("metrics", "metrics", {"accuracy": "float"})]),
        step(
            "register",
            sh("true"),
            outputs=[out("receipt")],
            when=op(">=", metric("evaluate", "metrics", "accuracy"), 0.9),
        ),
        step("announce", sh("true"), inputs=[inp("receipt", "register.receipt")]),
        step("cleanup", sh("true"), is_finally=True, after=["evaluate"]),
    ]
    report = run(executor, document(tmp_path, steps))
    assert statuses(report) == {
        "evaluate": "ran",
        "register": "skipped",
        "announce": "skipped",
        "cleanup": "ran",
    }
    assert report.steps[1].reasons[0].startswith("its condition")
    assert [a.name for a in executor.started] == ["evaluate", "cleanup"]
    cleanup = executor.started[1]
    assert cleanup.run.status == "succeeded"  # what a finally step sees of the run


def test_what_the_executor_cannot_run_is_refused_before_anything_runs(
    store: Store, tmp_path: Path
) -> None:
    executor = FakeExecutor(store, problems=["step `a` sets `image`, which the fake ignores"])
    with pytest.raises(PreflightError, match="sets `image`"):
        run(executor, document(tmp_path, [step("a", sh("true"))]))
    assert not executor.begun and not executor.started


def test_a_request_that_can_never_fit_is_refused_before_anything_runs(
    store: Store, tmp_path: Path
) -> None:
    executor = FakeExecutor(store)
    steps = [step("small", sh("true")), step("huge", sh("true"), cpu_millis=64000)]
    with pytest.raises(PreflightError, match="step `huge` can never run here: it asks for 64000"):
        run(executor, document(tmp_path, steps))
    assert not executor.begun


class InterruptWhenRunning:
    """An observer that presses Ctrl-C once `step` is running (on the coordinator's thread,
    at its next tick)."""

    def __init__(self, step: str) -> None:
        self.step = step
        self.running = False
        self.pressed = False

    def run_started(self, run_id: str, pipeline: str, units: Sequence[str]) -> None:
        pass

    def unit_changed(self, update: UnitUpdate) -> None:
        if update.name == self.step and update.status == "running":
            self.running = True

    def warning(self, text: str) -> None:
        pass

    def tick(self) -> None:
        if self.running and not self.pressed:
            self.pressed = True
            raise KeyboardInterrupt


def test_cancelling_stops_running_attempts_and_skips_the_rest(store: Store, tmp_path: Path) -> None:
    executor = FakeExecutor(store, script={"a": ["hold"]})
    report = run(
        executor, document(tmp_path, chain(["a", "b"])), observer=InterruptWhenRunning("a")
    )
    assert report.status == "cancelled"
    assert statuses(report) == {"a": "cancelled", "b": "skipped"}
    assert [a.name for a in executor.cancelled] == ["a"]


class Updates:
    """An observer that keeps every progress update."""

    def __init__(self) -> None:
        self.updates: list[UnitUpdate] = []

    def run_started(self, run_id: str, pipeline: str, units: Sequence[str]) -> None:
        pass

    def unit_changed(self, update: UnitUpdate) -> None:
        self.updates.append(update)

    def warning(self, message: str) -> None:
        pass

    def tick(self) -> None:
        pass


def test_what_an_executor_notes_about_a_waiting_attempt_is_shown_as_its_progress(
    store: Store, tmp_path: Path
) -> None:
    why = "0/3 nodes are available: 3 Insufficient nvidia.com/gpu"
    executor = FakeExecutor(store, script={"a": [f"wait:{why}"]})
    observer = Updates()
    report = run(executor, document(tmp_path, chain(["a"])), observer=observer)
    assert statuses(report) == {"a": "ran"}
    assert ("a", "running", why) in [(u.name, u.status, u.detail) for u in observer.updates]


def test_an_attempt_left_running_by_a_killed_coordinator_is_adopted_not_started_again(
    store: Store, tmp_path: Path
) -> None:
    doc = document(tmp_path, chain(["prepare", "train"]))
    executor = FakeExecutor(store)
    keys = {entry.name: entry.cache_key for entry in plan(doc, store, executor).entries}
    # An earlier coordinator of this pipeline was killed while `prepare` ran: lineage says
    # its run never finished, and the executor still runs the attempt.
    lineage = open_lineage(store)
    try:
        lineage.start_run(
            Run(
                run_id="earlier",
                pipeline="test",
                spec_path=doc.spec,
                target="test",
                backend="fake",
                started_at=time.time() - 60,
            )
        )
    finally:
        lineage.close()
    executor.known = [KnownAttempt("earlier", "prepare", 1, keys["prepare"], running=True)]
    report = run(executor, doc)
    assert executor.asked_known == [["earlier"]]
    assert [(k.invocation, a.name) for k, a in executor.adopted] == [("prepare", "prepare")]
    assert [a.name for a in executor.started] == ["train"]
    assert statuses(report) == {"prepare": "ran", "train": "ran"}


def test_an_attempt_crosses_to_its_executor_as_plain_json(store: Store, tmp_path: Path) -> None:
    executor = FakeExecutor(store)
    sweep = step("sweep", sh("echo {{ x }}"), foreach=("x", ["a", "b"]), env={"MODE": "fast"})
    run(executor, document(tmp_path, [sweep], params={"lr": 0.1}))
    attempt = executor.started[1]
    copy = Attempt.from_json(json.loads(json.dumps(attempt.to_json())))
    assert copy.to_json() == attempt.to_json()
    assert (copy.name, copy.invocation.item, copy.step) == ("sweep[1]", "b", attempt.step)
    assert copy.env["MODE"] == "fast" and copy.env["MLC_STEP"] == "sweep[1]"
    assert copy.params == {"lr": 0.1}


def test_a_coordinator_that_fails_never_records_the_run_as_succeeded(
    store: Store, tmp_path: Path
) -> None:
    class Broken(FakeExecutor):
        def start(self, attempt: Attempt) -> None:
            if attempt.name == "b":
                raise RuntimeError("the executor broke")
            super().start(attempt)

    executor = Broken(store, script={"a": ["hold"]}, capacity=Slots(slots=2))
    steps = [step("a", sh("true")), step("b", sh("true"))]
    with pytest.raises(RuntimeError, match="the executor broke"):
        run(executor, document(tmp_path, steps))
    assert [a.name for a in executor.cancelled] == ["a"]  # what ran was stopped
    lineage = open_lineage(store)
    try:
        (recorded,) = lineage.list_runs()
    finally:
        lineage.close()
    assert recorded.status == "failed"
