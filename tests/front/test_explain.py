"""`mlc explain CODE`: every code has an explanation whose examples do what they claim.

Each explanation in `mlc/diagnostics/explanations/<CODE>.md` holds a "Bad" and a "Good"
```mlspec block. The bad example must produce its code and no other; the good example must
lint clean, warnings included. Examples run as `pipeline.mlspec` in a folder that also holds
`profiles.mlspec` (a profile `small` and a template `python_job`) and `legacy.mlspec` (the
same, saved as Latin-1), which examples about imports refer to.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from mlc.cli.explain import explanation, shown_template
from mlc.cli.main import main
from mlc.diagnostics.catalog import CATALOG

from tests.front import invocation
from tests.front.invocation import KNOWN_GAPS

EXPLANATIONS = Path(__file__).resolve().parents[2] / "compiler" / "diagnostics" / "explanations"
BLOCK = re.compile(r"^## (?P<kind>Bad|Good)\n\n```mlspec\n(?P<body>.*?)^```$", re.M | re.S)

PROFILES = """mlspec 1

resources small { cpu = 1, memory = 2Gi }

template python_job {
  image = "python:3.12-slim"
  retries = 2
}
"""
# "café" in Latin-1: the byte 0xe9 is not valid UTF-8.
LEGACY = (PROFILES + "# caf\xe9\n").encode("latin-1")


def examples(code: str) -> dict[str, str]:
    """The Bad and Good examples of a code's explanation."""
    text = explanation(code)
    assert text is not None, f"no explanation for {code}"
    found = {m["kind"]: m["body"] for m in BLOCK.finditer(text)}
    assert set(found) == {"Bad", "Good"}, f"{code}.md needs one Bad and one Good mlspec block"
    return found


def lint_example(folder: Path, text: str) -> list[str]:
    """The codes an example produces, run as its `# command:` header says."""
    (folder / "profiles.mlspec").write_text(PROFILES, encoding="utf-8")
    (folder / "legacy.mlspec").write_bytes(LEGACY)
    spec = folder / "pipeline.mlspec"
    spec.write_text(text, encoding="utf-8")
    diagnostics, sources = invocation.check(spec)
    return [f"{d.code} at {sources.position(d.span)}: {d.message}" for d in diagnostics]


def _codes(marks_gaps: bool) -> list[object]:
    return [
        pytest.param(
            code,
            id=code,
            marks=[pytest.mark.xfail(reason=KNOWN_GAPS[code], strict=True)]
            if marks_gaps and code in KNOWN_GAPS
            else [],
        )
        for code in CATALOG
    ]


def test_every_code_has_an_explanation_and_nothing_else_does() -> None:
    written = {path.stem for path in EXPLANATIONS.glob("*.md")}
    assert sorted(set(CATALOG) - written) == []
    assert sorted(written - set(CATALOG)) == []


@pytest.mark.parametrize("code", _codes(marks_gaps=True))
def test_bad_example_produces_exactly_its_code(code: str, tmp_path: Path) -> None:
    found = lint_example(tmp_path, examples(code)["Bad"])
    assert found, f"the bad example of {code} lints clean"
    assert [f for f in found if not f.startswith(code)] == []


@pytest.mark.parametrize("code", _codes(marks_gaps=False))
def test_good_example_lints_clean(code: str, tmp_path: Path) -> None:
    assert lint_example(tmp_path, examples(code)["Good"]) == []


def test_explanation_starts_with_its_code_and_a_short_title() -> None:
    for code in CATALOG:
        first = (explanation(code) or "").splitlines()[0]
        assert re.fullmatch(rf"# {code}: [^A-Z].{{2,60}}", first), first


# -- the command -------------------------------------------------------------------------------


def test_explain_prints_code_template_explanation_and_both_examples(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["explain", "E0301"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"error[E0301]: {CATALOG['E0301'].template}\n")
    assert "An input declared with a type accepts only artifacts of that type" in out
    bad, good = examples("E0301")["Bad"], examples("E0301")["Good"]
    assert bad in out and good in out
    assert out.index("## Bad") < out.index(bad) < out.index("## Good") < out.index(good)


def test_explain_reads_codes_case_insensitively(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", "w0501"]) == 0
    assert capsys.readouterr().out.startswith("warning[W0501]: param `{name}` is never used\n")


@pytest.mark.parametrize(("typed", "meant"), [("E0319", "E0309"), ("E301", "E0301")])
def test_unknown_code_exits_1_with_a_suggestion(
    typed: str, meant: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["explain", typed]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert f"unknown diagnostic code `{typed}`" in captured.err
    assert "did you mean `E0" in captured.err
    if typed == "E301":
        assert f"did you mean `{meant}`?" in captured.err


def test_unknown_code_without_a_close_match_still_points_to_the_list(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["explain", "banana"]) == 1
    assert "mlc explain --list" in capsys.readouterr().err


def test_templates_are_shown_without_format_escapes() -> None:
    assert shown_template(CATALOG["E0005"]) == "unclosed `{`: the file ends inside a block"


def test_list_shows_every_code_with_its_template(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", "--list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(CATALOG)
    for line, (code, entry) in zip(lines, CATALOG.items(), strict=True):
        assert line.startswith(code) and line.endswith(shown_template(entry))
        assert entry.severity.value in line


def test_explain_through_the_installed_command() -> None:
    mlc = Path(sys.executable).with_name("mlc")
    done = subprocess.run(
        [str(mlc), "explain", "E0204"], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "memory = 4Gi" in done.stdout and "Traceback" not in done.stderr
