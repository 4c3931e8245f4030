"""Source files and spans: where every piece of a spec came from.

A `Span` is a file path with start and end character offsets. Line and column are computed
only when a diagnostic is rendered, from the `SourceFile` that holds the text.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

BYTE_ORDER_MARK = "\ufeff"


def spec_text(text: str) -> str:
    """A file's text as the language reads it: without the UTF-8 byte-order mark that some
    editors (on Windows) write first, so that line 1, column 1 is where an editor shows it."""
    return text.removeprefix(BYTE_ORDER_MARK)


@dataclass(frozen=True, slots=True)
class Span:
    """A half-open range of character offsets `[start, end)` in one source file."""

    path: str
    start: int
    end: int

    def cover(self, other: Span) -> Span:
        """The smallest span that contains both spans (which must be in the same file)."""
        return Span(self.path, min(self.start, other.start), max(self.end, other.end))


@dataclass(frozen=True, slots=True)
class Position:
    """A 1-based line and column, for humans."""

    line: int
    column: int


@dataclass
class SourceFile:
    """The text of one spec file, with a lazily built index of line starts."""

    path: str
    text: str
    _line_starts: list[int] = field(default_factory=list, repr=False)

    def _starts(self) -> list[int]:
        if not self._line_starts:
            starts = [0]
            find = self.text.find
            index = find("\n")
            while index != -1:
                starts.append(index + 1)
                index = find("\n", index + 1)
            self._line_starts = starts
        return self._line_starts

    def position(self, offset: int) -> Position:
        """Line and column (both 1-based, columns counted in characters) of an offset."""
        starts = self._starts()
        line = bisect.bisect_right(starts, offset) - 1
        return Position(line + 1, offset - starts[line] + 1)

    def line_text(self, line: int) -> str:
        """The text of a 1-based line, without its newline."""
        starts = self._starts()
        begin = starts[line - 1]
        end = starts[line] - 1 if line < len(starts) else len(self.text)
        return self.text[begin:end]

    @property
    def line_count(self) -> int:
        """How many lines the file has."""
        return len(self._starts())


class SourceMap:
    """Every source file read during one compilation, by path."""

    def __init__(self) -> None:
        self._files: dict[str, SourceFile] = {}

    def add(self, path: str, text: str) -> SourceFile:
        """Registers a file's text and returns it."""
        source = SourceFile(path, text)
        self._files[path] = source
        return source

    def get(self, path: str) -> SourceFile | None:
        """The file registered under `path`, if any."""
        return self._files.get(path)

    def files(self) -> dict[str, SourceFile]:
        """Every registered file, by path (a copy)."""
        return dict(self._files)

    def position(self, span: Span) -> Position:
        """The start position of a span; (1, 1) when the file is unknown."""
        source = self._files.get(span.path)
        return source.position(span.start) if source else Position(1, 1)
