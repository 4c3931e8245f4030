"""The compiled-IR cache of `mlc apply`/`plan`/`lock`: an unchanged spec is not compiled
again, and any change to the spec, its imports, the options or mlc's code compiles it again."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mlc.cli import ir_cache
from mlc.cli.main import main

from tests.local.environment import isolate

SPEC = """mlspec 1

pipeline cached_ir {{
  params {{ n: int = {n} }}

  step make {{
    run = ["sh", "-c", "echo {{{{ params.n }}}} > {{{{ outputs.out }}}}"]
    outputs {{ out: file }}
    resources {{ cpu = 1, memory = 64Mi }}
  }}

  outputs {{ out = make.out }}
}}
"""


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    isolate(monkeypatch, tmp_path, ir_cache=True, chdir=True)


def compile_calls(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Records every real compilation."""
    import mlc.compile

    calls: list[Path] = []
    real = mlc.compile.compile_spec

    def counting(path: Path, **kwargs: object) -> object:
        calls.append(path)
        return real(path, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(mlc.compile, "compile_spec", counting)
    return calls


def apply(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, object]:
    code = main(["apply", "pipeline.mlspec", "--format", "json", *args])
    report: dict[str, object] = json.loads(capsys.readouterr().out)
    assert code == 0, report
    return report


def test_an_unchanged_spec_is_compiled_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    Path("pipeline.mlspec").write_text(SPEC.format(n=1))
    calls = compile_calls(monkeypatch)
    first = apply(capsys)
    second = apply(capsys)
    assert len(calls) == 1
    assert second["outputs"] == first["outputs"]
    assert [s["status"] for s in second["steps"]] == ["cached"]  # type: ignore[index]


def test_a_changed_spec_or_other_options_compile_again(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    Path("pipeline.mlspec").write_text(SPEC.format(n=1))
    calls = compile_calls(monkeypatch)
    first = apply(capsys)
    Path("pipeline.mlspec").write_text(SPEC.format(n=2))
    second = apply(capsys)
    assert len(calls) == 2
    assert second["outputs"] != first["outputs"]
    apply(capsys, "--param", "n=3")
    assert len(calls) == 3
    apply(capsys, "--param", "n=3")
    assert len(calls) == 3


def test_changed_mlc_code_or_a_disabled_cache_compile_again(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    Path("pipeline.mlspec").write_text(SPEC.format(n=1))
    calls = compile_calls(monkeypatch)
    apply(capsys)
    monkeypatch.setattr(ir_cache, "code_fingerprint", lambda: "another mlc")
    apply(capsys)
    assert len(calls) == 2
    monkeypatch.setenv("MLC_IR_CACHE", "0")
    apply(capsys)
    assert len(calls) == 3


def test_a_spec_with_warnings_is_cached_and_its_warnings_printed_every_time(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # `out` is read by nothing and not exported: warning W0502, printed on every apply.
    spec = SPEC.format(n=1).replace("  outputs { out = make.out }\n", "")
    Path("pipeline.mlspec").write_text(spec)
    calls = compile_calls(monkeypatch)
    printed = []
    for _ in range(2):
        assert main(["apply", "pipeline.mlspec"]) == 0
        printed.append(capsys.readouterr().err)  # the progress goes to stdout
    assert len(calls) == 1
    assert printed[0] == printed[1] and printed[0].startswith("warning[W0502]: output `out`")
    assert "--> pipeline.mlspec:" in printed[1]


def test_mlc_compile_fills_the_cache_apply_reads(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = SPEC.format(n=1).replace("  outputs { out = make.out }\n", "")  # warning W0502
    Path("pipeline.mlspec").write_text(spec)
    calls = compile_calls(monkeypatch)
    assert main(["compile", "pipeline.mlspec", "--param", "n=4", "-o", "pipeline.ir.json"]) == 0
    assert "warning[W0502]" in capsys.readouterr().err
    assert main(["apply", "pipeline.mlspec", "--param", "n=4"]) == 0
    assert len(calls) == 1  # apply found what compile compiled, and says its warning again
    assert capsys.readouterr().err.startswith("warning[W0502]: output `out`")
    assert main(["apply", "pipeline.mlspec", "--param", "n=5"]) == 0
    assert len(calls) == 2  # other options: compiled again


def test_a_spec_with_errors_is_not_cached(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    Path("pipeline.mlspec").write_text(SPEC.format(n=1).replace("make.out", "make.nope"))
    calls = compile_calls(monkeypatch)
    for _ in range(2):
        assert main(["apply", "pipeline.mlspec"]) == 1
        assert "E0110" in capsys.readouterr().err
    assert len(calls) == 2
    assert not list((tmp_path / "ir-cache").glob("*.json"))


def test_an_unreadable_cache_is_a_miss(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    Path("pipeline.mlspec").write_text(SPEC.format(n=1))
    calls = compile_calls(monkeypatch)
    apply(capsys)
    for entry in (tmp_path / "ir-cache").glob("*.json"):
        entry.write_text("{not json")
    apply(capsys)
    assert len(calls) == 2


IMPORTING = """mlspec 1

import "profiles.mlspec" as profiles

pipeline cached_ir {
  step make {
    run = ["sh", "-c", "echo made > {{ outputs.out }}"]
    outputs { out: file }
    resources = profiles.small
  }

  outputs { out = make.out }
}
"""


def test_a_changed_import_compiles_again(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    Path("pipeline.mlspec").write_text(IMPORTING)
    Path("profiles.mlspec").write_text("mlspec 1\n\nresources small { cpu = 1, memory = 64Mi }\n")
    calls = compile_calls(monkeypatch)
    apply(capsys)
    apply(capsys)
    assert len(calls) == 1
    Path("profiles.mlspec").write_text("mlspec 1\n\nresources small { cpu = 1, memory = 96Mi }\n")
    apply(capsys)
    assert len(calls) == 2
    apply(capsys)
    assert len(calls) == 2
