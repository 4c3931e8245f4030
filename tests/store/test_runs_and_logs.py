"""`mlc runs` and `mlc logs` answer the questions a user asks of them: steps in the DAG's order
every time, a filter that matches no pipeline, the log of a cache hit, a step yet to start
(`-f` waits for it), a step of a run that was interrupted."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from mlc.cli.main import main
from mlc.store import open_store
from mlc.store.base import Store
from mlc.store.leases import RunLease
from mlc.store.lineage import Output, Run, StepExecution, open_lineage

FIRST = "20260301T101500.000Z-aaaaaa"
SECOND = "20260301T111500.000Z-bbbbbb"


@pytest.fixture(autouse=True)
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLC_STORE", raising=False)
    return tmp_path


def mlc(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


def record_two_runs(project: Path) -> None:
    """A first run that ran prepare → train[0..10] → pick and a `report` that reads nothing,
    its steps started in a jumbled order; a second run where all but `report` were cached."""
    store = open_store(project / ".mlc", create=True)
    data = store.put_bytes(b"data")
    log = store.put_bytes(b"training\n")
    models = [store.put_bytes(f"model {i}".encode()) for i in range(11)]
    lineage = open_lineage(store)
    for run_id, status in ((FIRST, "ran"), (SECOND, "cached")):
        lineage.start_run(Run(run_id, "sweep", target="laptop", backend="local"))
        ran = status == "ran"
        steps = [
            StepExecution(run_id, "step:report", "ran", started_at=5.0),
            StepExecution(
                run_id,
                "step:pick",
                status,
                started_at=4.0,
                inputs={f"models[{i}]": m for i, m in enumerate(models)},
                outputs={"best": Output(models[3])},
            ),
            *(
                StepExecution(
                    run_id,
                    f"step:train[{i}]",
                    status,
                    started_at=3.0 - i / 100,
                    inputs={"data": data},
                    outputs={"model": Output(m)},
                    log_ref=log if ran else "",
                )
                for i, m in enumerate(models)
            ),
            StepExecution(
                run_id, "step:prepare", status, started_at=1.0, outputs={"data": Output(data)}
            ),
        ]
        lineage.record_steps(steps)
        lineage.finish_run(run_id, "succeeded", 6.0)
    lineage.close()
    store.close()


def test_runs_show_lists_steps_in_the_dags_order(
    capsys: pytest.CaptureFixture[str], project: Path
) -> None:
    record_two_runs(project)
    expected = ["prepare", *(f"train[{i}]" for i in range(11)), "pick", "report"]
    for run_id in (FIRST, SECOND):
        code, out, _ = mlc(capsys, "runs", "show", run_id)
        assert code == 0
        table = out.split("\n\n")[1].splitlines()[1:]
        assert [line.split()[0] for line in table] == expected


def test_runs_of_a_pipeline_that_never_ran_is_an_error(
    capsys: pytest.CaptureFixture[str], project: Path
) -> None:
    record_two_runs(project)
    code, _, err = mlc(capsys, "runs", "--pipeline", "swep")
    assert code == 1
    assert err == (
        "error: no runs of a pipeline `swep`; did you mean `sweep`? (pipelines with runs: "
        "`sweep`)\n"
    )


def test_the_log_of_a_cache_hit_is_the_log_of_the_run_that_made_its_output(
    capsys: pytest.CaptureFixture[str], project: Path
) -> None:
    record_two_runs(project)
    code, out, err = mlc(capsys, "logs", SECOND, "train[4]")
    assert code == 0
    assert out == "training\n"
    assert err == (
        f"note: `train[4]` was cached in run `{SECOND}`; this is the log of run `{FIRST}`, "
        f"which made its output (`mlc logs {FIRST} train[4]`)\n"
    )


@pytest.fixture
def running(project: Path) -> Iterator[Store]:
    """A run going on (its lease held, as its `mlc apply` holds it) that has recorded
    `train[0]` and not `train[4]`."""
    store = open_store(project / ".mlc", create=True)
    lineage = open_lineage(store)
    lineage.start_run(Run(FIRST, "sweep", target="laptop", backend="local"))
    lineage.record_step(StepExecution(FIRST, "step:train[0]", "ran", started_at=1.0))
    lineage.close()
    lease = RunLease(store, FIRST)
    lease.acquire()
    yield store
    lease.release()
    store.close()


def test_a_step_of_a_running_run_that_has_not_started_says_so(
    capsys: pytest.CaptureFixture[str], running: Store
) -> None:
    code, _, err = mlc(capsys, "logs", FIRST, "train[4]")
    assert code == 1
    assert err == (
        f"error: `train[4]` of run `{FIRST}` has not started yet (the run is still going): "
        f"`mlc logs -f {FIRST} train[4]` follows it once it runs\n"
    )


def test_following_a_step_that_has_not_started_waits_for_it(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, running: Store
) -> None:
    waits: list[float] = []

    def wait(seconds: float) -> None:
        # While `mlc logs -f` waits, the step starts and ends (too fast to be seen live).
        waits.append(seconds)
        if len(waits) == 3:
            log = running.put_bytes(b"item 4\n")
            lineage = open_lineage(running)
            lineage.record_step(StepExecution(FIRST, "step:train[4]", "ran", log_ref=log))
            lineage.close()

    monkeypatch.setattr("mlc.cli.logs.time.sleep", wait)
    code, out, err = mlc(capsys, "logs", "-f", FIRST, "train[4]")
    assert (code, out) == (0, "item 4\n")
    assert len(waits) == 3
    assert err == (
        f"note: `train[4]` of run `{FIRST}` has not started yet; waiting for it to start, then "
        "following it (Ctrl-C to stop)\n"
    )


def test_following_a_step_of_a_run_that_ends_without_it_stops_waiting(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, running: Store
) -> None:
    def run_ends(seconds: float) -> None:
        lineage = open_lineage(running)
        lineage.finish_run(FIRST, "failed", 9.0)
        lineage.close()

    monkeypatch.setattr("mlc.cli.logs.time.sleep", run_ends)
    code, _, err = mlc(capsys, "logs", "-f", FIRST, "train[44]")
    assert code == 1
    assert err.splitlines()[1].startswith(f"error: run `{FIRST}` has no step `train[44]`")


def test_a_step_of_an_interrupted_run_is_not_waited_for(
    capsys: pytest.CaptureFixture[str], project: Path
) -> None:
    store = open_store(project / ".mlc", create=True)
    lineage = open_lineage(store)
    lineage.start_run(Run(FIRST, "sweep", target="laptop", backend="local"))  # no lease: gone
    lineage.close()
    for follow in ([], ["-f"]):
        code, _, err = mlc(capsys, "logs", *follow, FIRST, "train[4]")
        assert code == 1
        assert err == (
            f"error: run `{FIRST}` recorded no `train[4]`: the run was interrupted before it "
            f"ended (its `mlc apply` is gone; see `mlc runs show {FIRST}`)\n"
        )
