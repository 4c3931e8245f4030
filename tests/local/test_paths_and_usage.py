"""Pointing commands at specs and writing their arguments: a directory stands for the one spec
in it, a mistyped path gets a did-you-mean, options go anywhere, and a usage error exits 1
(never 2, the internal-error code)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from mlc.cli.main import EXIT_INTERNAL_ERROR, main

from tests.local.environment import isolate

SPEC = """mlspec 1

pipeline hello {
  step greet {
    run = ["sh", "-c", "echo hi > {{ outputs.text }}"]
    outputs { text: file }
    resources { cpu = 1, memory = 64Mi }
  }
}
"""

PROFILES = """mlspec 1

resources small { cpu = 1, memory = 1Gi }
"""


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    isolate(monkeypatch, tmp_path, store=False, chdir=True)


def run_mlc(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    try:
        code = main(list(args))
    except SystemExit as exit:  # argparse's own exits (usage errors, --help)
        code = int(exit.code or 0)
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return code, captured.out, captured.err


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """`pipelines/hello/` with one pipeline spec beside a file of profiles."""
    folder = tmp_path / "pipelines" / "hello"
    folder.mkdir(parents=True)
    (folder / "pipeline.mlspec").write_text(SPEC)
    (folder / "profiles.mlspec").write_text(PROFILES)
    return folder


def test_a_directory_stands_for_the_one_spec_with_a_pipeline_in_it(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_mlc(capsys, "apply", "pipelines/hello", "--store", "store")
    assert code == 0, err
    assert " succeeded: 1 ran, 0 cached, 0 failed" in out
    code, out, _ = run_mlc(capsys, "plan", "pipelines/hello", "--store", "store")
    assert code == 0 and "greet  cached" in out
    code, out, _ = run_mlc(capsys, "graph", "pipelines/hello")
    assert code == 0 and out.startswith('digraph "hello"')


def test_a_directory_with_several_pipelines_lists_them(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.copy(project / "pipeline.mlspec", project / "other.mlspec")
    code, _, err = run_mlc(capsys, "plan", "pipelines/hello")
    assert code == 1
    assert (
        "error: `pipelines/hello` holds several specs with a pipeline: "
        "`pipelines/hello/other.mlspec`, `pipelines/hello/pipeline.mlspec`; name one" in err
    )


def test_a_directory_without_a_pipeline_points_one_level_down(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_mlc(capsys, "compile", "pipelines")
    assert code == 1
    assert (
        "error: `pipelines` is a directory without a spec that declares a pipeline; specs one "
        "level down: `pipelines/hello/pipeline.mlspec`" in err
    )


@pytest.mark.parametrize(
    ("typed", "meant"),
    [
        ("pipelines/hello/pipline.mlspec", "pipelines/hello/pipeline.mlspec"),
        ("pipelnies/hello", "pipelines/hello"),
    ],
)
def test_a_mistyped_path_gets_the_nearest_spec(
    project: Path, capsys: pytest.CaptureFixture[str], typed: str, meant: str
) -> None:
    for command in ("apply", "plan", "compile", "graph", "lock"):
        code, _, err = run_mlc(capsys, command, typed)
        assert code == 1
        assert f"error: no such file: `{typed}`\n  help: did you mean `{meant}`?\n" in err


@pytest.mark.parametrize(
    "argv",
    [
        ["runs", "show", "--format", "json", "RUN"],
        ["--format", "json", "runs", "show", "RUN"],
        ["runs", "--format", "json", "show", "RUN"],
        ["runs", "show", "RUN", "--format", "json"],
    ],
)
def test_options_go_anywhere(
    argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "data.txt").write_text("x\n")
    assert run_mlc(capsys, "data", "add", "data.txt", "--store", "store")[0] == 0
    code, _, err = run_mlc(capsys, *argv, "--store", "store")
    assert code == 1
    assert "error: no run `RUN`" in err  # parsed: the run was looked up


def test_options_of_a_command_with_actions_go_before_the_action_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "data.txt").write_text("x\n")
    for argv in (
        ["data", "add", "data.txt", "--store", "store"],
        ["data", "--store", "store", "add", "data.txt"],
        ["--store", "store", "data", "add", "data.txt"],
    ):
        code, out, err = run_mlc(capsys, *argv)
        assert code == 0, err
        assert out.startswith("data.txt: sha256:")


@pytest.mark.parametrize(
    "argv",
    [["lint", "--bogus"], ["bogus"], ["apply"], ["runs", "show", "a", "b", "c"], ["plan", "-x"]],
)
def test_a_usage_error_exits_1_with_the_usage_and_a_pointer_to_help(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_mlc(capsys, *argv)
    assert code == 1 != EXIT_INTERNAL_ERROR
    assert err.startswith("usage: mlc")
    assert "lists every option)" in err.splitlines()[-1]


def test_a_mistyped_command_gets_a_did_you_mean(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_mlc(capsys, "aply", "pipelines/hello")
    assert code == 1
    assert "invalid choice: 'aply'" in err and "did you mean `apply`?" in err
