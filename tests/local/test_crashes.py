"""`mlc apply` as a process: killed with `kill -9` and applied again, run twice at once on one
store, cancelled with Ctrl-C. Each runs the real command on an IR document written to disk."""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from mlc.ir.model import Step
from mlc.ir.serialize import to_json
from mlc.runtime.cache_entries import RECORD_KIND
from mlc.store.lineage import open_lineage
from mlc.store.uri import open_store

from tests.runtime.builders import document, inp, out, sh, step, target

REPO = Path(__file__).resolve().parents[2]


def resumable_pipeline(work: Path) -> Path:
    """`make` -> `square` (foreach, slow, 2 at a time) -> `total` (fan-in); the IR on disk."""
    square = (
        f"touch {work}/started-{{{{ n }}}}; sleep 0.3; "
        "echo $(( $(cat {{ inputs.seed }}) * {{ n }} )) > {{ outputs.value }}"
    )
    doc = document(
        work,
        [
            step("make", sh("echo 7 > {{ outputs.d }}/seed"), outputs=[out("d", "dir")]),
            step(
                "seed",
                sh("cat {{ inputs.d }}/seed > {{ outputs.seed }}"),
                inputs=[inp("d", "make.d", "dir")],
                outputs=[out("seed")],
            ),
            step(
                "square",
                sh(square),
                inputs=[inp("seed", "seed.seed")],
                outputs=[out("value")],
                foreach=("n", [1, 2, 3, 4]),
                parallelism=2,
                cpu_millis=500,
            ),
            step(
                "total",
                sh("cat {{ inputs.values | join(' ') }} > {{ outputs.sum }}"),
                inputs=[inp("values", "square.value", fan_in=True)],
                outputs=[out("sum")],
            ),
        ],
        target=target(cpu_millis=2000),
        outputs={"sum": "total.sum"},
    )
    path = work / "pipeline.ir.json"
    path.write_text(to_json(doc))
    return path


def environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLC_")}
    env["MLC_LOCAL_GPUS"] = ""
    env["MLC_KILL_GRACE_SECONDS"] = "0.5"
    return env


def start_apply(ir: Path, store: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlc",
            "apply",
            str(ir),
            "--store",
            str(store),
            "--format",
            "json",
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment(),
        cwd=REPO,
    )


def apply(ir: Path, store: Path, *extra: str) -> tuple[int, dict[str, Any]]:
    process = start_apply(ir, store, *extra)
    stdout, stderr = process.communicate(timeout=120)
    assert stdout, stderr
    return process.returncode, json.loads(stdout)


def outputs(report: dict[str, Any]) -> dict[str, dict[str, str]]:
    return {s["name"]: s["outputs"] for s in report["steps"]}


def wait_for(condition: Any, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.02)


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, str]]:
    """The outputs of an uninterrupted run."""
    work = tmp_path_factory.mktemp("reference")
    code, report = apply(resumable_pipeline(work), work / "store")
    assert code == 0 and report["status"] == "succeeded"
    return outputs(report)


def kill_and_resume(work: Path, delay: float | None) -> tuple[dict[str, Any], set[str]]:
    """Starts apply, `kill -9`s it (once a square item started, or after `delay` seconds),
    checks nothing it ran outlives it and every object verifies, applies again (and verifies
    again); returns the report and the steps the killed run had completed."""
    ir = resumable_pipeline(work)
    store = work / "store"
    process = start_apply(ir, store)
    if delay is None:
        wait_for(lambda: any(work.glob("started-*")))
    else:
        time.sleep(delay)
    process.kill()
    process.wait()
    # Every worker notices that mlc is gone and kills its process group.
    wait_for(lambda: not _processes_started_from(store), seconds=10)
    opened = open_store(store)
    try:
        # Whatever the moment of the kill, every object in the store hashes to its digest.
        verified = opened.verify_all()
        assert verified.ok, verified.bad
        done = {r for r in opened.list_records(RECORD_KIND)}
    finally:
        opened.close()
    code, report = apply(ir, store)
    assert code == 0, report
    opened = open_store(store)
    try:
        verified = opened.verify_all()
        assert verified.ok and verified.checked > 0, verified
    finally:
        opened.close()
    return report, done


def _processes_started_from(store: Path) -> list[int]:
    """Processes of the run: steps (their environment names the store's work directory) and
    workers (they hold a file in it open: their log), which may still be finishing a step."""
    work = str(store / "work")
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue  # gone
        if work.encode() in environ or any(f.startswith(work) for f in _open_files(entry)):
            found.append(int(entry.name))
    return found


def _open_files(process: Path) -> list[str]:
    """What a process has open (what can still be read of it)."""
    try:
        fds = list((process / "fd").iterdir())
    except OSError:
        return []
    names = []
    for fd in fds:
        with contextlib.suppress(OSError):
            names.append(os.readlink(fd))
    return names


def test_apply_after_kill_9_resumes_with_identical_outputs(
    tmp_path: Path, reference: dict[str, dict[str, str]]
) -> None:
    for trial in range(3):
        work = tmp_path / f"trial{trial}"
        work.mkdir()
        report, done = kill_and_resume(work, None)
        assert report["status"] == "succeeded"
        assert outputs(report) == reference
        statuses = {s["name"]: s["status"] for s in report["steps"]}
        # What finished before the kill is a cache hit; nothing half-done was kept.
        assert statuses["make"] == statuses["seed"] == "cached"
        assert len(done) == sum(1 for s in statuses.values() if s == "cached")


@pytest.mark.slow
def test_twenty_kills_at_random_moments_always_resume_to_the_same_outputs(
    tmp_path: Path, reference: dict[str, dict[str, str]]
) -> None:
    chooser = random.Random(20261124)
    for trial in range(20):
        work = tmp_path / f"trial{trial}"
        work.mkdir()
        report, _ = kill_and_resume(work, chooser.uniform(0.0, 2.5))
        assert report["status"] == "succeeded"
        assert outputs(report) == reference


def test_two_concurrent_applies_on_one_store_both_succeed(
    tmp_path: Path, reference: dict[str, dict[str, str]]
) -> None:
    ir = resumable_pipeline(tmp_path)
    store = tmp_path / "store"
    first, second = start_apply(ir, store), start_apply(ir, store)
    reports = []
    for process in (first, second):
        stdout, stderr = process.communicate(timeout=120)
        assert process.returncode == 0, stderr
        reports.append(json.loads(stdout))
    assert outputs(reports[0]) == outputs(reports[1]) == reference
    lineage = open_lineage(open_store(store))
    try:
        runs = lineage.list_runs()
    finally:
        lineage.close()
    assert sorted(r.status for r in runs) == ["succeeded", "succeeded"]


def test_ctrl_c_cancels_the_run_and_kills_its_steps(tmp_path: Path) -> None:
    doc = document(
        tmp_path,
        [
            step("long", sh(f"echo $$ > {tmp_path}/pid; sleep 60")),
        ],
    )
    ir = tmp_path / "long.ir.json"
    ir.write_text(to_json(doc))
    process = start_apply(ir, tmp_path / "store")
    wait_for(lambda: (tmp_path / "pid").exists() and (tmp_path / "pid").read_text().strip())
    process.send_signal(signal.SIGINT)
    stdout, _ = process.communicate(timeout=30)
    assert process.returncode == 130
    report = json.loads(stdout)
    assert report["status"] == "cancelled"
    assert report["steps"][0]["status"] == "cancelled"
    pid = int((tmp_path / "pid").read_text())
    wait_for(lambda: not Path(f"/proc/{pid}").exists() or _zombie(pid), seconds=10)
    lineage = open_lineage(open_store(tmp_path / "store"))
    try:
        assert lineage.find_run(report["run_id"]).status == "cancelled"
    finally:
        lineage.close()


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    except OSError:
        return True


def apply_until(tmp_path: Path, steps: list[Step], flag: str) -> tuple[Path, subprocess.Popen[str]]:
    """Starts applying `steps` and waits until one of them creates `tmp_path/flag`."""
    ir = tmp_path / "pipeline.ir.json"
    ir.write_text(to_json(document(tmp_path, steps)))
    store = tmp_path / "store"
    process = start_apply(ir, store)
    wait_for(lambda: (tmp_path / flag).exists())
    return store, process


def mlc_logs(store: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`mlc logs RUN …` of the store's only run."""
    lineage = open_lineage(open_store(store))
    try:
        (run,) = lineage.list_runs()
    finally:
        lineage.close()
    return subprocess.run(
        [sys.executable, "-m", "mlc", "logs", run.run_id, *args, "--store", str(store)],
        capture_output=True,
        text=True,
        env=environment(),
        cwd=REPO,
        check=False,
        timeout=60,
    )


def test_mlc_logs_shows_a_running_step_its_log_so_far(tmp_path: Path) -> None:
    chatty = step("chatty", sh(f"echo hello from chatty; touch {tmp_path}/said; sleep 60"))
    store, process = apply_until(tmp_path, [chatty], "said")
    try:
        logs = mlc_logs(store, "chatty")
        assert logs.returncode == 0, logs.stderr
        assert logs.stdout.startswith("--- mlc: chatty attempt 1 started ")
        assert logs.stdout.splitlines()[1:] == ["hello from chatty"]
        assert "is still running" in logs.stderr
    finally:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=30)


def test_mlc_logs_follow_prints_a_running_step_until_it_ends(tmp_path: Path) -> None:
    script = f"echo one; touch {tmp_path}/said; sleep 1; echo two; sleep 0.5; echo three"
    store, process = apply_until(
        tmp_path, [step("slow", sh(script)), step("after", sh("echo later"))], "said"
    )
    try:
        logs = mlc_logs(store, "slow", "-f")
        assert logs.returncode == 0, logs.stderr
        assert logs.stdout.splitlines()[1:] == ["one", "two", "three"]
        assert "following it until it ends" in logs.stderr
    finally:
        stdout, _ = process.communicate(timeout=60)
    assert json.loads(stdout)["status"] == "succeeded"


def mlc_json(store: Path, *args: str) -> Any:
    """What `mlc ARGS --store STORE --format json` prints (it must succeed)."""
    completed = subprocess.run(
        [sys.executable, "-m", "mlc", *args, "--store", str(store), "--format", "json"],
        capture_output=True,
        text=True,
        env=environment(),
        cwd=REPO,
        check=False,
        timeout=60,
    )
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout)


def test_a_run_killed_with_kill_9_is_shown_interrupted_and_the_next_run_removes_its_work(
    tmp_path: Path,
) -> None:
    long = step("long", sh(f"touch {tmp_path}/started; sleep 60"))
    store, process = apply_until(tmp_path, [long], "started")
    (listed,) = mlc_json(store, "runs")
    assert listed["status"] == "running"  # alive: its coordinator holds the run's lease
    run_id = listed["run_id"]
    assert (store / "work" / run_id).is_dir()

    process.kill()
    process.wait()
    wait_for(lambda: not _processes_started_from(store), seconds=10)
    (listed,) = mlc_json(store, "runs")
    assert listed["status"] == "interrupted"
    assert mlc_json(store, "runs", "show", run_id)["status"] == "interrupted"

    # The next run on the store removes the killed run's work directory, however recent.
    quick = tmp_path / "quick.ir.json"
    quick.write_text(to_json(document(tmp_path, [step("quick", sh("true"))])))
    code, report = apply(quick, store)
    assert code == 0, report
    assert not (store / "work" / run_id).exists()
    assert {r["run_id"]: r["status"] for r in mlc_json(store, "runs")} == {
        run_id: "interrupted",
        report["run_id"]: "succeeded",
    }
