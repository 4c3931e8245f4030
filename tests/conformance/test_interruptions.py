"""Runs that are interrupted: cancelled with SIGTERM (what Ctrl-C does too), and a coordinator
killed with `kill -9`, then applied again."""

from __future__ import annotations

import signal

from tests.conformance.harness import (
    Applied,
    Outcome,
    Project,
    Projects,
    alive,
    assert_same_outcome,
    file_digest,
    in_background,
    outcome,
    wait_for,
)

CANCEL = r"""
pipeline cancel {
  step first {
    call = "steps:first"
    outputs { text: file }
  }
  step long {
    call = "steps:long"
    inputs { upstream = first.text }
    outputs { text: file }
  }
  step last {
    call = "steps:last"
    inputs { upstream = long.text }
    outputs { text: file }
  }
  outputs { text = last.text }
}
"""

CANCEL_STEPS = r"""
import subprocess


def first(text):
    count("first")
    text.write_text("first\n")


def long(upstream, text):
    count("long")
    child = subprocess.Popen(["sleep", "120"])
    note("long.pids", f"{os.getpid()} {child.pid}")
    child.wait()
    text.write_text(upstream.read_text() + "long\n")


def last(upstream, text):
    count("last")
    text.write_text(upstream.read_text() + "last\n")
"""


def cancel_while_long_runs(project: Project) -> tuple[Applied, list[int]]:
    """Applies, sends SIGTERM once `long` runs; returns the report and the pids of `long`."""
    process = project.start_apply()
    try:
        wait_for(lambda: project.notes("long.pids"), "`long` to start")
    finally:
        process.send_signal(signal.SIGTERM)
    applied = project.finish(process)
    (pids,) = project.notes("long.pids")
    return applied, [int(pid) for pid in pids.split()]


def test_sigterm_cancels_the_run_and_stops_its_running_step(projects: Projects) -> None:
    reference = projects.reference(CANCEL, CANCEL_STEPS)
    expected = in_background(lambda: outcome(reference, cancel_while_long_runs(reference)[0]))
    project = projects.under_test(CANCEL, CANCEL_STEPS)
    applied, pids = cancel_while_long_runs(project)
    assert applied.code == 130, applied
    assert applied.status == "cancelled"
    assert applied.statuses == {"first": "ran", "long": "cancelled", "last": "skipped"}
    assert applied.steps["first"]["outputs"] == {"text": file_digest(b"first\n")}
    assert applied.steps["long"]["outputs"] == {}
    assert project.executions("last") == 0
    # No process of the step is left: neither its own nor the child it started.
    wait_for(lambda: not any(alive(pid) for pid in pids), "the cancelled step's processes")

    (run,) = project.runs()
    assert (run["run_id"], run["status"]) == (applied.run_id, "cancelled")
    steps = {s["step_id"]: s["status"] for s in project.run_record(applied.run_id)["steps"]}
    assert (steps["step:first"], steps["step:long"]) == ("ran", "cancelled")

    assert_same_outcome(outcome(project, applied), expected.result())


CHAIN = r"""
pipeline chain {
  step a {
    call = "steps:a"
    outputs { text: file }
  }
  step b {
    call = "steps:b"
    inputs { upstream = a.text }
    outputs { text: file }
  }
  step c {
    call = "steps:c"
    inputs { upstream = b.text }
    outputs { text: file }
  }
  step d {
    call = "steps:d"
    inputs { upstream = c.text }
    outputs { text: file }
  }
  outputs { text = d.text }
}
"""

# `c` holds while `state/hold` exists, so that the test can kill the coordinator while it runs.
CHAIN_STEPS = r"""
def a(text):
    count("a")
    text.write_text("a\n")


def b(upstream, text):
    count("b")
    text.write_text(upstream.read_text() + "b\n")


def c(upstream, text):
    count("c")
    deadline = time.monotonic() + 120
    while (STATE / "hold").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    text.write_text(upstream.read_text() + "c\n")


def d(upstream, text):
    count("d")
    text.write_text(upstream.read_text() + "d\n")
"""

CHAIN_TEXTS = {"a": b"a\n", "b": b"a\nb\n", "c": b"a\nb\nc\n", "d": b"a\nb\nc\nd\n"}
CHAIN_OUTPUTS = {name: {"text": file_digest(text)} for name, text in CHAIN_TEXTS.items()}


def test_a_run_whose_coordinator_was_killed_resumes_through_the_cache(projects: Projects) -> None:
    reference = projects.reference(CHAIN, CHAIN_STEPS)
    expected = in_background(lambda: uninterrupted_run(reference))

    project = projects.under_test(CHAIN, CHAIN_STEPS)
    project.release("hold")
    process = project.start_apply()

    def recorded_a_and_b() -> bool:
        (run,) = project.runs()
        steps = project.run_record(run["run_id"])["steps"]
        return {s["step_id"] for s in steps if s["status"] == "ran"} >= {"step:a", "step:b"}

    try:
        wait_for(lambda: project.notes("c.runs"), "`c` to start")
        # Lineage is written in batches: wait until it has the steps that finished.
        wait_for(recorded_a_and_b, "lineage to record `a` and `b`")
    finally:
        process.kill()
    process.communicate()
    assert process.returncode == -signal.SIGKILL
    (c_pid,) = (int(pid) for pid in project.notes("c.runs"))
    if project.backend.attempts_outlive_coordinator:
        # What the killed coordinator started goes on, and the next apply adopts it.
        assert alive(c_pid)
        resuming = project.start_apply()
        wait_for(lambda: len(project.runs()) == 2, "the next apply to start")
        (project.state / "hold").unlink()
        resumed = project.finish(resuming)
        executions = [1, 1, 1, 1]
    else:
        # What the killed coordinator ran does not outlive it.
        wait_for(lambda: not alive(c_pid), "the killed run's step to stop")
        (project.state / "hold").unlink()
        resumed = project.apply()
        executions = [1, 1, 2, 1]
    assert resumed.code == 0, resumed
    assert resumed.status == "succeeded"
    # What had finished is not run again; the rest runs (once more, or to its end).
    assert resumed.statuses == {"a": "cached", "b": "cached", "c": "ran", "d": "ran"}
    assert [project.executions(name) for name in "abcd"] == executions
    # The same outputs, keys and lineage as an uninterrupted run.
    uninterrupted, reference_run = expected.result()
    assert resumed.outputs == uninterrupted.outputs == CHAIN_OUTPUTS
    assert resumed.cache_keys == uninterrupted.cache_keys
    resumed_run = outcome(project, resumed)
    assert resumed_run.run == reference_run.run
    for step in ("step:c", "step:d"):
        assert resumed_run.executions[step] == reference_run.executions[step]
    assert resumed_run.provenance == reference_run.provenance


def uninterrupted_run(project: Project) -> tuple[Applied, Outcome]:
    """Applies the chain without interruption: its report and outcome."""
    applied = project.apply()
    return applied, outcome(project, applied)
