"""String escapes: the ones the language has, and every other one an error at its column."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from mlc.front.escapes import decode, decode_each
from mlc.front.parser import parse


def value(literal: str) -> str:
    decoded = decode(literal)
    assert decoded.problems == ()
    return decoded.value


def test_the_escapes_of_the_language() -> None:
    assert value(r'"a\"b\\c\nd\re\tf\'g"') == "a\"b\\c\nd\re\tf'g"
    assert value(r'"caf\u00e9 \U0001F680"') == "café \U0001f680"
    assert value('"""two\nlines"""') == "two\nlines"
    assert value('"no escapes"') == "no escapes"


@pytest.mark.parametrize(
    ("literal", "escape", "label", "help_has"),
    [
        (r'"x \ud83d\ude80"', r"\ud83d\ude80", "surrogate pair", r"`\U0001F680`"),
        (r'"x \ud800"', r"\ud800", "lone UTF-16 surrogate", r"\UXXXXXXXX"),
        (r'"x \udc00\ud800"', r"\udc00", "lone UTF-16 surrogate", ""),
        (r'"x \U00110000"', r"\U00110000", "U+10FFFF", ""),
        (r'"x \x41"', r"\x41", r"`\x`", r"`\u0041`"),
        (r'"x \x4"', r"\x4", r"`\x`", r"`\uXXXX`"),
        (r'"x \N{ROCKET}"', r"\N{ROCKET}", "named escapes", r"`\U0001F680`"),
        (r'"x \N{NO SUCH NAME}"', r"\N{NO SUCH NAME}", "named escapes", "character itself"),
        (r'"x \q"', r"\q", "not an escape", r"`\\`"),
        (r'"x \u12"', r"\u12", "4 hex digits", r"`\u00E9`"),
        (r'"x \U1234"', r"\U1234", "8 hex digits", ""),
        ('"""x \\\ny"""', "\\", "end of a line", r"`\\`"),
    ],
)
def test_an_escape_outside_the_language_is_a_problem_where_it_is_written(
    literal: str, escape: str, label: str, help_has: str
) -> None:
    decoded = decode(literal)
    (problem,) = decoded.problems[:1]
    assert (problem.escape, literal[problem.start : problem.end]) == (escape, escape)
    assert label in problem.label
    assert help_has in problem.help


def test_a_nul_is_found_raw_or_escaped() -> None:
    assert decode('"a\x00b"').nul_at == (2, 3)
    assert decode(r'"ab\u0000"').nul_at == (3, 9)
    assert decode(r'"ab\U00000000"').nul_at == (3, 13)
    assert decode('"ab"').nul_at is None


def test_the_parser_reports_each_bad_escape_at_its_own_column() -> None:
    text = 'mlspec 1\nx { a = "ok \\q and \\ud800", "k\\x41" = 1 }\n'
    result = parse(text, "spec.mlspec")
    assert result.module is not None
    found = [(d.code, text[d.span.start : d.span.end]) for d in result.diagnostics]
    assert found == [("E0010", "\\q"), ("E0010", "\\ud800"), ("E0010", "\\x41")]


@given(st.text())
def test_any_decoded_string_is_valid_unicode(body: str) -> None:
    # Whatever follows the backslashes, the value can be encoded as UTF-8.
    literal = '"' + body.replace('"', "").replace("\n", "") + '"'
    decode(literal).value.encode("utf-8")


@given(st.text(alphabet='\\uUdD8aAfF0123456789x{}N"', max_size=20))
def test_escape_soup_is_valid_unicode_and_problems_lie_inside_the_literal(body: str) -> None:
    literal = '"' + body.replace('"', "") + '"'
    decoded = decode(literal)
    decoded.value.encode("utf-8")
    for problem in decoded.problems:
        assert 1 <= problem.start < problem.end <= len(literal) - 1


@given(st.text(alphabet="\\nrt\"'ux0aZ é", max_size=30))
def test_the_fast_path_decodes_as_escape_by_escape_does(body: str) -> None:
    literal = '"' + body.replace('"', '\\"') + '"'
    assert decode(literal) == decode_each(literal)
