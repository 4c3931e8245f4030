"""What every diagnostic says: never an internal representation, never an empty label, and a
duplicate always shows where the first definition is, in every output format.

Every diagnostic of the corpus's invalid specs and of every explanation's bad example is
rendered and read as a user would read it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from mlc.diagnostics import Diagnostic
from mlc.diagnostics.render import render_github, render_human, render_json, render_sarif

from tests.front import invocation

REPO = Path(__file__).resolve().parents[2]
INVALID = sorted((REPO / "specs" / "corpus" / "invalid").glob("*.mlspec"))

# `Profile(block=…`, `None`, `<… object at 0x…>`, `{'key': …}`: how Python shows its objects.
REPR = re.compile(r"\b[A-Z]\w*\(\w+=|\bNone\b|<[\w.]+ object at|\{'\w+':")


@pytest.fixture(autouse=True)
def _at_repository_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)


def texts(diagnostic: Diagnostic) -> list[str]:
    return [
        diagnostic.message,
        diagnostic.primary.message,
        diagnostic.help or "",
        *diagnostic.notes,
        *(label.message for label in diagnostic.secondary),
    ]


def problems(diagnostic: Diagnostic) -> list[str]:
    found = [f"repr in {text!r}" for text in texts(diagnostic) if REPR.search(text)]
    if not diagnostic.primary.message.strip():
        found.append("empty label")
    found += ["empty related label" for label in diagnostic.secondary if not label.message]
    return [f"{diagnostic.code} {diagnostic.message!r}: {p}" for p in found]


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.stem)
def test_no_corpus_diagnostic_shows_a_repr_or_an_empty_label(path: Path) -> None:
    diagnostics, sources = invocation.check(path.relative_to(REPO))
    assert [p for d in diagnostics for p in problems(d)] == []
    for output in (render_human(diagnostics, sources), render_github(diagnostics, sources)):
        assert not REPR.search(output)


def test_no_explanation_example_shows_a_repr_or_an_empty_label(tmp_path: Path) -> None:
    from mlc.diagnostics.catalog import CATALOG

    from tests.front.test_explain import PROFILES, examples

    (tmp_path / "profiles.mlspec").write_text(PROFILES, encoding="utf-8")
    found: list[str] = []
    for code in CATALOG:
        spec = tmp_path / "pipeline.mlspec"
        spec.write_text(examples(code)["Bad"], encoding="utf-8")
        diagnostics, _ = invocation.check(spec)
        found += [p for d in diagnostics for p in problems(d)]
    assert found == []


# -- duplicates -----------------------------------------------------------------------------------

DUPLICATES = {
    "step": 'pipeline p {\n  step a { run = "x" }\n  step a { run = "y" }\n}\n',
    "param": "pipeline p {\n  params {\n    n: int = 1\n    n: int = 2\n  }\n"
    '  step a { run = "x {{ params.n }}" }\n}\n',
    "output": 'pipeline p {\n  step a {\n    run = "x {{ outputs.o }}"\n'
    "    outputs {\n      o: file\n      o: file\n    }\n  }\n}\n",
    "profile": "resources small { cpu = 1 }\nresources small { cpu = 2 }\n",
    "template": "template job { retries = 1 }\ntemplate job { retries = 2 }\n",
}


@pytest.mark.parametrize("kind", list(DUPLICATES))
def test_a_duplicate_points_at_the_first_definition_in_every_format(
    kind: str, tmp_path: Path
) -> None:
    spec = tmp_path / "spec.mlspec"
    text = "mlspec 1\n" + DUPLICATES[kind]
    spec.write_text(text, encoding="utf-8")
    diagnostics, sources = invocation.check(spec)
    (duplicate,) = [d for d in diagnostics if d.code == "E0104"]
    (first,) = duplicate.secondary
    assert first.span.start < duplicate.span.start
    name = text[duplicate.span.start : duplicate.span.end]
    assert text[first.span.start : first.span.end] == name
    line = sources.position(first.span).line

    human = render_human([duplicate], sources)
    assert f"{line} |" in human and first.message in human
    (entry,) = json.loads(render_json([duplicate], sources, files=1))["diagnostics"]
    assert [(r["line"], r["label"]) for r in entry["related"]] == [(line, first.message)]
    assert f"{first.message}: {first.span.path}:{line}:" in render_github([duplicate], sources)
    (result,) = json.loads(render_sarif([duplicate], sources))["runs"][0]["results"]
    (related,) = result["relatedLocations"]
    assert related["physicalLocation"]["region"]["startLine"] == line
    assert related["message"]["text"] == first.message


# Codes whose message is the whole story: a syntax error names what was expected and found.
WITHOUT_HELP = {"E0001": "the message says what was expected instead"}


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.stem)
def test_every_error_in_the_corpus_says_how_to_fix_it(path: Path) -> None:
    diagnostics, _ = invocation.check(path.relative_to(REPO))
    missing = [
        f"{d.code} {d.message!r}"
        for d in diagnostics
        if d.code.startswith("E") and not d.help and d.code not in WITHOUT_HELP
    ]
    assert missing == []


def test_an_error_at_a_template_line_points_at_each_step_that_extends_it(tmp_path: Path) -> None:
    spec = tmp_path / "spec.mlspec"
    spec.write_text(
        "mlspec 1\n\ntemplate job {\n  shell = true\n  retries = params.tries\n}\n\n"
        'pipeline p {\n  step a extends job {\n    run = ["x"]\n  }\n'
        '  step b extends job {\n    run = "y"\n  }\n}\n',
        encoding="utf-8",
    )
    diagnostics, sources = invocation.check(spec)
    found = [
        (
            d.code,
            sources.position(d.span).line,
            [sources.position(s.span).line for s in d.secondary],
        )
        for d in diagnostics
    ]
    # `a`'s own `run` conflicts with the template's `shell`; both steps read a param their
    # pipeline lacks, which the template's line alone would not tell.
    assert found == [("E0111", 9, [5]), ("E0108", 10, [4]), ("E0111", 12, [5])]
    unknown = [d for d in diagnostics if d.code == "E0111"]
    assert all(d.primary.message.endswith("extends template `job`") for d in unknown)
