"""Rendered diagnostics: the human excerpt, JSON, GitHub annotations and SARIF."""

from __future__ import annotations

import json
from collections.abc import Callable

from mlc.compile import CheckResult
from mlc.diagnostics.render import render_github, render_human, render_json, render_sarif

SPEC = """
pipeline p {
  step prepare {
    run = "prep --out {{ outputs.train }}"
    outputs { train: dataset }
  }
  step train {
    run = "train {{ inputs.data }}"
    inputs { data: dataset = prepare.trian }
  }
}
"""


def test_the_human_rendering_points_at_the_name_with_a_suggestion(
    check: Callable[..., CheckResult],
) -> None:
    result = check(SPEC)
    path = result.diagnostics[0].span.path
    assert render_human(result.diagnostics, result.sources) == (
        f"error[E0110]: step `prepare` has no output `trian`\n"
        f"  --> {path}:10:38\n"
        f"   |\n"
        f"10 |     inputs {{ data: dataset = prepare.trian }}\n"
        f"   |                                      ^^^^^ no such output\n"
        f"   |\n"
        f"help: did you mean `train`?\n"
        f"\n"
    )


def test_colour_is_only_added_when_asked(check: Callable[..., CheckResult]) -> None:
    result = check(SPEC)
    assert "\x1b[" not in render_human(result.diagnostics, result.sources)
    assert "\x1b[1;31merror[E0110]" in render_human(result.diagnostics, result.sources, colour=True)


def test_json_github_and_sarif_carry_the_same_position(check: Callable[..., CheckResult]) -> None:
    result = check(SPEC)
    document = json.loads(render_json(result.diagnostics, result.sources, files=1))
    (entry,) = document["diagnostics"]
    assert (entry["code"], entry["line"], entry["column"], entry["end_column"]) == (
        "E0110",
        10,
        38,
        43,
    )
    assert document["summary"] == {"files": 1, "errors": 1, "warnings": 0}

    annotation = render_github(result.diagnostics, result.sources)
    assert annotation.startswith("::error file=")
    assert ",line=10,col=38,endLine=10,endColumn=43,title=E0110::" in annotation

    sarif = json.loads(render_sarif(result.diagnostics, result.sources))
    (run,) = sarif["runs"]
    (finding,) = run["results"]
    region = finding["locations"][0]["physicalLocation"]["region"]
    assert (finding["ruleId"], region["startLine"], region["startColumn"]) == ("E0110", 10, 38)
    assert run["tool"]["driver"]["rules"][0]["id"] == "E0110"


def test_no_format_carries_a_character_a_terminal_would_act_on() -> None:
    from mlc.diagnostics import catalog as codes
    from mlc.source import SourceMap, Span

    sources = SourceMap()
    sources.add("spec.mlspec", 'mlspec 1\n# \x1b[2J clear\r\nx = "\ud800"\n')
    diagnostic = codes.INVALID_VALUE.at(
        Span("spec.mlspec", 12, 20),
        "label \x1b[2J",
        name="a\nb",
        reason="lone \ud800 and \u2028",
        help="help \x07",
    )
    outputs = [
        render_human([diagnostic], sources),
        render_json([diagnostic], sources, files=1),
        render_github([diagnostic], sources),
        render_sarif([diagnostic], sources),
    ]
    for output in outputs:
        output.encode("utf-8")  # no lone surrogate
        assert not any(char in output for char in "\x1b\x07\u2028\r")
    human = outputs[0]
    assert "invalid value for `a\\nb`: lone \\ud800 and \\u2028" in human
    assert "2 | # \ufffd[2J clear\n" in human


def _one_error_at(line: str, start: int, end: int) -> tuple[object, object]:
    from mlc.diagnostics import catalog as codes
    from mlc.source import SourceMap, Span

    sources = SourceMap()
    text = "mlspec 1\n" + line + "\n"
    sources.add("spec.mlspec", text)
    offset = len("mlspec 1\n")
    return codes.UNKNOWN_NAME.at(
        Span("spec.mlspec", offset + start, offset + end), "here", name="x"
    ), sources


def test_a_very_long_line_is_cut_around_the_span_and_the_carets_still_point_at_it() -> None:
    line = "a" * 500_000 + "BAD" + "z" * 500_000
    diagnostic, sources = _one_error_at(line, 500_000, 500_003)
    rendered = render_human([diagnostic], sources)  # type: ignore[list-item, arg-type]
    assert len(rendered) < 600
    excerpt, carets = rendered.splitlines()[3:5]
    source_part, caret_part = excerpt.split(" | ", 1), carets.split(" | ", 1)
    shown, marks = source_part[1], caret_part[1]
    assert shown.startswith("…") and shown.endswith("…")
    assert shown[marks.index("^") : marks.index("^") + 3] == "BAD"
    assert marks.strip() == "^^^ here"


def test_a_span_running_past_the_cut_is_cut_with_the_line() -> None:
    diagnostic, sources = _one_error_at("x" * 10 + "y" * 5000, 10, 5010)
    rendered = render_human([diagnostic], sources)  # type: ignore[list-item, arg-type]
    carets = rendered.splitlines()[4]
    assert 90 <= carets.count("^") <= 100


def test_a_short_line_is_shown_whole() -> None:
    diagnostic, sources = _one_error_at("x = nope", 4, 8)
    rendered = render_human([diagnostic], sources)  # type: ignore[list-item, arg-type]
    assert "2 | x = nope\n  |     ^^^^ here\n" in rendered


def test_a_very_long_quoted_value_in_a_message_is_shortened() -> None:
    from mlc.diagnostics import catalog as codes
    from mlc.source import SourceMap, Span

    sources = SourceMap()
    sources.add("spec.mlspec", "mlspec 1\n")
    diagnostic = codes.UNKNOWN_ACCELERATOR.at(Span("spec.mlspec", 0, 1), "", name="a" * 10**6)
    for rendered in (render_human([diagnostic], sources), render_github([diagnostic], sources)):
        assert len(rendered) < 1000
        assert "`" + "a" * 100 + "…" + "a" * 20 + "`" in rendered
    (entry,) = json.loads(render_json([diagnostic], sources, files=1))["diagnostics"]
    assert "a" * 10**6 in entry["message"], "JSON keeps the whole value for machines"
