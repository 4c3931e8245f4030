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
