"""Steps that fail: retries with backoff, a step that never succeeds, a timeout, and what
happens to the rest of the pipeline with `--keep-going` and without it (fail fast)."""

from __future__ import annotations

from tests.conformance.harness import (
    Applied,
    Project,
    Projects,
    alive,
    assert_same_outcome,
    file_digest,
    in_background,
    outcome,
    wait_for,
)

RETRIES = r"""
pipeline retries {
  step flaky {
    call = "steps:flaky"
    outputs { lucky: file }
    retries = 2
    backoff = 200ms
  }
  step broken {
    call = "steps:broken"
    inputs { lucky = flaky.lucky }
    outputs { never: file }
    retries = 2
    backoff = 200ms
  }
  step after_broken {
    call = "steps:after_broken"
    inputs { never = broken.never }
    outputs { nor_this: file }
  }
  outputs { result = after_broken.nor_this }
}
"""

RETRIES_STEPS = r"""
def flaky(lucky):
    note("flaky.starts", repr(time.time()))
    attempt = count("flaky")
    if attempt < 3:
        raise RuntimeError(f"flaky fails attempt {attempt} on purpose")
    lucky.write_text("third time lucky\n")


def broken(lucky, never):
    attempt = count("broken")
    raise RuntimeError(f"broken fails attempt {attempt} on purpose")


def after_broken(never, nor_this):
    count("after_broken")
    nor_this.write_text("unreachable\n")
"""


def test_a_failing_step_is_retried_with_backoff_and_one_that_always_fails_fails_the_run(
    projects: Projects,
) -> None:
    reference = projects.reference(RETRIES, RETRIES_STEPS)
    expected = in_background(lambda: outcome(reference, reference.apply()))
    project = projects.under_test(RETRIES, RETRIES_STEPS)
    applied = project.apply()
    assert applied.code == 1, applied
    assert applied.status == "failed"
    assert applied.statuses == {"flaky": "ran", "broken": "failed", "after_broken": "skipped"}

    # Failed twice, then succeeded: one step that ran in three attempts.
    flaky = applied.steps["flaky"]
    assert flaky["attempts"] == 3 and project.executions("flaky") == 3
    assert flaky["outputs"] == {"lucky": file_digest(b"third time lucky\n")}
    # The backoff doubles: 200ms before the second attempt, 400ms before the third.
    starts = [float(t) for t in project.notes("flaky.starts")]
    assert starts[1] - starts[0] >= 0.2 and starts[2] - starts[1] >= 0.4

    # Always fails: retries + 1 attempts, then the step fails and what needs it is skipped.
    broken = applied.steps["broken"]
    assert broken["attempts"] == 3 and project.executions("broken") == 3
    assert broken["outputs"] == {}
    assert "broken fails attempt 3 on purpose" in broken["error"]
    assert project.executions("after_broken") == 0
    assert applied.report["outputs"] == {}

    record = project.run_record(applied.run_id)
    assert record["status"] == "failed"
    attempts = {e["step_id"]: (e["status"], e["attempts"]) for e in record["steps"]}
    assert attempts["step:flaky"] == ("ran", 3)
    assert attempts["step:broken"] == ("failed", 3)

    assert_same_outcome(outcome(project, applied), expected.result())


TIMEOUT = r"""
pipeline timeouts {
  step sleepy {
    call = "steps:sleepy"
    outputs { rested: file }
    timeout = 2s
  }
  step after_sleepy {
    call = "steps:after_sleepy"
    inputs { rested = sleepy.rested }
    outputs { done: file }
  }
  outputs { done = after_sleepy.done }
}
"""

TIMEOUT_STEPS = r"""
import subprocess


def sleepy(rested):
    count("sleepy")
    child = subprocess.Popen(["sleep", "120"])
    note("sleepy.children", str(child.pid))
    child.wait()
    rested.write_text("rested\n")


def after_sleepy(rested, done):
    count("after_sleepy")
    done.write_text("done\n")
"""


def test_a_step_that_runs_past_its_timeout_is_stopped_and_fails(projects: Projects) -> None:
    reference = projects.reference(TIMEOUT, TIMEOUT_STEPS)
    expected = in_background(lambda: outcome(reference, reference.apply()))
    project = projects.under_test(TIMEOUT, TIMEOUT_STEPS)
    applied = project.apply()
    assert applied.code == 1, applied
    assert applied.status == "failed"
    assert applied.statuses == {"sleepy": "failed", "after_sleepy": "skipped"}
    sleepy = applied.steps["sleepy"]
    assert sleepy["attempts"] == 1 and project.executions("sleepy") == 1
    assert "timed out" in sleepy["error"]
    assert sleepy["outputs"] == {}
    assert project.executions("after_sleepy") == 0
    # Stopping an attempt stops what it started.
    (child,) = (int(pid) for pid in project.notes("sleepy.children"))
    wait_for(lambda: not alive(child), "the timed-out step's child to stop")

    assert_same_outcome(outcome(project, applied), expected.result())


# Two independent branches: `broken` (then `after_broken`) and `bystander` (then
# `after_bystander`). `broken` fails only once `bystander` runs, and `bystander` ends only when
# the test releases it, so that the failure always finds `bystander` running and
# `after_bystander` not yet started.
BRANCHES = r"""
pipeline branches {
  step broken {
    call = "steps:broken"
    outputs { never: file }
    resources { cpu = 100m }
  }
  step after_broken {
    call = "steps:after_broken"
    inputs { never = broken.never }
    outputs { nor_this: file }
    resources { cpu = 100m }
  }
  step bystander {
    call = "steps:bystander"
    outputs { seen: file }
    resources { cpu = 100m }
  }
  step after_bystander {
    call = "steps:after_bystander"
    inputs { seen = bystander.seen }
    outputs { done: file }
    resources { cpu = 100m }
  }
  outputs { nor_this = after_broken.nor_this, done = after_bystander.done }
}
"""

BRANCHES_STEPS = r"""
def broken(never):
    wait_for_file("bystander.started")
    count("broken")
    raise RuntimeError("broken fails on purpose")


def after_broken(never, nor_this):
    count("after_broken")
    nor_this.write_text("unreachable\n")


def bystander(seen):
    count("bystander")
    note("bystander.started", "")
    wait_for_file("release")
    seen.write_text("seen\n")


def after_bystander(seen, done):
    count("after_bystander")
    done.write_text(seen.read_text() + "done\n")
"""


def test_keep_going_runs_the_branch_that_does_not_need_the_failed_step(
    projects: Projects,
) -> None:
    reference = projects.reference(BRANCHES, BRANCHES_STEPS)
    reference.release("release")
    expected = in_background(lambda: outcome(reference, reference.apply("--keep-going")))
    project = projects.under_test(BRANCHES, BRANCHES_STEPS)
    project.release("release")
    applied = project.apply("--keep-going")
    assert applied.code == 1, applied
    assert applied.status == "failed"
    assert applied.statuses == {
        "broken": "failed",
        "after_broken": "skipped",
        "bystander": "ran",
        "after_bystander": "ran",
    }
    assert applied.steps["after_bystander"]["outputs"] == {"done": file_digest(b"seen\ndone\n")}
    assert applied.report["outputs"] == {"done": file_digest(b"seen\ndone\n")}
    assert project.executions("after_broken") == 0

    assert_same_outcome(outcome(project, applied), expected.result())


def fail_fast(project: Project) -> Applied:
    """Applies the branches without `--keep-going`, releasing `bystander` only once lineage
    records that `broken` failed."""
    process = project.start_apply()

    def broken_failed() -> bool:
        (run,) = project.runs()
        steps = project.run_record(run["run_id"])["steps"]
        return any(s["step_id"] == "step:broken" and s["status"] == "failed" for s in steps)

    try:
        wait_for(lambda: project.notes("bystander.started"), "`bystander` to start")
        wait_for(broken_failed, "lineage to record that `broken` failed")
    finally:
        project.release("release")
    return project.finish(process)


def test_without_keep_going_no_step_starts_after_a_failure(projects: Projects) -> None:
    reference = projects.reference(BRANCHES, BRANCHES_STEPS)
    expected = in_background(lambda: outcome(reference, fail_fast(reference)))
    project = projects.under_test(BRANCHES, BRANCHES_STEPS)
    applied = fail_fast(project)
    assert applied.code == 1, applied
    assert applied.status == "failed"
    assert applied.statuses == {
        "broken": "failed",
        "after_broken": "skipped",
        "bystander": "ran",  # it was running: it finishes
        "after_bystander": "skipped",  # it had not started
    }
    assert applied.steps["bystander"]["outputs"] == {"seen": file_digest(b"seen\n")}
    assert project.executions("after_bystander") == project.executions("after_broken") == 0

    assert_same_outcome(outcome(project, applied), expected.result())
