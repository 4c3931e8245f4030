"""A project's configuration (`mlc.toml`, or `[tool.mlc]` in `pyproject.toml`) and its store,
found from any folder of the project the way git finds `.git`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mlc.cli.main import main

from tests.local.environment import isolate

REPOSITORY = Path(__file__).resolve().parents[2]

SPEC = """mlspec 1

pipeline hello {
  step greet {
    image = "python:3.12"
    run = ["sh", "-c", "echo hi > {{ outputs.text }}"]
    outputs { text: file }
    resources { cpu = 1, memory = 64Mi }
  }

  outputs { text = greet.text }
}

target laptop {
  backend = local
  ignore_unsupported = ["image"]
}
"""

BROKEN = "mlspec 1\n\npipeline broken {\n  step s { call = }\n}\n"
UNFORMATTED = "mlspec 1\npipeline   ugly {\n}\n"


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    isolate(monkeypatch, tmp_path, store=False)


def run_mlc(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return code, captured.out, captured.err


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A git project: `pipelines/hello/pipeline.mlspec` and a broken `corpus/`."""
    root = tmp_path / "project"
    (root / ".git").mkdir(parents=True)
    (root / "pipelines" / "hello").mkdir(parents=True)
    (root / "pipelines" / "hello" / "pipeline.mlspec").write_text(SPEC)
    (root / "corpus").mkdir()
    (root / "corpus" / "broken.mlspec").write_text(BROKEN)
    (root / "corpus" / "ugly.mlspec").write_text(UNFORMATTED)
    monkeypatch.chdir(root)
    return root


def test_exclude_keeps_lint_and_fmt_out_of_a_folder(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "mlc.toml").write_text('exclude = ["corpus"]\n')
    code, _, err = run_mlc(capsys, "lint")
    assert code == 0, err
    assert "1 file checked, no problems" in err
    assert run_mlc(capsys, "fmt")[0] == 0
    assert (project / "corpus" / "ugly.mlspec").read_text() == UNFORMATTED
    # A file named on the command line is checked all the same.
    assert run_mlc(capsys, "lint", "corpus/broken.mlspec")[0] == 1


def test_exclude_is_relative_to_the_configuration_not_the_working_folder(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (project / "pyproject.toml").write_text('[tool.mlc]\nexclude = ["corpus", "*.gen.mlspec"]\n')
    (project / "pipelines" / "made.gen.mlspec").write_text(BROKEN)
    monkeypatch.chdir(project / "pipelines")
    code, _, err = run_mlc(capsys, "lint", "..")
    assert code == 0, err
    assert "1 file checked" in err


def test_a_pyproject_without_tool_mlc_is_passed_over(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (project / "mlc.toml").write_text('exclude = ["corpus"]\n')
    (project / "pipelines" / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    monkeypatch.chdir(project / "pipelines")
    assert run_mlc(capsys, "lint", "..")[0] == 0


def test_the_default_target_and_store_come_from_the_configuration(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (project / "mlc.toml").write_text('target = "laptop"\nstore = "build/store"\n')
    monkeypatch.chdir(project / "pipelines")
    code, out, err = run_mlc(capsys, "apply", "hello", "--format", "json")
    assert code == 0, err  # the image is ignored: target `laptop` ran it
    assert json.loads(out)["status"] == "succeeded"
    assert (project / "build" / "store").is_dir()
    assert not (project / ".mlc").exists()


def test_the_store_is_found_from_a_subfolder(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, err = run_mlc(
        capsys, "apply", "pipelines/hello", "--target", "laptop", "--format", "json"
    )
    assert code == 0, err
    run_id = json.loads(out)["run_id"]
    assert (project / ".mlc").is_dir()
    monkeypatch.chdir(project / "pipelines" / "hello")
    code, out, err = run_mlc(capsys, "runs")
    assert code == 0, err
    assert run_id in out
    assert run_mlc(capsys, "logs", run_id, "greet")[0] == 0


def test_a_first_run_from_a_subfolder_puts_the_store_at_the_project_root(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(project / "pipelines" / "hello")
    code, _, err = run_mlc(capsys, "apply", ".", "--target", "laptop")
    assert code == 0, err
    assert (project / ".mlc").is_dir()
    assert not (project / "pipelines" / "hello" / ".mlc").exists()


def test_this_repository_lints_clean_and_fmt_leaves_its_corpus_alone(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(REPOSITORY)
    code, _, err = run_mlc(capsys, "lint")
    assert code == 0, err
    assert "no problems" in err
    code, _, err = run_mlc(capsys, "fmt", "--check")
    assert code == 0, err
    assert "specs/corpus" not in err


def test_outside_any_project_the_store_is_the_working_folders_own(tmp_path: Path) -> None:
    from mlc.cli.config import default_store

    (tmp_path / ".mlc").mkdir()  # a store further up that belongs to no project of ours
    inner = tmp_path / "somewhere"
    inner.mkdir()
    if load_root(inner) is not None:
        pytest.skip("the temporary folder is inside a project")
    assert default_store(inner) == ".mlc"


def load_root(folder: Path) -> Path | None:
    from mlc.cli.config import load_config

    return load_config(folder).root
