"""`mlc plan` refuses for every reason `mlc apply` would, with the same words, all at once:
a step that can never fit the machine, a missing module or function, missing data, a missing
secret."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlc.cli.main import main

from tests.local.environment import isolate

SPEC = """mlspec 1

pipeline troubled {
  dataset raw {
    uri = "data/raw.csv"
    version = latest
  }

  step huge {
    run = ["sh", "-c", "cat {{ inputs.raw }} > {{ outputs.copy }}"]
    inputs { raw = raw }
    outputs { copy: file }
    resources { cpu = 4096, memory = 64Mi }
  }

  step missing_module {
    call = "nowhere.steps:run"
    inputs { copy = huge.copy }
    resources { cpu = 1, memory = 64Mi }
  }

  step with_secret {
    run = ["sh", "-c", "true"]
    secrets { TOKEN = "vault/token" }
    resources { cpu = 1, memory = 64Mi }
  }

  outputs { copy = huge.copy }
}
"""


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    isolate(monkeypatch, tmp_path)


def run_mlc(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return code, captured.out, captured.err


def test_plan_refuses_with_the_same_problems_as_apply_all_at_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = tmp_path / "pipeline.mlspec"
    spec.write_text(SPEC)
    code, plan_out, plan_err = run_mlc(capsys, "plan", str(spec))
    assert code == 1 and plan_out == ""
    for problem in (
        "step `huge` can never run here: it asks for 4096 CPUs",
        "step `missing_module` calls `nowhere.steps:run`, but no module `nowhere.steps`",
        "secrets are missing from the environment: `vault/token` (step `with_secret`)",
        "dataset `raw`: ",
    ):
        assert problem in plan_err
    code, _, apply_err = run_mlc(capsys, "apply", str(spec))
    assert code == 1
    assert apply_err == plan_err


def test_a_plan_that_passes_preflight_is_printed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = tmp_path / "pipeline.mlspec"
    spec.write_text(
        SPEC.replace("cpu = 4096", "cpu = 1")
        .replace('call = "nowhere.steps:run"', 'run = ["true"]')
        .replace('    secrets { TOKEN = "vault/token" }\n', "")
    )
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "raw.csv").write_text("a,b\n")
    assert run_mlc(capsys, "lock", str(spec))[0] == 0
    code, out, err = run_mlc(capsys, "plan", str(spec))
    assert code == 0, err
    assert "0 cached, 3 will run, 0 skipped" in out
