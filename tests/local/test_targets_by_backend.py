"""`--target`: a declared target, or a backend's name for that backend with its defaults; the
messages about targets say which one was used and what to type next."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlc.cli.main import main
from mlc.installation import pip_install

from tests.local.environment import isolate

SPEC = """mlspec 1

pipeline hello {
  step greet {
    run = ["sh", "-c", "echo hi > {{ outputs.text }}"]
    outputs { text: file }
    resources { cpu = 1, memory = 64Mi }
  }
}

target laptop { backend = local }
"""

IMAGED = """mlspec 1

pipeline boxed {
  step greet {
    image = "python:3.12"
    run = ["sh", "-c", "echo hi > {{ outputs.text }}"]
    outputs { text: file }
    resources { cpu = 1, memory = 64Mi }
  }
  step wave {
    image = "python:3.12"
    run = ["sh", "-c", "echo bye > {{ outputs.text }}"]
    outputs { text: file }
    resources { cpu = 1, memory = 64Mi }
  }
}

target laptop {
  backend = local
  ignore_unsupported = ["image"]
}
"""


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    isolate(monkeypatch, tmp_path, ir_cache=True)


def write(directory: Path, text: str, name: str = "pipeline.mlspec") -> str:
    path = directory / name
    path.write_text(text)
    return str(path)


def run_mlc(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return code, captured.out, captured.err


def test_a_backend_name_runs_that_backend_with_its_defaults_and_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = write(tmp_path, SPEC)
    code, out, err = run_mlc(capsys, "apply", spec, "--target", "local")
    assert code == 0, err
    assert err.count("note: no target `local` is declared; using backend `local`") == 1
    assert " succeeded: 1 ran, 0 cached, 0 failed" in out


def test_the_note_is_printed_once_for_many_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(tmp_path, SPEC, "one.mlspec")
    write(tmp_path, SPEC.replace("hello", "again"), "two.mlspec")
    code, _, err = run_mlc(capsys, "lint", str(tmp_path), "--target", "local")
    assert code == 0, err
    assert err.count("note: no target `local` is declared") == 1


def test_an_unknown_target_lists_the_declared_targets_and_the_backends(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = write(tmp_path, SPEC)
    code, _, err = run_mlc(capsys, "lint", spec, "--target", "lapotp")
    assert code == 1
    assert "error[E0117]: unknown target `lapotp`" in err
    assert (
        "help: declared targets: `laptop`; or a backend with its defaults: "
        "`kubernetes`, `local`, `ray`" in err
    )


def test_a_backend_used_as_a_target_is_checked_and_its_help_says_to_declare_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = write(tmp_path, IMAGED)
    code, _, err = run_mlc(capsys, "lint", spec, "--target", "ray")
    assert code == 1
    assert "error[E0602]: target `ray` (backend `ray`) cannot honour container images" in err
    assert (
        "help: remove it, or declare a target that runs without it: `target NAME { backend = "
        'ray, ignore_unsupported = ["image"] }` and use `--target NAME`' in err
    )


def test_without_a_target_the_refusal_names_the_defaults_and_the_declared_targets(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = write(tmp_path, IMAGED)
    for command in ("plan", "apply"):
        code, _, err = run_mlc(capsys, command, spec)
        assert code == 1
        assert "error: steps `greet`, `wave` set `image`, but local runs use the current " in err
        assert 'run them on a target that has `ignore_unsupported = ["image"]`' in err
        assert (
            "  no `--target` was given, so backend `local` is used with its defaults; this "
            "spec declares `laptop` (local): choose one with `--target NAME`" in err
        )


def test_features_a_target_ignores_on_purpose_are_not_repeated_by_plan_and_apply(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = write(tmp_path, IMAGED)
    code, _, err = run_mlc(capsys, "lint", spec, "--target", "laptop")
    assert code == 0
    assert err.count("warning[W0601]") == 2
    for command in ("plan", "apply", "plan"):  # the last one from the IR cache
        code, _, err = run_mlc(capsys, command, spec, "--target", "laptop")
        assert code == 0, err
        assert "W0601" not in err


def test_the_target_option_explains_targets_and_backends(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        main(["apply", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "a `target` block of the spec, or a backend (`local`, `ray`, `kubernetes`)" in text
    assert "A backend is how steps run; a target is a named backend with its settings" in text


def test_a_missing_extra_is_installed_the_way_mlc_was() -> None:
    # This suite runs from a checkout installed in editable mode.
    command = pip_install("s3")
    assert command.endswith("[s3]'") and " -m pip install -e '" in command
