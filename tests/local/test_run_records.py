"""What `mlc runs show` and `mlc data get` tell a user about a run: the real cause of a failed
step, and stored data on standard output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mlc.cli.main import main

from tests.local.environment import isolate

SPEC = """mlspec 1

pipeline leaky {
  step link {
    run = ["ln", "-s", "/etc/hostname", "{{ outputs.out }}"]
    outputs { out: file }
  }
  step write {
    run = ["sh", "-c", "printf 'hello\\\\n' > \\"$0\\"", "{{ outputs.greeting }}"]
    outputs { greeting: file }
  }
  outputs { out = link.out, greeting = write.greeting }
}
"""


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    isolate(monkeypatch, tmp_path, chdir=True)


def run_mlc(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return code, captured.out, captured.err


def applied(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    (tmp_path / "pipeline.mlspec").write_text(SPEC)
    code, out, _ = run_mlc(capsys, "apply", "pipeline.mlspec", "--keep-going", "--format", "json")
    assert code == 1
    report: dict[str, object] = json.loads(out)
    return report


def test_a_step_that_failed_after_its_command_succeeded_shows_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_id = str(applied(tmp_path, capsys)["run_id"])
    code, out, _ = run_mlc(capsys, "runs", "show", run_id)
    assert code == 0
    row, cause_line = [line for line in out.splitlines() if line.startswith("link ")]
    assert row.split()[1:6] == ["failed", "1", "0", "(then", "failed)"]
    cause = "link failed: output `out`: `outputs/out` is a symbolic link to `/etc/hostname`"
    assert cause_line.startswith(cause)

    code, out, _ = run_mlc(capsys, "runs", "show", run_id, "--format", "json")
    steps = {s["step_id"]: s for s in json.loads(out)["steps"]}
    assert steps["step:link"]["exit_code"] == 0
    assert steps["step:link"]["error"].startswith("output `out`: `outputs/out` is a symbolic")
    assert steps["step:write"]["error"] is None


def test_data_get_to_dash_writes_the_file_to_standard_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    greeting = str(dict(applied(tmp_path, capsys)["outputs"])["greeting"])  # type: ignore[call-overload]
    code, out, _ = run_mlc(capsys, "data", "get", greeting, "-")
    assert (code, out) == (0, "hello\n")
    assert not (tmp_path / "-").exists()


def test_data_get_to_dash_refuses_a_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder" / "a").write_text("a")
    code, out, _ = run_mlc(capsys, "data", "add", "folder", "--format", "json")
    digest = json.loads(out)["digest"]
    code, out, err = run_mlc(capsys, "data", "get", digest, "-")
    assert (code, out) == (1, "")
    assert "is a directory; give a folder to recreate it in" in err
