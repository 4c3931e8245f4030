"""Control flow: `when` gates on an upstream step's metrics, `finally` steps, and `foreach`
with a parallelism bound and a fan-in that receives the items in order."""

from __future__ import annotations

from tests.conformance.harness import (
    Projects,
    assert_same_outcome,
    file_digest,
    in_background,
    outcome,
)

GATES = r"""
pipeline gates {
  params { min_accuracy: float = 0.9 }
  step evaluate {
    call = "steps:evaluate"
    outputs { scores: metrics { accuracy: float } }
  }
  step register {
    when = evaluate.scores.accuracy >= params.min_accuracy
    call = "steps:register"
    inputs { scores = evaluate.scores }
    outputs { entry: file }
  }
  step announce {
    call = "steps:announce"
    inputs { entry = register.entry }
    outputs { message: file }
  }
  step retrain {
    when = evaluate.scores.accuracy < params.min_accuracy
    call = "steps:retrain"
    inputs { scores = evaluate.scores }
    outputs { plan: file }
  }
  finally step report {
    run = ["sh", "-c", "echo \"$1\" > \"$2\"", "sh", "{{ run.status }}", "{{ outputs.status }}"]
    outputs { status: file }
  }
  outputs { message = announce.message, plan = retrain.plan, status = report.status }
}
"""

GATES_STEPS = r"""
import json


def evaluate(scores):
    count("evaluate")
    scores.write_text('{"accuracy": 0.5}\n')


def register(scores, entry):
    count("register")
    entry.write_text("registered\n")


def announce(entry, message):
    count("announce")
    message.write_text("announced\n")


def retrain(scores, plan):
    count("retrain")
    plan.write_text(f"retrain: accuracy {json.loads(scores.read_text())['accuracy']}\n")
"""


def test_a_false_gate_skips_its_step_and_what_needs_it_and_finally_still_runs(
    projects: Projects,
) -> None:
    # `report` reads `run.status`: its cache key holds the run id, new in every run.
    reference = projects.reference(GATES, GATES_STEPS)
    expected = in_background(lambda: outcome(reference, reference.apply(), ["report"]))
    project = projects.under_test(GATES, GATES_STEPS)
    applied = project.apply()
    assert applied.code == 0, applied
    assert applied.status == "succeeded"  # a skipped step is not a failure
    assert applied.statuses == {
        "evaluate": "ran",
        "register": "skipped",
        "announce": "skipped",
        "retrain": "ran",
        "report": "ran",
    }
    assert applied.steps["register"]["reasons"] == [
        "its condition `evaluate.scores.accuracy (0.5) >= 0.9` is false"
    ]
    assert "register" in applied.steps["announce"]["reasons"][0]
    assert project.executions("register") == project.executions("announce") == 0
    plan = file_digest(b"retrain: accuracy 0.5\n")
    run_status = file_digest(b"succeeded\n")  # what `report` saw in `{{ run.status }}`
    assert applied.outputs == {
        "evaluate": {"scores": file_digest(b'{"accuracy": 0.5}\n')},
        "register": {},
        "announce": {},
        "retrain": {"plan": plan},
        "report": {"status": run_status},
    }
    assert applied.report["outputs"] == {"plan": plan, "status": run_status}

    # Lineage records the skipped steps too.
    record = project.run_record(applied.run_id)
    assert {e["step_id"]: e["status"] for e in record["steps"]} == {
        f"step:{name}": status for name, status in applied.statuses.items()
    }

    assert_same_outcome(outcome(project, applied, ["report"]), expected.result())


CONSTANT_GATE = r"""
pipeline publish {
  params { deploy: bool = true }
  step build {
    call = "steps:build"
    outputs { package: file }
  }
  step upload {
    when = params.deploy
    call = "steps:upload"
    inputs { package = build.package }
    outputs { receipt: file }
  }
  step announce {
    call = "steps:announce"
    inputs { receipt = upload.receipt }
    outputs { message: file }
  }
  outputs { message = announce.message }
}
"""

CONSTANT_GATE_STEPS = r"""
def build(package):
    count("build")
    package.write_text("package\n")


def upload(package, receipt):
    count("upload")
    receipt.write_text("uploaded\n")


def announce(receipt, message):
    count("announce")
    message.write_text("announced\n")
"""


def test_a_condition_decided_by_params_at_compile_time_is_obeyed_at_run_time(
    projects: Projects,
) -> None:
    reference = projects.reference(CONSTANT_GATE, CONSTANT_GATE_STEPS)
    off = "--param", "deploy=false"
    expected = in_background(lambda: outcome(reference, reference.apply(*off, warnings=["W0503"])))
    project = projects.under_test(CONSTANT_GATE, CONSTANT_GATE_STEPS)

    # `mlc lint` says the step can never run with `deploy = false`; the run then skips it.
    skipped = project.apply(*off, warnings=["W0503"])
    assert skipped.code == 0, skipped
    assert skipped.statuses == {"build": "ran", "upload": "skipped", "announce": "skipped"}
    assert skipped.steps["upload"]["reasons"] == ["its condition `params.deploy (false)` is false"]
    assert project.executions("upload") == project.executions("announce") == 0
    assert_same_outcome(outcome(project, skipped), expected.result())

    # With `deploy = true` the same steps run.
    ran = project.apply()
    assert ran.code == 0, ran
    assert ran.statuses == {"build": "cached", "upload": "ran", "announce": "ran"}
    assert ran.report["outputs"] == {"message": file_digest(b"announced\n")}


ITEMS = [5, 3, 6, 1, 4, 2]  # not sorted: the fan-in must keep this order

SWEEP = r"""
pipeline sweep {
  step square foreach n in [5, 3, 6, 1, 4, 2] {
    parallelism = 2
    call = "steps:square"
    outputs { squared: file }
    resources { cpu = 100m }
  }
  step collect {
    call = "steps:collect"
    inputs { squares: list[file] = square.squared }
    outputs { together: file }
  }
  outputs { together = collect.together }
}
"""

SWEEP_STEPS = r"""
def square(n, squared):
    start = time.time()
    count("square")
    time.sleep(0.3)
    squared.write_text(f"{n * n}\n")
    note("square.spans", f"{n} {start!r} {time.time()!r}")


def collect(squares, together):
    count("collect")
    together.write_text("".join(path.read_text() for path in squares))
"""


def test_foreach_runs_every_item_at_most_parallelism_at_once_and_fans_in_in_item_order(
    projects: Projects,
) -> None:
    reference = projects.reference(SWEEP, SWEEP_STEPS)
    expected = in_background(lambda: outcome(reference, reference.apply()))
    project = projects.under_test(SWEEP, SWEEP_STEPS)
    applied = project.apply()
    assert applied.code == 0, applied
    assert applied.status == "succeeded"
    items = [f"square[{i}]" for i in range(len(ITEMS))]
    assert applied.statuses == {**dict.fromkeys(items, "ran"), "collect": "ran"}
    squares = [file_digest(f"{n * n}\n".encode()) for n in ITEMS]
    assert [applied.outputs[item] for item in items] == [{"squared": d} for d in squares]
    together = file_digest("".join(f"{n * n}\n" for n in ITEMS).encode())
    assert applied.outputs["collect"] == {"together": together}
    assert applied.report["outputs"] == {"together": together}

    # Each item ran once; the times they wrote themselves show at most two at once.
    notes = [line.split() for line in project.notes("square.spans")]
    spans = {int(n): (float(start), float(end)) for n, start, end in notes}
    assert sorted(spans) == sorted(ITEMS) and project.executions("square") == len(ITEMS)
    for moment, _ in spans.values():
        running = sum(1 for start, end in spans.values() if start <= moment < end)
        assert running <= 2, spans

    # Lineage names the fan-in input's items in item order.
    record = project.run_record(applied.run_id)
    collect = next(e for e in record["steps"] if e["step_id"] == "step:collect")
    assert collect["inputs"] == {f"squares[{i}]": d for i, d in enumerate(squares)}

    assert_same_outcome(outcome(project, applied), expected.result())
