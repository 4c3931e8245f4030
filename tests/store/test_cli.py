"""The store's commands: `mlc data`, `mlc gc`, `mlc runs`, `mlc lineage`, `mlc logs`."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from mlc.cli.main import main
from mlc.store import digest_bytes, open_store
from mlc.store.lineage import Dataset, Output, Run, StepExecution, open_lineage

from .conftest import S3Server, write_tree

RUN = "20260301T101500.000Z-c0ffee"


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


def test_data_add_prints_the_version(capsys: pytest.CaptureFixture[str], project: Path) -> None:
    write_tree(project / "data", {"a.csv": "1\n", "b/c.csv": "2\n"})
    code, out, _ = mlc(capsys, "data", "add", "data")
    assert code == 0
    version = open_store(".mlc").snapshot("data")
    assert out.splitlines() == [
        f"data: {version.digest}",
        "  directory, 2 files, 4 B; 2 hashed, 0 unchanged",
    ]
    code, out, _ = mlc(capsys, "data", "add", "data", "--format", "json")
    document = json.loads(out)
    assert document["digest"] == version.digest
    assert (document["kind"], document["file_count"], document["hashed_files"]) == ("dir", 2, 0)


def test_data_add_of_a_missing_path_is_a_user_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = mlc(capsys, "data", "add", "nowhere")
    assert code == 1
    assert err == "error: nowhere does not exist\n"


def test_data_verify_get_and_ls(capsys: pytest.CaptureFixture[str], project: Path) -> None:
    write_tree(project / "data", {"a.csv": "1\n"})
    mlc(capsys, "data", "add", "data")
    digest = open_store(".mlc").snapshot("data").digest
    assert mlc(capsys, "data", "verify") == (0, "checked 2 objects: all good\n", "")
    code, out, _ = mlc(capsys, "data", "get", digest, "copy")
    assert code == 0 and (project / "copy" / "a.csv").read_text() == "1\n"
    code, out, _ = mlc(capsys, "data", "ls", digest)
    assert out == f"644             2  {digest_bytes(b'1' + bytes([10]))}  a.csv\n"
    code, _, err = mlc(capsys, "data", "get", digest, "copy")
    assert code == 1 and "already exists" in err


def test_data_verify_reports_corruption(capsys: pytest.CaptureFixture[str], project: Path) -> None:
    store = open_store(".mlc")
    digest = store.put_bytes(b"precious")
    path = store.object_path(digest)  # type: ignore[attr-defined]
    os.chmod(path, 0o644)
    Path(path).write_bytes(b"rotten")
    code, out, _ = mlc(capsys, "data", "verify")
    assert code == 1
    assert f"bad  {digest}: content hashes to {digest_bytes(b'rotten')}" in out
    assert out.endswith("checked 1 object: 1 bad\n")


def test_commands_on_a_missing_store_fail_cleanly(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["runs"], ["gc"], ["lineage", RUN + ":a.b"], ["logs", RUN, "a"]):
        code, _, err = mlc(capsys, *argv)
        assert code == 1, argv
        assert err.startswith("error: no mlc store at "), argv


def record(project: Path) -> dict[str, str]:
    store = open_store(project / ".mlc")
    raw = store.put_bytes(b"raw")
    model = store.put_bytes(b"model")
    log = store.put_bytes(b"epoch 1: loss 0.5\n")
    lineage = open_lineage(store)
    lineage.start_run(
        Run(
            RUN,
            "iris",
            target="laptop",
            backend="local",
            git_commit="abcdef0123456789",
            git_dirty=False,
            params={"n": 3},
            started_at=1_700_000_000.0,
        )
    )
    lineage.record_dataset(Dataset(raw, "raw", "data/raw.csv"))
    lineage.record_step(
        StepExecution(
            RUN,
            "train",
            "ran",
            exit_code=0,
            started_at=1_700_000_001.0,
            ended_at=1_700_000_066.0,
            log_ref=log,
            inputs={"raw": raw},
            outputs={"model": Output(model)},
        )
    )
    lineage.finish_run(RUN, "succeeded", 1_700_000_070.0)
    lineage.close()
    return {"raw": raw, "model": model, "log": log}


def test_runs_lists_and_shows(capsys: pytest.CaptureFixture[str], project: Path) -> None:
    record(project)
    code, out, _ = mlc(capsys, "runs")
    lines = out.splitlines()
    assert lines[0].split() == [
        "RUN",
        "PIPELINE",
        "TARGET",
        "BACKEND",
        "STATUS",
        "STARTED",
        "DURATION",
        "COMMIT",
    ]
    assert lines[1].split()[:5] == [RUN, "iris", "laptop", "local", "succeeded"]
    assert lines[1].split()[-2:] == ["1m10s", "abcdef0123"]
    code, out, _ = mlc(capsys, "runs", "show", "20260301")
    assert code == 0
    assert f"run:      {RUN}" in out
    assert "params:   n=3" in out
    assert "target:   laptop\nbackend:  local\n" in out
    assert "train  ran     1         0     1m05s     model=sha256:" in out
    code, out, _ = mlc(capsys, "runs", "show", RUN, "--format", "json")
    document = json.loads(out)
    assert document["steps"][0]["outputs"]["model"]["kind"] == "file"
    code, _, err = mlc(capsys, "runs", "show")
    assert code == 1 and "needs a run id" in err


def test_lineage_by_run_step_output(capsys: pytest.CaptureFixture[str], project: Path) -> None:
    digests = record(project)
    code, out, _ = mlc(capsys, "lineage", f"{RUN}:train.model")
    assert code == 0
    assert out.splitlines() == [
        f"{digests['model'][:19]} (file)  <- step {RUN} train.model",
        "│     params: none",
        "│     code: -; commit abcdef0123",
        "│     ran on local at -; image -",
        f"└── raw: {digests['raw']} (file)  <- dataset raw <data/raw.csv>",
    ]
    code, out, _ = mlc(capsys, "lineage", digests["model"], "--format", "json")
    assert json.loads(out)["inputs"]["raw"]["source"] == "dataset"
    code, _, err = mlc(capsys, "lineage", f"{RUN}:train.weights")
    assert code == 1 and "no output `weights`" in err


def test_logs_prints_the_stored_log(capsys: pytest.CaptureFixture[str], project: Path) -> None:
    record(project)
    assert mlc(capsys, "logs", RUN, "train") == (0, "epoch 1: loss 0.5\n", "")
    assert mlc(capsys, "logs", RUN, "step:train") == (0, "epoch 1: loss 0.5\n", "")
    code, _, err = mlc(capsys, "logs", RUN, "evaluate")
    assert code == 1 and "has no step `evaluate`" in err


def test_a_missing_step_of_a_wide_run_lists_a_few_steps_and_where_to_see_all(
    capsys: pytest.CaptureFixture[str], project: Path
) -> None:
    lineage = open_lineage(open_store(project / ".mlc"))
    lineage.start_run(Run(RUN, "sweep", started_at=1_700_000_000.0))
    for item in range(5000):
        lineage.record_step(StepExecution(RUN, f"step:work[{item}]", "ran"))
    lineage.finish_run(RUN, "succeeded", 1_700_000_070.0)
    lineage.close()
    code, _, err = mlc(capsys, "logs", RUN, "wrk[7]")
    assert code == 1
    assert err.startswith(f"error: run `{RUN}` has no step `wrk[7]`; did you mean `work[7]`? ")
    assert err.count("`work[") == 11  # the suggestion and ten of the steps
    assert err.endswith(f", and 4990 more: `mlc runs show {RUN}`)\n")


def test_gc_keeps_lock_file_digests_and_recent_run_outputs(
    capsys: pytest.CaptureFixture[str], project: Path
) -> None:
    digests = record(project)
    store = open_store(".mlc")
    pinned = store.put_bytes(b"pinned in the lock file")
    garbage = store.put_bytes(b"garbage")
    (project / "mlc.lock").write_text(f'raw = "{pinned}"\n')
    code, out, _ = mlc(capsys, "gc", "--grace", "0s", "--dry-run", "--format", "json")
    report = json.loads(out)
    assert report["removed_digests"] == [garbage]
    assert store.has(garbage)
    extra = store.put_bytes(b"kept by --keep")
    code, out, _ = mlc(capsys, "gc", "--grace", "0s", "--keep", extra)
    assert code == 0
    assert out.startswith("warning: a grace period under 1h")
    assert "removed 1 object (7 B)" in out
    assert not store.has(garbage)
    for digest in (pinned, extra, digests["model"], digests["log"], digests["raw"]):
        assert store.has(digest)


def test_gc_rejects_a_bad_grace_period(capsys: pytest.CaptureFixture[str]) -> None:
    open_store(".mlc")
    code, _, err = mlc(capsys, "gc", "--grace", "7 days")
    assert code == 1 and "invalid duration" in err


@pytest.mark.s3
def test_commands_work_on_an_s3_store_with_the_endpoint_from_the_environment(
    capsys: pytest.CaptureFixture[str],
    project: Path,
    s3_server: S3Server,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server.endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("XDG_CACHE_HOME", str(project / "cache"))
    monkeypatch.setenv("MLC_STORE", f"s3://{s3_server.bucket}/cli-{project.name}")
    write_tree(project / "data", {"a.csv": "1\n"})
    code, out, _ = mlc(capsys, "data", "add", "data", "--format", "json")
    assert code == 0
    digest = json.loads(out)["digest"]
    assert mlc(capsys, "data", "verify") == (0, "checked 2 objects: all good\n", "")
    code, _, _ = mlc(capsys, "data", "get", digest, "copy")
    assert code == 0 and (project / "copy" / "a.csv").read_text() == "1\n"
    assert mlc(capsys, "runs") == (0, "no runs recorded yet\n", "")
