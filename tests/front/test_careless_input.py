"""Files that are empty, hold only comments, start with a byte-order mark, or carry other
accidents of editors: each gets the diagnostic of its real mistake, at the right place."""

from __future__ import annotations

import pytest
from mlc.front.parser import parse


@pytest.mark.parametrize("text", ["", "\n\n  \n", "# only a comment", "# one\n\n# two\n"])
def test_an_empty_file_and_a_file_of_comments_get_the_same_error(text: str) -> None:
    (diagnostic,) = parse(text, "spec.mlspec").diagnostics
    assert (diagnostic.code, diagnostic.message, diagnostic.help) == (
        "E0003",
        "a spec must start with `mlspec 1`",
        "add `mlspec 1` as the first line of the file",
    )
    assert (diagnostic.span.start, diagnostic.span.end) == (0, 0)
    assert diagnostic.primary.message in ("the file is empty", "the file holds only comments")


def test_a_byte_order_mark_reads_as_a_space_when_the_parser_sees_it() -> None:
    text = "\ufeffmlspec 1\nx { a = }\n"
    (diagnostic,) = parse(text, "spec.mlspec").diagnostics
    assert text[diagnostic.span.start : diagnostic.span.end] == "}"


@pytest.mark.parametrize(
    "literal",
    ['"' + "x" * 2**20 + '"', '"""' + "x\n" * 2**19 + '"""', '"' + "\\n" * 2**19 + '"'],
    ids=["string", "long string", "escapes"],
)
def test_lexing_a_1_mib_string_allocates_a_few_bytes_per_character(literal: str) -> None:
    # Memory, not time: what tracemalloc counts is the same on a busy machine.
    import tracemalloc

    text = f"mlspec 1\nx {{ a = {literal} }}\n"
    parse("mlspec 1\n", "warm.mlspec")
    tracemalloc.start()
    try:
        result = parse(text, "spec.mlspec")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert result.diagnostics == ()
    assert peak < 20 * len(literal), f"{peak / len(literal):.0f} bytes per character"
