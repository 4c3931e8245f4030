"""The local scheduler: DAG order, resources, GPUs, foreach and fan-in, gates and finally steps.

Order and overlap are checked with timestamps the steps write themselves, never with timing
thresholds.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from mlc.ir.model import Command, GpuRequest
from mlc.runtime.errors import PreflightError
from mlc.store import parse_digest

from tests.local.conftest import Runner, by_name
from tests.runtime.builders import document, inp, metric, op, out, sh, step, target

STAMP = 'start=$(date +%s.%N); {body}; echo "$start $(date +%s.%N)" > {{{{ outputs.t }}}}'


def stamped(body: str = "sleep 0.2") -> str:
    """A script that runs `body` and writes its start and end times to output `t`."""
    return STAMP.format(body=body)


def interval(runner: Runner, report: object, name: str) -> tuple[float, float]:
    """The (start, end) a step wrote."""
    digest = by_name(report)[name].outputs["t"]  # type: ignore[attr-defined]
    start, end = runner.store.read_bytes(digest).split()
    return float(start), float(end)


def test_steps_run_after_everything_they_need(runner: Runner, work: Path) -> None:
    doc = document(
        work,
        [
            step("a", sh(stamped()), outputs=[out("t")]),
            step("b", sh(stamped("sleep 0.2; : b")), inputs=[inp("x", "a.t")], outputs=[out("t")]),
            step("c", sh(stamped("sleep 0.2; : c")), inputs=[inp("x", "a.t")], outputs=[out("t")]),
            step("d", sh(stamped()), inputs=[inp("x", "b.t"), inp("y", "c.t")], outputs=[out("t")]),
        ],
        target=target(cpu_millis=4000),
    )
    report = runner.apply(doc)
    assert report.status == "succeeded"
    a, b, c, d = (interval(runner, report, n) for n in "abcd")
    assert a[1] <= b[0] and a[1] <= c[0]
    assert max(b[1], c[1]) <= d[0]


def test_after_orders_steps_without_data(runner: Runner, work: Path) -> None:
    doc = document(
        work,
        [
            step("first", sh(stamped()), outputs=[out("t")]),
            step("second", sh(stamped("true")), outputs=[out("t")], after=["first"]),
        ],
        target=target(cpu_millis=4000),
    )
    report = runner.apply(doc)
    assert interval(runner, report, "first")[1] <= interval(runner, report, "second")[0]


def test_two_one_cpu_steps_never_overlap_on_a_one_cpu_target(runner: Runner, work: Path) -> None:
    doc = document(
        work,
        [
            step("left", sh(stamped("sleep 0.2; : left")), outputs=[out("t")]),
            step("right", sh(stamped("sleep 0.2; : right")), outputs=[out("t")]),
        ],
        target=target(cpu_millis=1000),
    )
    report = runner.apply(doc)
    left, right = interval(runner, report, "left"), interval(runner, report, "right")
    assert left[1] <= right[0] or right[1] <= left[0]


def test_memory_is_accounted_like_cpu(runner: Runner, work: Path) -> None:
    doc = document(
        work,
        [
            step(
                name,
                sh(stamped(f"sleep 0.2; : {name}")),
                outputs=[out("t")],
                cpu_millis=100,
                memory_bytes=3 << 30,
            )
            for name in ("left", "right")
        ],
        target=target(cpu_millis=4000, memory_bytes=4 << 30),
    )
    report = runner.apply(doc)
    left, right = interval(runner, report, "left"), interval(runner, report, "right")
    assert left[1] <= right[0] or right[1] <= left[0]


class Warnings:
    """An observer that keeps the run's warnings."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    def run_started(self, run_id: str, pipeline: str, names: list[str]) -> None:
        pass

    def unit_changed(self, update: object) -> None:
        pass

    def tick(self) -> None:
        pass

    def warning(self, text: str) -> None:
        self.texts.append(text)


ALLOCATE = "import time; block = bytearray(96 << 20); block[::4096] = b'x' * (24 << 10)"


def test_peak_memory_is_measured_and_an_understated_request_is_named(
    runner: Runner, work: Path
) -> None:
    (work / "hungry.py").write_text(f"def eat():\n    {ALLOCATE}\n")
    doc = document(
        work,
        [
            step(
                "command",
                Command(kind="exec", argv=("python3", "-c", ALLOCATE)),
                memory_bytes=32 << 20,
            ),
            step("function", Command(kind="call", function="hungry:eat"), memory_bytes=32 << 20),
            step("modest", sh("true"), memory_bytes=1 << 30),
        ],
    )
    warnings = Warnings()
    report = runner.backend().apply(doc, observer=warnings)  # type: ignore[arg-type]
    steps = by_name(report)
    for name in ("command", "function"):
        assert steps[name].peak_memory_bytes >= 96 << 20  # type: ignore[attr-defined]
        assert any(text.startswith(f"`{name}` used up to ") for text in warnings.texts)
    assert steps["modest"].peak_memory_bytes < 1 << 30  # type: ignore[attr-defined]
    assert not any("`modest`" in text for text in warnings.texts)
    assert "peak_memory_bytes" in steps["command"].to_json()  # type: ignore[attr-defined]


def test_a_step_that_can_never_fit_fails_before_anything_runs(runner: Runner, work: Path) -> None:
    doc = document(
        work,
        [
            step("small", sh("touch {{ outputs.t }}"), outputs=[out("t")]),
            step("huge", sh("true"), cpu_millis=64000),
        ],
        target=target(cpu_millis=2000),
    )
    with pytest.raises(
        PreflightError, match=r"step `huge` can never run here: it asks for 64 CPUs"
    ):
        runner.apply(doc)
    assert not (work / "t").exists()


def test_gpu_steps_see_the_slots_they_hold(runner: Runner, work: Path) -> None:
    runner.environ["MLC_LOCAL_GPUS"] = "t4:2"
    # Each command differs (`: name`): identical definitions would share one cache entry.
    show = 'printf %s "$CUDA_VISIBLE_DEVICES" > {{ outputs.devices }}; : '
    doc = document(
        work,
        [
            step(
                "one",
                sh(show + "one"),
                outputs=[out("devices")],
                gpu=GpuRequest(count=1, accelerator="t4"),
            ),
            step(
                "both",
                sh(show + "both"),
                outputs=[out("devices")],
                gpu=GpuRequest(count=2, accelerator="t4"),
                after=["one"],
            ),
            step("cpu", sh(show + "cpu"), outputs=[out("devices")]),
        ],
    )
    report = runner.apply(doc)
    devices = {
        name: runner.store.read_bytes(step.outputs["devices"]).decode()
        for name, step in by_name(report).items()
    }
    assert devices["one"] in ("0", "1")
    assert devices["both"] == "0,1"
    assert devices["cpu"] == ""


def test_gpu_steps_share_slots_without_overlap(runner: Runner, work: Path) -> None:
    runner.environ["MLC_LOCAL_GPUS"] = "t4:1"
    doc = document(
        work,
        [
            step(
                n,
                sh(stamped(f"sleep 0.2; : {n}")),
                outputs=[out("t")],
                cpu_millis=100,
                gpu=GpuRequest(count=1),
            )
            for n in ("g1", "g2")
        ],
    )
    report = runner.apply(doc)
    first, second = interval(runner, report, "g1"), interval(runner, report, "g2")
    assert first[1] <= second[0] or second[1] <= first[0]


def test_an_accelerator_the_machine_lacks_is_reported_before_running(
    runner: Runner, work: Path
) -> None:
    runner.environ["MLC_LOCAL_GPUS"] = "t4:2"
    doc = document(
        work,
        [
            step("train", sh("true"), gpu=GpuRequest(count=1, accelerator="a100-80gb")),
        ],
    )
    expected = r"1 `a100-80gb` GPU and this machine has 0 \(GPUs from MLC_LOCAL_GPUS"
    with pytest.raises(PreflightError, match=expected):
        runner.apply(doc)


def test_foreach_runs_once_per_item_and_fan_in_keeps_item_order(runner: Runner, work: Path) -> None:
    doc = document(
        work,
        [
            step(
                "square",
                sh("echo $(( {{ n }} * {{ n }} )) > {{ outputs.value }}"),
                outputs=[out("value")],
                foreach=("n", [3, 1, 2]),
            ),
            step(
                "collect",
                sh("cat {{ inputs.values | join(' ') }} > {{ outputs.all }}"),
                inputs=[inp("values", "square.value", fan_in=True)],
                outputs=[out("all")],
            ),
        ],
        target=target(cpu_millis=4000),
        outputs={"all": "collect.all"},
    )
    report = runner.apply(doc)
    steps = by_name(report)
    assert {"square[0]", "square[1]", "square[2]"} <= set(steps)
    assert runner.store.read_bytes(report.outputs["all"]).split() == [b"9", b"1", b"4"]


def test_foreach_parallelism_bounds_items_running_at_once(runner: Runner, work: Path) -> None:
    doc = document(
        work,
        [
            step(
                "item",
                sh(stamped("sleep 0.3")),
                outputs=[out("t")],
                cpu_millis=100,
                foreach=("i", [1, 2, 3, 4]),
                parallelism=2,
            ),
        ],
        target=target(cpu_millis=8000),
    )
    report = runner.apply(doc)
    spans = [interval(runner, report, f"item[{i}]") for i in range(4)]
    for moment, _ in spans:
        running = sum(1 for start, end in spans if start <= moment < end)
        assert running <= 2


def test_a_false_gate_skips_the_step_and_what_needs_it(runner: Runner, work: Path) -> None:
    doc = document(
        work,
        [
            step(
                "evaluate",
                sh("echo '{\"accuracy\": 0.8}' > {{ outputs.m }}"),
                outputs=[out("m", "metrics", {"accuracy": "float"})],
            ),
            step(
                "register",
                sh("touch {{ outputs.entry }}"),
                outputs=[out("entry")],
                when=op(">=", metric("evaluate", "m", "accuracy"), 0.9),
            ),
            step(
                "announce",
                sh("touch {{ outputs.done }}"),
                inputs=[inp("e", "register.entry")],
                outputs=[out("done")],
            ),
        ],
    )
    report = runner.apply(doc)
    steps = by_name(report)
    assert report.status == "succeeded"
    assert steps["register"].status == "skipped"
    assert steps["register"].reasons == [
        "its condition `evaluate.m.accuracy (0.8) >= 0.9` is false"
    ]
    assert steps["announce"].status == "skipped"
    assert "register" in steps["announce"].reasons[0]


def test_a_true_gate_lets_the_step_run(runner: Runner, work: Path) -> None:
    doc = document(
        work,
        [
            step(
                "evaluate",
                sh("echo '{\"accuracy\": 0.95}' > {{ outputs.m }}"),
                outputs=[out("m", "metrics", {"accuracy": "float"})],
            ),
            step(
                "register",
                sh("touch {{ outputs.entry }}"),
                outputs=[out("entry")],
                when=op("and", op(">=", metric("evaluate", "m", "accuracy"), 0.9), True),
            ),
        ],
    )
    assert by_name(runner.apply(doc))["register"].status == "ran"


def test_finally_steps_run_after_a_failure_and_see_the_status(runner: Runner, work: Path) -> None:
    doc = document(
        work,
        [
            step("ok", sh("touch {{ outputs.t }}"), outputs=[out("t")]),
            step("broken", sh("exit 3")),
            step(
                "report",
                sh("echo {{ run.status }} > {{ outputs.status }}"),
                outputs=[out("status")],
                is_finally=True,
            ),
        ],
        target=target(cpu_millis=1000),
    )
    report = runner.apply(doc, keep_going=True)
    steps = by_name(report)
    assert report.status == "failed"
    assert steps["broken"].status == "failed"
    assert steps["broken"].error == "exited with code 3"
    assert runner.store.read_bytes(steps["report"].outputs["status"]) == b"failed\n"


def test_finally_steps_see_success(runner: Runner, work: Path) -> None:
    doc = document(
        work,
        [
            step("ok", sh("true")),
            step(
                "report",
                sh("echo {{ run.status }} > {{ outputs.status }}"),
                outputs=[out("status")],
                is_finally=True,
            ),
        ],
    )
    steps = by_name(runner.apply(doc))
    assert runner.store.read_bytes(steps["report"].outputs["status"]) == b"succeeded\n"


def test_fail_fast_starts_nothing_new_after_a_failure(runner: Runner, work: Path) -> None:
    doc = document(
        work,
        [
            step("broken", sh("exit 1")),
            step("later", sh("true"), after=["broken"]),
            step("independent", sh("true"), after=["broken"]),
        ],
        target=target(cpu_millis=1000),
    )
    steps = by_name(runner.apply(doc))
    assert steps["later"].status == "skipped"
    assert steps["independent"].status == "skipped"


def test_keep_going_runs_independent_branches(runner: Runner, work: Path) -> None:
    doc = document(
        work,
        [
            step("broken", sh("exit 1")),
            step("needs_broken", sh("true"), after=["broken"]),
            step("independent", sh("sleep 0.1")),
        ],
        target=target(cpu_millis=1000),
    )
    report = runner.apply(doc, keep_going=True)
    steps = by_name(report)
    assert report.status == "failed"
    assert steps["independent"].status == "ran"
    assert steps["needs_broken"].status == "skipped"
    assert steps["needs_broken"].reasons == ["it runs after `broken`, which failed"]


def test_every_run_and_step_is_recorded_in_lineage(runner: Runner, work: Path) -> None:
    from mlc.store.lineage import open_lineage

    doc = document(
        work,
        [
            step("make", sh("echo hi > {{ outputs.t }}; echo made"), outputs=[out("t")]),
            step(
                "use",
                sh("cat {{ inputs.x }} > {{ outputs.t }}"),
                inputs=[inp("x", "make.t")],
                outputs=[out("t")],
            ),
        ],
    )
    report = runner.apply(doc)
    lineage = open_lineage(runner.store)
    try:
        run = lineage.find_run(report.run_id)
        executions = {e.step_id: e for e in lineage.steps_of(report.run_id)}
    finally:
        lineage.close()
    assert run.status == "succeeded" and run.backend == "local"
    made, used = executions["step:make"], executions["step:use"]
    assert made.status == "ran" and made.exit_code == 0 and made.attempts == 1
    assert used.inputs == {"x": made.outputs["t"].digest}
    assert made.cache_key == by_name(report)["make"].cache_key
    assert b"made" in runner.store.read_bytes(made.log_ref)  # type: ignore[arg-type]


def test_call_steps_run_in_reused_worker_processes(runner: Runner, work: Path) -> None:
    from mlc.ir.model import Command

    (work / "helpers.py").write_text(
        "import json, os\ndef pid(out):\n    out.write_text(str(os.getpid()))\n"
    )
    doc = document(
        work,
        [
            step(
                f"s{i}",
                Command(kind="call", function="helpers:pid"),
                outputs=[out("out")],
                after=[f"s{i - 1}"] if i else [],
            )
            for i in range(3)
        ],
    )
    report = runner.apply(doc)
    pids = {runner.store.read_bytes(s.outputs["out"]) for s in report.steps}
    assert len(pids) == 1
    assert json.loads(next(iter(pids))) != __import__("os").getpid()


def test_a_command_gets_only_its_log_and_an_empty_stdin(runner: Runner, work: Path) -> None:
    # Nothing of the worker leaks into a step: no pipe of its protocol, no open file.
    fds = Command(kind="exec", argv=("ls", "/proc/self/fd"))
    stdin = Command(kind="exec", argv=("readlink", "/proc/self/fd/0"))
    report = runner.apply(document(work, [step("fds", fds), step("stdin", stdin)]))

    def log_lines(name: str) -> list[str]:
        reported = by_name(report)[name]
        assert reported.status == "ran", reported.error
        assert reported.log_ref is not None
        text = runner.store.read_bytes(parse_digest(reported.log_ref)).decode()
        return [line for line in text.splitlines() if not line.startswith("--- mlc")]

    # 3 is the directory `ls` itself opens to list them.
    assert sorted(int(fd) for fd in log_lines("fds")) == [0, 1, 2, 3]
    assert log_lines("stdin") == ["/dev/null"]


def test_a_step_path_decides_which_program_runs(runner: Runner, work: Path) -> None:
    tools = work / "tools"
    tools.mkdir()
    program = tools / "mlc-test-tool"
    program.write_text('#!/bin/sh\necho from the step PATH > "$1"\n')
    program.chmod(0o755)
    path = f"{tools}:{os.environ['PATH']}"
    command = Command(kind="exec", argv=("mlc-test-tool", "{{ outputs.said }}"))
    report = runner.apply(
        document(work, [step("tool", command, outputs=[out("said")], env={"PATH": path})])
    )
    tool = by_name(report)["tool"]
    assert tool.status == "ran", tool.error
    said = runner.store.read_bytes(tool.outputs["said"]).decode()
    assert said == "from the step PATH\n"


@pytest.mark.parametrize("limit", [16 << 20, 1], ids=["appended", "emptied-each-time"])
def test_each_step_log_holds_only_that_step_when_a_worker_runs_many(
    runner: Runner, work: Path, monkeypatch: pytest.MonkeyPatch, limit: int
) -> None:
    # One CPU: one worker runs the steps one after another, in one log file of its own.
    monkeypatch.setattr("mlc.backends.local.workspace.WORKER_LOG_LIMIT", limit)
    names = [f"s{i}" for i in range(5)]
    steps = [step(n, sh(f"echo I am {n}; echo {n} err >&2"), outputs=[]) for n in names]
    report = runner.apply(document(work, steps, target=target(cpu_millis=1000)))
    for name in names:
        reported = by_name(report)[name]
        assert reported.log_ref is not None
        text = runner.store.read_bytes(parse_digest(reported.log_ref)).decode()
        body = [line for line in text.splitlines() if not line.startswith("--- mlc")]
        assert body == [f"I am {name}", f"{name} err"]
        assert text.startswith(f"--- mlc: {name} attempt 1 started")
