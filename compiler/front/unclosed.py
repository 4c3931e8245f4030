"""Which block a missing `}` belongs to, guessed from indentation (as rustc and Elm do).

When a `}` is deleted, braces still pair up, one level off: the `}` meant for the block with
the missing brace closes the block around it, and the parser only notices at the end of the
file, at the outermost `{`. Indentation tells the story better: a `}` that starts a line
closes a block opened on a line indented as much. The first `}` that pops a `{` opened on a
line indented further in shows that this `{` lost its own `}`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Unclosed:
    """A `{` whose block was likely not closed, and where its `}` likely belongs."""

    brace: int
    """Offset of the `{`."""
    before_line: int | None
    """1-based number of the first line after the block's content (a `}` goes before it)."""


def guess_unclosed(masked: str) -> Unclosed | None:
    """The block whose `}` is missing, in text whose strings and comments are blanked out
    (offsets unchanged); None when indentation does not tell."""
    lines = masked.split("\n")
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line) + 1)
    stack: list[tuple[int, int, int]] = []  # (offset, indent of its line, its line index)
    for number, line in enumerate(lines):
        indent = len(line) - len(line.lstrip(" \t"))
        for column, char in enumerate(line):
            if char == "{":
                stack.append((starts[number] + column, indent, number))
            elif char == "}" and stack:
                offset, opened_indent, opened_line = stack.pop()
                if column == indent and opened_indent > indent:
                    return Unclosed(offset, _end_of_block(lines, opened_line, opened_indent))
    return None


def _end_of_block(lines: list[str], opened: int, indent: int) -> int | None:
    """The first line after `opened` that is indented no further than `indent` (blank lines
    and comments, blanked out, do not count), 1-based."""
    for number in range(opened + 1, len(lines)):
        stripped = lines[number].lstrip(" \t")
        if stripped and len(lines[number]) - len(stripped) <= indent:
            return number + 1
    return None
