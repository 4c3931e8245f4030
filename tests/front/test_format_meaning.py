"""`mlc fmt` never changes what a spec means: the diagnostics `mlc lint` reports (after
`# mlc: ignore` comments) and the IR (source positions aside) are the same before and after.

Every spec of the corpus (valid and invalid) and every example is checked as written, and,
through Hypothesis, with suppression comments where users put them: at the end of a line
that has a diagnostic, and after a block, list or object squeezed onto one line (which the
formatter would otherwise expand, moving the comment away from what it covers).
"""

from __future__ import annotations

import dataclasses
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from mlc.compile import check_paths
from mlc.diagnostics import Diagnostic, has_errors
from mlc.diagnostics.suppress import suppressed
from mlc.front import ast
from mlc.front.format import format_module
from mlc.front.parser import parse

from tests.front import invocation

REPO = Path(__file__).resolve().parents[2]
SPECS = sorted(
    [*(REPO / "specs" / "corpus").rglob("*.mlspec"), *(REPO / "examples").rglob("*.mlspec")]
)
TEXTS = {path: path.read_text(encoding="utf-8") for path in SPECS}


def relative(path: Path) -> Path:
    return path.relative_to(REPO)


@pytest.fixture(autouse=True)
def _at_repository_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)


def formatted(text: str) -> str | None:
    """The formatter's output, or None when the text does not parse."""
    result = parse(text, "spec.mlspec")
    if result.module is None or has_errors(result.diagnostics):
        return None
    return format_module(result.module, text)


def _fingerprint(diagnostic: Diagnostic) -> tuple[object, ...]:
    """A diagnostic without its positions: what a user reads."""
    return (
        diagnostic.code,
        diagnostic.message,
        diagnostic.primary.message,
        diagnostic.help,
        diagnostic.notes,
        tuple(label.message for label in diagnostic.secondary),
    )


def meaning(path: Path, text: str) -> tuple[Counter[tuple[object, ...]], list[Any]]:
    """What `mlc lint` reports for `text` read as `path` (suppressed diagnostics left out),
    and the IR of each pipeline when there is no error, without source positions."""
    call = invocation.invocation(text)
    call.options.require_params = call.compile
    result = check_paths([relative(path)], call.options, texts={relative(path): text})
    reported = [d for d in result.diagnostics if not suppressed(d, result.sources)]
    documents: list[Any] = []
    if not has_errors(result.diagnostics):
        from mlc.lower import lower

        for program in result.programs:
            document = lower(program, result.sources, call.options.target)
            documents.append(without_sources(document.model_dump(mode="json")))
    return Counter(_fingerprint(d) for d in reported), documents


def without_sources(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            key: without_sources(item)
            for key, item in value.items()
            if not (key == "source" and isinstance(item, dict) and "line" in item)
        }
    if isinstance(value, list):
        return [without_sources(item) for item in value]
    return value


def assert_fmt_keeps_meaning(path: Path, text: str) -> None:
    once = formatted(text)
    if once is None:
        return
    assert formatted(once) == once, "not idempotent"
    assert meaning(path, once) == meaning(path, text)


@pytest.mark.parametrize("path", SPECS, ids=lambda p: relative(p).as_posix())
def test_fmt_keeps_the_diagnostics_and_the_ir_of_every_corpus_spec_and_example(
    path: Path,
) -> None:
    assert_fmt_keeps_meaning(path, TEXTS[path])


# -- suppression comments where users put them ---------------------------------------------------

COMMAND = re.compile(r"#\s*command:")
SUPPRESSIONS = ("# mlc: ignore", "# mlc: ignore[{code}]", "#mlc:ignore[{code}, W0501]")


def _diagnostics_at(path: Path, text: str) -> dict[int, str]:
    """Offset of each diagnostic's start in the file to its code."""
    call = invocation.invocation(text)
    result = check_paths([relative(path)], call.options, texts={relative(path): text})
    shown = relative(path).as_posix()
    return {d.span.start: d.code for d in result.diagnostics if d.span.path == shown}


def _end_with(line: str, comment: str) -> str:
    return line if "#" in line else line.rstrip() + "  " + comment


def _squeezable(module: ast.Module, text: str) -> list[tuple[int, int]]:
    """Spans of blocks, lists and objects over several lines without comments or long strings,
    which can be written on one line."""
    found: list[tuple[int, int]] = []

    def walk(node: Any) -> None:
        if isinstance(node, ast.Block | ast.ListLit | ast.ObjectLit):
            piece = text[node.span.start : node.span.end]
            if "\n" in piece and "#" not in piece and '"""' not in piece:
                found.append((node.span.start, node.span.end))
        if dataclasses.is_dataclass(node) and not isinstance(node, type):
            for field in dataclasses.fields(node):
                walk(getattr(node, field.name))
        elif isinstance(node, tuple | list):
            for item in node:
                walk(item)

    walk(module.items)
    return found


def _binaries(module: ast.Module) -> list[tuple[int, int, int]]:
    """Each binary expression: its start, the offset just after its operator, its end."""
    found: list[tuple[int, int, int]] = []

    def walk(node: Any) -> None:
        if isinstance(node, ast.Binary) and node.op_span.end > node.op_span.start:
            found.append((node.span.start, node.op_span.end, node.span.end))
        if dataclasses.is_dataclass(node) and not isinstance(node, type):
            for field in dataclasses.fields(node):
                walk(getattr(node, field.name))
        elif isinstance(node, tuple | list):
            for item in node:
                walk(item)

    walk(module.items)
    return found


@st.composite
def with_suppressions(draw: st.DrawFn, path: Path) -> str:
    """The spec with a block, list or object around a diagnostic squeezed onto one line and
    a suppression comment after it, and comments at the end of other diagnostics' lines."""
    # Comments on lines of their own (the corpus's `# expect:`) would keep blocks apart.
    text = "\n".join(
        line
        for line in TEXTS[path].split("\n")
        if not line.lstrip().startswith("#") or COMMAND.match(line)
    )
    result = parse(text, "spec.mlspec")
    diagnostics = _diagnostics_at(path, text)
    if result.module is not None and not result.diagnostics:
        spans = [
            (start, end, code)
            for start, end in _squeezable(result.module, text)
            for offset, code in diagnostics.items()
            if start <= offset < end
        ] or [(start, end, "E0105") for start, end in _squeezable(result.module, text)]
        if spans and draw(st.booleans()):
            start, end, code = draw(st.sampled_from(spans))
            squeezed = re.sub(r"\s*\n\s*", " ", text[start:end])
            text = text[:start] + squeezed + text[end:]
            line_end = text.find("\n", start)
            line_end = len(text) if line_end == -1 else line_end
            comment = draw(st.sampled_from(SUPPRESSIONS)).format(code=code)
            text = text[:start] + _end_with(text[start:line_end], comment) + text[line_end:]
            diagnostics = _diagnostics_at(path, text)
    result = parse(text, "spec.mlspec")
    if result.module is not None and not result.diagnostics and draw(st.booleans()):
        # Break an operator expression after its operator, with a suppression comment there.
        offsets = _diagnostics_at(path, text)
        operators = [
            after
            for start, after, end in _binaries(result.module)
            if any(start <= offset < end for offset in offsets)
        ] or [after for _, after, _ in _binaries(result.module)]
        if operators:
            after = draw(st.sampled_from(operators))
            comment = draw(st.sampled_from(SUPPRESSIONS)).format(code="E0103")
            text = text[:after] + "  " + comment + "\n        " + text[after:].lstrip(" ")
            diagnostics = _diagnostics_at(path, text)
    lines = text.split("\n")
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line) + 1)
    for offset, code in diagnostics.items():
        number = next(i for i in range(len(lines)) if starts[i] <= offset < starts[i + 1])
        if draw(st.booleans()):
            comment = draw(st.sampled_from(SUPPRESSIONS)).format(code=code)
            lines[number] = _end_with(lines[number], comment)
    return "\n".join(lines)


@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data(), path=st.sampled_from(SPECS))
def test_fmt_keeps_what_suppression_comments_cover(data: st.DataObject, path: Path) -> None:
    text = data.draw(with_suppressions(path))
    assume(formatted(text) is not None)
    assert_fmt_keeps_meaning(path, text)


def test_a_long_one_line_body_with_a_suppression_comment_stays_on_its_line() -> None:
    # Expanding the body would leave the comment on `}`, where it covers nothing.
    text = (
        'mlspec 1\n\npipeline p {\n  step a {\n    run = "echo"\n'
        "    outputs { debug_dump_with_a_long_name: file, another_dump_with_a_long_name: file, "
        "a_third_one: file }"
        "  # mlc: ignore[E0311]\n  }\n}\n"
    )
    assert formatted(text) == text
    reported, _ = meaning(REPO / "spec.mlspec", text)
    assert reported == Counter()


def test_a_suppression_comment_covers_the_codes_it_lists_on_its_own_line() -> None:
    step = '  step a {{\n    run = "echo"\n    outputs {{ o: file }}{comment}\n  }}\n'
    spec = "mlspec 1\n\npipeline p {{\n" + step + "}}\n"
    cases = {"": 1, "  # mlc: ignore": 0, "  # mlc: ignore[E0311]": 0, "  # mlc: ignore[W0502]": 1}
    for comment, count in cases.items():
        reported, _ = meaning(REPO / "spec.mlspec", spec.format(comment=comment))
        assert sum(reported.values()) == count, comment
