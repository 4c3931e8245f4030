"""The conformance corpus in `specs/corpus/`: the executable definition of the language.

- `invalid/*.mlspec` each carry inline expectations, `# expect: CODE @ LINE:COLUMN`: the
  spec must produce exactly those diagnostics (code, line and column of the primary span)
  and nothing else. Every code of the catalog has at least one such file.
- `invalid/W*.mlspec` with only warnings may have a golden IR beside them
  (`invalid/<name>.ir.json`): what a spec that compiles with warnings means (a step that can
  never run, say) is pinned like a valid spec's.
- `valid/*.mlspec` lint clean (no diagnostics at all) and compile to the IR in
  `valid/<name>.ir.json`, compared byte for byte. Regenerate the golden files with
  `pytest tests/front/test_corpus.py --update-golden` and read the diff before committing.

A file may start with `# command: mlc lint …` or `# command: mlc compile …` (options
`--target`, `--param NAME=VALUE`, `--pipeline`); without it, the file is checked as
`mlc lint FILE` does. `specs/README.md` describes the format.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest
from mlc.cli import backends
from mlc.cli.main import main
from mlc.compile import check_paths, compile_spec
from mlc.diagnostics import Diagnostic
from mlc.diagnostics.catalog import CATALOG
from mlc.diagnostics.render import render_human, render_json
from mlc.ir.serialize import to_json
from mlc.source import SourceMap

from tests.front import invocation
from tests.front.invocation import KNOWN_GAPS

REPO = Path(__file__).resolve().parents[2]
CORPUS = REPO / "specs" / "corpus"
INVALID = sorted((CORPUS / "invalid").glob("*.mlspec"))
VALID = sorted((CORPUS / "valid").glob("*.mlspec"))
EXAMPLES = sorted((REPO / "examples").rglob("*.mlspec"))

EXPECT = re.compile(r"#\s*expect:\s*(?P<code>[EW]\d{4})\s*@\s*(?P<line>\d+):(?P<column>\d+)")

# The compiler version changes with every release; golden files record this instead.
GOLDEN_COMPILER_VERSION = "<compiler version>"


@dataclass(frozen=True, order=True)
class Expected:
    """One diagnostic a corpus file must produce: its code and where its primary span starts."""

    line: int
    column: int
    code: str

    def __str__(self) -> str:
        return f"{self.code} @ {self.line}:{self.column}"


def expectations(text: str) -> list[Expected]:
    """The `# expect: CODE @ LINE:COLUMN` comments of a file."""
    return sorted(
        Expected(int(m["line"]), int(m["column"]), m["code"]) for m in EXPECT.finditer(text)
    )


def check(path: Path) -> tuple[list[Diagnostic], SourceMap]:
    """Runs a corpus file, shown by its path relative to the repository."""
    return invocation.check(path.relative_to(REPO))


def located(diagnostic: Diagnostic, sources: SourceMap) -> Expected:
    position = sources.position(diagnostic.span)
    return Expected(position.line, position.column, diagnostic.code)


def describe(diagnostic: Diagnostic, sources: SourceMap) -> str:
    return f"{diagnostic.span.path}:{located(diagnostic, sources)}: {diagnostic.message}"


def golden_text(path: Path) -> str:
    """The canonical IR of a valid spec, with the compiler version normalised."""
    call = invocation.invocation(path.read_text(encoding="utf-8"))
    result = compile_spec(path.relative_to(REPO), options=call.options)
    assert result.document is not None, "\n".join(
        describe(d, result.sources) for d in result.diagnostics
    )
    document = result.document.model_copy(update={"compiler_version": GOLDEN_COMPILER_VERSION})
    return to_json(document)


@pytest.fixture(autouse=True)
def _at_repository_root(monkeypatch: pytest.MonkeyPatch) -> None:
    # Paths in diagnostics and in the IR are shown relative to the working directory.
    monkeypatch.chdir(REPO)


def _invalid_params() -> list[object]:
    return [
        pytest.param(
            path,
            id=path.stem,
            marks=[pytest.mark.xfail(reason=KNOWN_GAPS[path.name[:5]], strict=True)]
            if path.name[:5] in KNOWN_GAPS
            else [],
        )
        for path in INVALID
    ]


# -- invalid specs -----------------------------------------------------------------------------


def mismatches(
    expected: list[Expected], diagnostics: list[Diagnostic], sources: SourceMap, shown: str
) -> list[str]:
    """Every expected diagnostic that is missing and every diagnostic that was not expected."""
    actual = [located(d, sources) for d in diagnostics]
    problems = [f"missing {e}" for e in expected if e not in actual]
    problems += [
        f"unexpected {describe(d, sources)}"
        for d, where in zip(diagnostics, actual, strict=True)
        if where not in expected or d.span.path != shown
    ]
    return problems


@pytest.mark.parametrize("path", _invalid_params())
def test_invalid_spec_produces_exactly_its_expected_diagnostics(path: Path) -> None:
    expected = expectations(path.read_text(encoding="utf-8"))
    assert expected, f"{path.name} has no `# expect:` comment"
    diagnostics, sources = check(path)
    assert mismatches(expected, diagnostics, sources, path.relative_to(REPO).as_posix()) == []


@pytest.mark.parametrize("path", _invalid_params())
def test_the_command_line_reports_the_same_positions(
    path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = path.read_text(encoding="utf-8")
    header = invocation.COMMAND.search(text)
    words = shlex.split(header["command"]) if header else ["mlc", "lint"]
    exit_code = main([words[1], path.relative_to(REPO).as_posix(), *words[2:], "--format", "json"])
    report = json.loads(capsys.readouterr().out)
    reported = sorted(Expected(d["line"], d["column"], d["code"]) for d in report["diagnostics"])
    assert reported == expectations(text)
    assert exit_code == (1 if any(e.code.startswith("E") for e in reported) else 0)


# Rendered output, checked by hand: `invalid/golden/<name>.txt` (human) and `<name>.json`.
GOLDEN_OUTPUT = CORPUS / "invalid" / "golden"
RENDERED = sorted(path for path in INVALID if (GOLDEN_OUTPUT / f"{path.stem}.txt").is_file())


@pytest.mark.parametrize("path", RENDERED, ids=lambda p: p.stem)
def test_invalid_spec_renders_as_its_golden_human_and_json_output(
    path: Path, update_golden: bool
) -> None:
    diagnostics, sources = check(path)
    rendered = {
        "txt": render_human(diagnostics, sources),
        "json": render_json(diagnostics, sources, files=1) + "\n",
    }
    for suffix, text in rendered.items():
        golden = GOLDEN_OUTPUT / f"{path.stem}.{suffix}"
        if update_golden:
            golden.write_text(text, encoding="utf-8")
        else:
            assert text == golden.read_text(encoding="utf-8"), f"{golden.name} differs"


def test_every_golden_output_has_its_spec() -> None:
    specs = {path.stem for path in INVALID}
    assert sorted(p.name for p in GOLDEN_OUTPUT.iterdir() if p.stem not in specs) == []


def test_a_misplaced_expectation_is_reported() -> None:
    # The harness itself can fail: a column off by one is one missing and one unexpected.
    path = CORPUS / "invalid" / "E0301_artifact_type_mismatch.mlspec"
    (right,) = expectations(path.read_text(encoding="utf-8"))
    diagnostics, sources = check(path)
    shown = path.relative_to(REPO).as_posix()
    wrong = Expected(right.line, right.column + 1, right.code)
    assert mismatches([right], diagnostics, sources, shown) == []
    assert [p.split(" ")[0] for p in mismatches([wrong], diagnostics, sources, shown)] == [
        "missing",
        "unexpected",
    ]
    assert mismatches([right], diagnostics, sources, "another.mlspec") != []


def test_every_catalog_code_has_an_invalid_example() -> None:
    covered = {e.code for path in INVALID for e in expectations(path.read_text(encoding="utf-8"))}
    assert sorted(set(CATALOG) - covered) == []
    assert sorted(covered - set(CATALOG)) == [], "expectations name codes the catalog lacks"


def test_each_invalid_file_is_named_after_a_code_it_expects() -> None:
    misnamed = [
        path.name
        for path in INVALID
        if path.name[:5] not in {e.code for e in expectations(path.read_text(encoding="utf-8"))}
    ]
    assert misnamed == []


def test_known_gaps_are_catalog_codes() -> None:
    assert sorted(set(KNOWN_GAPS) - set(CATALOG)) == []


# -- valid specs -------------------------------------------------------------------------------


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.stem)
def test_valid_spec_lints_clean(path: Path) -> None:
    diagnostics, sources = check(path)
    assert [describe(d, sources) for d in diagnostics] == []


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.stem)
def test_valid_spec_compiles_to_its_golden_ir(path: Path, update_golden: bool) -> None:
    golden = path.with_suffix(".ir.json")
    text = golden_text(path)
    if update_golden:
        golden.write_text(text, encoding="utf-8")
        return
    assert golden.is_file(), f"no golden IR for {path.name}: run with --update-golden"
    assert text == golden.read_text(encoding="utf-8")


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.stem)
def test_compiling_twice_gives_identical_bytes(path: Path) -> None:
    assert golden_text(path).encode() == golden_text(path).encode()


def test_every_golden_file_has_its_spec() -> None:
    golden = (CORPUS / "valid").glob("*.ir.json")
    orphans = [
        p.name for p in golden if not p.with_name(p.name[: -len(".ir.json")] + ".mlspec").is_file()
    ]
    assert orphans == []


# -- examples ----------------------------------------------------------------------------------

LOCAL_BACKEND_MISSING = backends.describe("local") is None


def _example_params() -> list[object]:
    params = []
    for path in EXAMPLES:
        uses_local = re.search(r"^\s*backend\s*=\s*local\b", path.read_text(), re.MULTILINE)
        marks = (
            [
                pytest.mark.xfail(
                    reason="the local backend is not implemented yet: `backend = local` is E0601",
                    strict=True,
                )
            ]
            if uses_local and LOCAL_BACKEND_MISSING
            else []
        )
        params.append(pytest.param(path, id=path.relative_to(REPO).as_posix(), marks=marks))
    return params


@pytest.mark.parametrize("path", _example_params())
def test_example_lints_clean(path: Path) -> None:
    diagnostics, sources = check(path)
    assert [describe(d, sources) for d in diagnostics] == []


def test_examples_are_clean_apart_from_targets() -> None:
    # Without backend descriptions, only the language itself is checked.
    result = check_paths([p.relative_to(REPO) for p in EXAMPLES])
    assert [describe(d, result.sources) for d in result.diagnostics] == []


WARNED = [p for p in INVALID if p.with_suffix(".ir.json").is_file()]


@pytest.mark.parametrize("path", WARNED, ids=lambda p: p.stem)
def test_a_spec_with_only_warnings_compiles_to_its_golden_ir(
    path: Path, update_golden: bool
) -> None:
    expected = expectations(path.read_text(encoding="utf-8"))
    assert expected and all(e.code.startswith("W") for e in expected)
    golden = path.with_suffix(".ir.json")
    text = golden_text(path)
    if update_golden:
        golden.write_text(text, encoding="utf-8")
        return
    assert text == golden.read_text(encoding="utf-8")
