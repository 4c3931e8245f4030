"""When steps fail: retries with backoff, timeouts that kill the whole process group, metrics
of the wrong type, outputs that never become visible, secrets that are missing."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from mlc.ir.model import Command
from mlc.runtime.cache_entries import RECORD_KIND
from mlc.runtime.errors import PreflightError, StepFailure
from mlc.store import parse_digest

from tests.local.conftest import Runner, by_name
from tests.runtime.builders import document, out, sh, step

FLAKY = """
n=$(cat {base}/count 2>/dev/null || echo 0); n=$((n + 1)); echo $n > {base}/count
date +%s.%N >> {base}/attempts
[ $n -ge {succeed_at} ] || exit 7
echo ok > {{{{ outputs.t }}}}
"""


def test_a_failing_step_is_retried_with_doubling_backoff(runner: Runner, work: Path) -> None:
    doc = document(
        work,
        [
            step(
                "flaky",
                sh(FLAKY.format(base=work, succeed_at=3)),
                outputs=[out("t")],
                retries=3,
                backoff_seconds=0.2,
            ),
        ],
    )
    report = runner.apply(doc)
    flaky = by_name(report)["flaky"]
    assert flaky.status == "ran" and flaky.attempts == 3
    times = [float(t) for t in (work / "attempts").read_text().split()]
    assert times[1] - times[0] >= 0.2
    assert times[2] - times[1] >= 0.4


def test_a_step_that_fails_every_attempt_fails_with_its_exit_code(
    runner: Runner, work: Path
) -> None:
    doc = document(
        work,
        [
            step(
                "flaky", sh(FLAKY.format(base=work, succeed_at=99)), outputs=[out("t")], retries=1
            ),
        ],
    )
    report = runner.apply(doc)
    flaky = by_name(report)["flaky"]
    assert report.status == "failed"
    assert (flaky.status, flaky.attempts, flaky.error) == ("failed", 2, "exited with code 7")
    assert "--- mlc: attempt 2 failed: exited with code 7 ---" in flaky.log_tail
    # The stored log holds every attempt, in order.
    markers = [line.split(" started ")[0] for line in flaky.log_tail if line.startswith("--- mlc")]
    assert markers == [
        "--- mlc: flaky attempt 1",
        "--- mlc: attempt 1 failed: exited with code 7 ---",
        "--- mlc: flaky attempt 2",
        "--- mlc: attempt 2 failed: exited with code 7 ---",
    ]


def test_a_timeout_kills_the_whole_process_group(runner: Runner, work: Path) -> None:
    # The child ignores SIGTERM, so only the SIGKILL after the grace period stops it.
    script = (
        f"sh -c 'trap \"\" TERM; echo $$ > {work}/child; while true; do sleep 0.05; done' & wait"
    )
    doc = document(work, [step("stuck", sh(script), timeout_seconds=1.0)])
    report = runner.apply(doc)
    stuck = by_name(report)["stuck"]
    assert stuck.status == "failed"
    assert stuck.error == "timed out after 1s"
    child = int((work / "child").read_text())
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and _alive(child):
        time.sleep(0.05)
    assert not _alive(child)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purposes.
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def test_metrics_of_the_wrong_type_fail_the_step(runner: Runner, work: Path) -> None:
    doc = document(
        work,
        [
            step(
                "evaluate",
                sh("""echo '{"accuracy": "high"}' > {{ outputs.m }}"""),
                outputs=[out("m", "metrics", {"accuracy": "float", "f1": "float"})],
            ),
        ],
    )
    evaluate = by_name(runner.apply(doc))["evaluate"]
    assert evaluate.status == "failed"
    assert evaluate.error == (
        "metrics output `m`: key `accuracy` should be float, got str 'high'; "
        "key `f1` (float) is missing"
    )


def test_a_call_step_may_return_its_metrics(runner: Runner, work: Path) -> None:
    (work / "scores.py").write_text("def score():\n    return {'accuracy': 0.9, 'n': 10}\n")
    doc = document(
        work,
        [
            step(
                "evaluate",
                Command(kind="call", function="scores:score"),
                outputs=[out("m", "metrics", {"accuracy": "float", "n": "int"})],
            ),
        ],
    )
    evaluate = by_name(runner.apply(doc))["evaluate"]
    assert evaluate.status == "ran"
    import json

    assert json.loads(runner.store.read_bytes(evaluate.outputs["m"])) == {"accuracy": 0.9, "n": 10}


def test_an_exception_in_a_call_step_is_in_its_log(runner: Runner, work: Path) -> None:
    (work / "boom.py").write_text("def explode(out):\n    raise ValueError('no data')\n")
    doc = document(
        work,
        [
            step("explode", Command(kind="call", function="boom:explode"), outputs=[out("out")]),
        ],
    )
    failed = by_name(runner.apply(doc))["explode"]
    assert failed.error == "boom:explode raised ValueError: no data"
    log = "\n".join(failed.log_tail)
    assert "ValueError: no data" in log and 'boom.py", line 2, in explode' in log


def test_a_missing_output_fails_the_step(runner: Runner, work: Path) -> None:
    doc = document(work, [step("lazy", sh("true"), outputs=[out("model", "model")])])
    lazy = by_name(runner.apply(doc))["lazy"]
    assert lazy.status == "failed"
    assert lazy.error is not None and lazy.error.startswith(
        "the step did not write its output `model`"
    )


def test_a_partial_output_never_becomes_visible(runner: Runner, work: Path) -> None:
    script = "echo half > {{ outputs.d }}/part; exit 1"
    doc = document(work, [step("crash", sh(script), outputs=[out("d", "dir")])])
    report = runner.apply(doc)
    crash = by_name(report)["crash"]
    assert crash.status == "failed" and crash.outputs == {}
    assert runner.store.list_records(RECORD_KIND) == []
    assert [e.action for e in runner.plan(doc).entries] == ["run"]
    work_dirs = Path(runner.store.local_dir, "work")  # type: ignore[attr-defined]
    assert not any(work_dirs.glob("*/crash"))


def test_secrets_come_from_the_environment_and_stay_out_of_the_key(
    runner: Runner, work: Path
) -> None:
    doc = document(
        work,
        [
            step(
                "login",
                sh('printf %s "$TOKEN" > {{ outputs.t }}'),
                outputs=[out("t")],
                secrets={"TOKEN": "registry/api-key"},
            ),
        ],
    )
    with pytest.raises(PreflightError, match="set MLC_SECRET_REGISTRY_API_KEY"):
        runner.apply(doc)
    runner.environ["MLC_SECRET_REGISTRY_API_KEY"] = "s3cr3t"
    first = by_name(runner.apply(doc))["login"]
    assert runner.store.read_bytes(first.outputs["t"]) == b"s3cr3t"
    runner.environ["MLC_SECRET_REGISTRY_API_KEY"] = "rotated"
    assert by_name(runner.apply(doc))["login"].status == "cached"
    record = runner.store.get_record(RECORD_KIND, first.cache_key.removeprefix("sha256:"))
    assert "s3cr3t" not in str(record)


def test_a_container_image_is_refused_unless_the_target_ignores_it(
    runner: Runner, work: Path
) -> None:
    from tests.runtime.builders import target

    steps = [step("train", sh("true"), image="ghcr.io/acme/train:1")]
    with pytest.raises(PreflightError, match="sets `image`"):
        runner.apply(document(work, steps))
    report = runner.apply(document(work, steps, target=target(ignore_unsupported=["image"])))
    assert report.status == "succeeded"


def test_a_missing_call_module_is_reported_before_running(runner: Runner, work: Path) -> None:
    doc = document(work, [step("s", Command(kind="call", function="nowhere:f"))])
    with pytest.raises(PreflightError, match="no module `nowhere` is found"):
        runner.apply(doc)


def test_a_command_that_is_not_found_fails_like_a_shell_says_so(runner: Runner, work: Path) -> None:
    missing = Command(kind="exec", argv=("no-such-command-for-mlc", "--flag"))
    report = runner.apply(document(work, [step("ghost", missing)]))
    ghost = by_name(report)["ghost"]
    assert (ghost.status, ghost.exit_code) == ("failed", 127)
    assert ghost.error == (
        "cannot run `no-such-command-for-mlc`: command not found (looked in PATH)"
    )
    assert not any("Traceback" in line for line in ghost.log_tail)


def test_a_file_that_is_not_executable_fails_with_126(runner: Runner, work: Path) -> None:
    script = work / "train.sh"
    script.write_text("echo never\n")
    report = runner.apply(
        document(work, [step("plain", Command(kind="exec", argv=(str(script),)))])
    )
    plain = by_name(report)["plain"]
    assert (plain.status, plain.exit_code) == ("failed", 126)
    assert plain.error == f"cannot run `{script}`: permission denied (is it executable?)"


def test_a_long_log_is_stored_whole_and_its_last_lines_shown(runner: Runner, work: Path) -> None:
    script = "seq 1 200000; echo the end >&2; exit 3"
    report = runner.apply(document(work, [step("chatty", sh(script))]))
    chatty = by_name(report)["chatty"]
    assert chatty.status == "failed"
    assert chatty.log_tail[-3:] == [
        "200000",
        "the end",
        "--- mlc: attempt 1 failed: exited with code 3 ---",
    ]
    assert len(chatty.log_tail) == 20
    assert chatty.log_ref is not None
    stored = runner.store.read_bytes(parse_digest(chatty.log_ref)).decode().splitlines()
    assert stored[1:3] == ["1", "2"] and "199999" in stored


def test_a_log_too_large_for_memory_is_streamed_into_the_store_whole(
    runner: Runner, work: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Any log over 4 KiB takes the streamed path here; a retry continues the stored log.
    monkeypatch.setattr("mlc.runtime.step_logs.IN_MEMORY_BYTES", 4096)
    monkeypatch.setattr("mlc.runtime.step_logs.TAIL_BYTES", 1024)
    script = f"seq 1 3000; [ -e {work}/again ] && exit 0; touch {work}/again; exit 5"
    report = runner.apply(document(work, [step("loud", sh(script), retries=1)]))
    loud = by_name(report)["loud"]
    assert (loud.status, loud.attempts) == ("ran", 2)
    assert loud.log_ref is not None
    stored = runner.store.read_bytes(parse_digest(loud.log_ref)).decode().splitlines()
    marks = [line.split(" started ")[0] for line in stored if line.startswith("--- mlc")]
    assert marks == [
        "--- mlc: loud attempt 1",
        "--- mlc: attempt 1 failed: exited with code 5 ---",
        "--- mlc: loud attempt 2",
    ]
    numbers = [line for line in stored if not line.startswith("---")]
    assert numbers == [str(n) for n in range(1, 3001)] * 2


def test_a_streamed_log_still_shows_its_last_lines(
    runner: Runner, work: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("mlc.runtime.step_logs.IN_MEMORY_BYTES", 4096)
    monkeypatch.setattr("mlc.runtime.step_logs.TAIL_BYTES", 1024)
    report = runner.apply(document(work, [step("loud", sh("seq 1 5000; exit 2"))]))
    loud = by_name(report)["loud"]
    assert loud.status == "failed"
    assert loud.log_tail == [
        *[str(n) for n in range(4982, 5001)],
        "--- mlc: attempt 1 failed: exited with code 2 ---",
    ]


def test_an_attempt_that_cannot_be_handed_over_fails_with_the_reason(
    runner: Runner, work: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*_args: object, **_kwargs: object) -> object:
        raise StepFailure("cannot render `{{ nope }}`")

    monkeypatch.setattr("mlc.backends.local.executor.render_attempt", refuse)
    report = runner.apply(document(work, [step("never", sh("true"))]))
    never = by_name(report)["never"]
    assert (never.status, never.error) == ("failed", "cannot render `{{ nope }}`")
    assert never.log_tail == ["--- mlc: attempt 1 failed: cannot render `{{ nope }}` ---"]
