"""`mlc apply`, `mlc plan` and `mlc lock` on spec files: output, exit codes, and clear errors
(never a traceback) for bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mlc.cli.main import main
from mlc.ir.serialize import to_json

from tests.local.environment import isolate
from tests.runtime.builders import document, out, sh, step

SPEC = """mlspec 1

pipeline counting {{
  dataset words {{
    uri = "words.txt"
    version = {version}
  }}

  step count {{
    run = ["sh", "-c", "wc -w < {{{{ inputs.text }}}} > {{{{ outputs.n }}}}"]
    inputs {{ text = words }}
    outputs {{ n: file }}
    resources {{ cpu = 1, memory = 64Mi }}
  }}

  step shout {{
    run = ["sh", "-c", "echo counted $(cat {{{{ inputs.n }}}}); exit {{{{ params.code }}}}"]
    inputs {{ n = count.n }}
    resources {{ cpu = 1, memory = 64Mi }}
  }}

  params {{ code: int = 0 }}

  outputs {{ n = count.n }}
}}
"""


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    isolate(monkeypatch, tmp_path, ir_cache=True)


def write_spec(directory: Path, version: str = "latest") -> Path:
    (directory / "words.txt").write_text("one two three\n")
    spec = directory / "pipeline.mlspec"
    spec.write_text(SPEC.format(version=version))
    return spec


def locked_spec(directory: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """The test spec, its dataset locked: ready to apply."""
    spec = write_spec(directory)
    assert run_mlc(capsys, "lock", str(spec))[0] == 0
    return spec


def applied_run(directory: Path, capsys: pytest.CaptureFixture[str]) -> str:
    """The id of a successful run of the test spec."""
    code, out, err = run_mlc(
        capsys, "apply", str(locked_spec(directory, capsys)), "--format", "json"
    )
    assert code == 0, err
    run_id: str = json.loads(out)["run_id"]
    return run_id


def run_mlc(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return code, captured.out, captured.err


def test_a_first_apply_writes_the_lock_entry_of_a_latest_dataset_and_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = write_spec(tmp_path)
    code, out, err = run_mlc(capsys, "apply", str(spec))
    assert code == 0, err
    assert out.splitlines()[-1].split(":")[1].strip().startswith("2 ran, 0 cached, 0 failed in ")
    (note,) = [line for line in err.splitlines() if line.startswith("mlc.lock:")]
    assert note.startswith("mlc.lock: added `words` (latest) = sha256:")
    lock = (tmp_path / "mlc.lock").read_text()
    assert '[datasets.words]\nuri = "words.txt"\nversion = "latest"\ndigest = "sha256:' in lock
    assert note.endswith(lock.split('digest = "')[1].split('"')[0])

    # The entry is then used as it is, even once the data moved on; `mlc lock` or
    # `--update-lock` moves it.
    (tmp_path / "words.txt").write_text("one two three four\n")
    code, out, err = run_mlc(capsys, "apply", str(spec))
    assert code == 0 and "mlc.lock:" not in err
    assert "dataset `words` changed since it was locked; using the locked version" in out
    assert (tmp_path / "mlc.lock").read_text() == lock
    code, out, err = run_mlc(capsys, "apply", str(spec), "--update-lock")
    assert code == 0
    assert "mlc.lock: updated `words` (latest) = sha256:" in err
    assert (tmp_path / "mlc.lock").read_text() != lock


def test_apply_locked_refuses_to_write_the_lock(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = write_spec(tmp_path)
    code, _, err = run_mlc(capsys, "apply", str(spec), "--locked")
    assert code == 1
    assert "error: mlc.lock has no up-to-date entry for `words` (latest), and --locked" in err
    assert "help: run `mlc lock` on the spec and commit mlc.lock" in err
    assert not (tmp_path / "mlc.lock").exists()
    assert run_mlc(capsys, "lock", str(spec))[0] == 0
    assert run_mlc(capsys, "apply", str(spec), "--locked")[0] == 0


def test_plan_resolves_a_missing_lock_entry_as_apply_will_and_says_so_writing_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = write_spec(tmp_path)
    code, out, err = run_mlc(capsys, "plan", str(spec))
    assert code == 0, err
    assert not (tmp_path / "mlc.lock").exists()
    (note,) = [line for line in out.splitlines() if line.startswith("mlc.lock:")]
    assert note.startswith("mlc.lock: `mlc apply` will add `words` (latest) = sha256:")
    assert out.splitlines()[-1] == "0 cached, 2 will run, 0 skipped"
    code, out, _ = run_mlc(capsys, "plan", str(spec), "--format", "json")
    (entry,) = json.loads(out)["lock"]
    assert (entry["dataset"], entry["change"], entry["version"]) == ("words", "added", "latest")
    assert note.endswith(entry["digest"])

    # With --locked, the plan is refused as the run is.
    code, _, err = run_mlc(capsys, "plan", str(spec), "--locked")
    assert code == 1
    assert "error: mlc.lock has no up-to-date entry for `words` (latest), and --locked" in err

    # apply writes what the plan said; the plan then has nothing to add.
    code, _, err = run_mlc(capsys, "apply", str(spec))
    assert code == 0 and f"mlc.lock: added `words` (latest) = {entry['digest']}" in err
    code, out, _ = run_mlc(capsys, "plan", str(spec), "--locked")
    assert code == 0 and "mlc.lock" not in out
    assert out.splitlines()[-1] == "2 cached, 0 will run, 0 skipped"

    # --update-lock previews moving the entry to the data as it is now.
    (tmp_path / "words.txt").write_text("one two three four\n")
    lock = (tmp_path / "mlc.lock").read_text()
    code, out, _ = run_mlc(capsys, "plan", str(spec), "--update-lock")
    assert code == 0
    assert "`mlc apply` will update `words` (latest) = sha256:" in out
    assert f"(was {entry['digest']})" in out
    assert "count  will run  because input `text` changed" in out
    assert (tmp_path / "mlc.lock").read_text() == lock


def test_lock_check_fails_when_the_data_moved(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = write_spec(tmp_path)
    assert run_mlc(capsys, "lock", str(spec))[0] == 0
    assert run_mlc(capsys, "lock", "--check", str(spec))[0] == 0
    (tmp_path / "words.txt").write_text("four five\n")
    code, out, _ = run_mlc(capsys, "lock", "--check", str(spec))
    assert code == 1
    assert "words: changed sha256:" in out and "is out of date" in out
    # --check changes nothing.
    assert run_mlc(capsys, "lock", "--check", str(spec))[0] == 1


def test_a_digest_that_does_not_match_the_data_stops_the_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wrong = "sha256:" + "0" * 64
    spec = write_spec(tmp_path, f'"{wrong}"')
    code, out, err = run_mlc(capsys, "apply", str(spec))
    assert code == 1
    assert "error: dataset `words` changed under its pin\n  --> " in err
    assert f"= note: the spec pins {wrong}\n  = note: the data at `words.txt` is sha256:" in err
    assert out == ""


def test_a_failed_step_shows_its_error_and_log(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = locked_spec(tmp_path, capsys)
    code, out, err = run_mlc(capsys, "apply", str(spec), "--param", "code=4")
    assert code == 1
    assert "error: step `shout` failed: exited with code 4" in err
    assert "  | counted 3" in err
    assert " failed: 1 ran, 0 cached, 1 failed in " in out.splitlines()[-1]


def test_logs_takes_a_bare_step_name_or_its_lineage_id(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_id = applied_run(tmp_path, capsys)
    for name in ("step:shout", "shout"):
        code, out, err = run_mlc(capsys, "logs", run_id, name)
        assert code == 0, err
        assert "counted 3" in out
    code, _, err = run_mlc(capsys, "logs", run_id, "nothing")
    assert code == 1
    assert f"run `{run_id}` has no step `nothing` (steps: `count`, `shout`)" in err


def test_steps_are_shown_by_name_and_a_typo_gets_the_closest_one_suggested(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_id = applied_run(tmp_path, capsys)
    code, out, _ = run_mlc(capsys, "runs", "show", run_id)
    assert code == 0
    table = out.split("\n\n")[-1].splitlines()
    assert [line.split()[0] for line in table] == ["STEP", "count", "shout"]
    code, _, err = run_mlc(capsys, "logs", run_id, "shuot")
    assert code == 1
    assert f"run `{run_id}` has no step `shuot`; did you mean `shout`? (steps: " in err
    code, out, _ = run_mlc(capsys, "lineage", f"{run_id}:count.n")
    assert code == 0
    assert out.splitlines()[0].endswith(f"<- step {run_id} count.n")
    code, _, err = run_mlc(capsys, "lineage", f"{run_id}:cuont.n")
    assert code == 1 and "has no step `cuont`; did you mean `count`?" in err
    code, _, err = run_mlc(capsys, "lineage", f"{run_id}:count.N")
    assert code == 1
    assert (
        f"step `count` of run `{run_id}` has no output `N`; did you mean `n`? (outputs: `n`)" in err
    )


SWEEP = """mlspec 1

pipeline sweep {{
  params {{
    rates: list[float] = {rates}
  }}
  step train foreach rate in params.rates {{
    run = ["sh", "-c", "echo {{{{ rate }}}} > {{{{ outputs.model }}}}"]
    outputs {{ model: model }}
  }}
  outputs {{ models = train.model }}
}}
"""


def test_adding_an_item_to_a_sweep_runs_only_the_new_item(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = tmp_path / "sweep.mlspec"
    spec.write_text(SWEEP.format(rates="[0.3, 0.1]"))
    code, out, err = run_mlc(capsys, "apply", str(spec), "--format", "json")
    assert code == 0, err
    spec.write_text(SWEEP.format(rates="[0.3, 0.1, 0.03]"))
    code, out, _ = run_mlc(capsys, "plan", str(spec))
    assert code == 0
    assert [line.split()[:2] for line in out.splitlines()[1:4]] == [
        ["train[0]", "cached"],
        ["train[1]", "cached"],
        ["train[2]", "will"],
    ]
    spec.write_text(SWEEP.format(rates="[0.3, 0.2, 0.03]"))
    code, out, _ = run_mlc(capsys, "apply", str(spec), "--format", "json")
    report = json.loads(out)
    assert [(s["name"], s["status"]) for s in report["steps"]] == [
        ("train[0]", "cached"),
        ("train[1]", "ran"),
        ("train[2]", "ran"),
    ]
    assert report["steps"][1]["reasons"] == ["foreach item `rate` changed (0.1 → 0.2)"]


def test_apply_json_prints_only_the_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = locked_spec(tmp_path, capsys)
    code, out, _ = run_mlc(capsys, "apply", str(spec), "--format", "json")
    assert code == 0
    report = json.loads(out)
    assert set(report) >= {"run_id", "status", "steps"}
    count = report["steps"][0]
    assert set(count) >= {"name", "status", "cache_key", "outputs", "attempts", "duration_s"}
    assert (count["name"], count["status"], count["attempts"]) == ("count", "ran", 1)
    assert count["outputs"]["n"] == report["outputs"]["n"]
    assert count["exit_code"] == 0
    # One line per step, so that long reports stay readable and grep-able.
    step_lines = [line for line in out.splitlines() if line.startswith("    {")]
    assert [json.loads(line.rstrip(",")) for line in step_lines] == report["steps"]


def test_plan_json_lists_every_step(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = locked_spec(tmp_path, capsys)
    code, out, _ = run_mlc(capsys, "plan", str(spec), "--format", "json")
    assert code == 0
    plan = json.loads(out)
    assert [(s["name"], s["action"]) for s in plan["steps"]] == [("count", "run"), ("shout", "run")]
    assert plan["summary"] == {"cached": 0, "run": 2, "skip": 0}


def test_an_unknown_rerun_step_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = write_spec(tmp_path)
    code, _, err = run_mlc(capsys, "apply", str(spec), "--rerun", "cuont")
    assert code == 1
    assert "error: --rerun names no step `cuont` (steps: `count`, `shout`, or `all`)" in err


def test_a_spec_with_errors_runs_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = tmp_path / "broken.mlspec"
    spec.write_text('mlspec 1\npipeline p { step s { run = ["true"] inputs { x = nowhere.y } } }\n')
    code, out, err = run_mlc(capsys, "apply", str(spec))
    assert code == 1
    assert "has errors; nothing was run" in err and out == ""


def test_apply_runs_a_compiled_ir_document(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ir = tmp_path / "pipeline.ir.json"
    ir.write_text(
        to_json(
            document(tmp_path, [step("hello", sh("echo hi > {{ outputs.t }}"), outputs=[out("t")])])
        )
    )
    code, printed, _ = run_mlc(capsys, "apply", str(ir))
    assert code == 0 and "hello: ran" in printed
    code, _, err = run_mlc(capsys, "apply", str(ir), "--param", "x=1")
    assert code == 1 and "params are bound when the IR is compiled" in err


def test_a_target_whose_backend_cannot_run_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import types

    from mlc.cli import backends
    from mlc.ir.model import Target

    checker = types.SimpleNamespace(description=backends.describe("kubernetes"))
    monkeypatch.setattr(backends, "load", lambda name: checker)
    doc = document(tmp_path, [step("hello", sh("true"))])
    doc = doc.model_copy(update={"target": Target(name="cluster", backend="checker")})
    ir = tmp_path / "pipeline.ir.json"
    ir.write_text(to_json(doc))
    code, _, err = run_mlc(capsys, "apply", str(ir))
    assert code == 1
    assert "backend `checker` can check and compile pipelines but cannot run them" in err


def test_a_kubernetes_target_refuses_a_store_its_pods_cannot_reach_before_anything_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from mlc.ir.model import Target

    doc = document(tmp_path, [step("hello", sh("true"), image="busybox:1")])
    doc = doc.model_copy(update={"target": Target(name="cluster", backend="kubernetes")})
    ir = tmp_path / "pipeline.ir.json"
    ir.write_text(to_json(doc))
    code, _, err = run_mlc(capsys, "apply", str(ir), "--store", str(tmp_path / "store"))
    assert code == 1
    assert "is a directory on this machine, which pods cannot reach" in err
    assert "Traceback" not in err
