"""Renderers over diagnostics: human (rustc style, colour on a terminal), JSON and GitHub.

All three take the same `Diagnostic` objects and a `SourceMap` to turn spans into lines and
columns; none of them decides anything.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

from mlc.diagnostics.model import Diagnostic, Label, Severity
from mlc.source import SourceFile, SourceMap

_COLOURS = {"error": "\x1b[1;31m", "warning": "\x1b[1;33m", "help": "\x1b[1;36m", "dim": "\x1b[34m"}
_RESET = "\x1b[0m"
_BOLD = "\x1b[1m"


# Characters a terminal or a log would act on or cannot print: C0 and C1 controls (an escape
# sequence in a comment must not clear a screen), line and paragraph separators, and lone
# surrogates (which no UTF-8 stream can encode).
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")


# A quoted value longer than this is shown by its start and end (`aaaa…aaaa`): a message
# about a 1 MB string is one line, not a megabyte.
QUOTE_WIDTH = 200
_LONG_QUOTE = re.compile(f"`([^`]{{{QUOTE_WIDTH + 1},}})`")
_LONG_TEXT = 2000


def printable(text: str) -> str:
    """`text` for a terminal or a log: every character a terminal would act on written as an
    escape (`\\u001b`), long quoted values shortened, and at most a couple of thousand
    characters in all."""
    text = _LONG_QUOTE.sub(_shortened, text)
    if len(text) > _LONG_TEXT:
        text = text[: _LONG_TEXT - 1] + "…"
    return _UNPRINTABLE.sub(lambda m: _escaped(m.group()), text)


def _shortened(match: re.Match[str]) -> str:
    quoted = match.group(1)
    keep = QUOTE_WIDTH // 2
    return f"`{quoted[:keep]}…{quoted[-20:]}`"


_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escaped(char: str) -> str:
    return _ESCAPES.get(char) or f"\\u{ord(char):04x}"


def printable_keeping_newlines(text: str) -> str:
    """Like `printable`, for formats that encode line breaks themselves (GitHub's `%0A`)."""
    return "\n".join(printable(line) for line in text.split("\n"))


def _printable_line(text: str) -> str:
    """A source line for an excerpt: one character for one, so carets stay aligned."""
    return _UNPRINTABLE.sub("\ufffd", text.rstrip("\r").replace("\t", " "))


class _Style:
    def __init__(self, colour: bool) -> None:
        self.colour = colour

    def paint(self, text: str, style: str) -> str:
        if not self.colour:
            return text
        code = _BOLD if style == "bold" else _COLOURS[style]
        return f"{code}{text}{_RESET}"


def render_human(
    diagnostics: Sequence[Diagnostic], sources: SourceMap, *, colour: bool = False
) -> str:
    """Renders diagnostics the way rustc does, with source excerpts and carets."""
    style = _Style(colour)
    return "".join(_render_one(d, sources, style) + "\n" for d in diagnostics)


def _render_one(diagnostic: Diagnostic, sources: SourceMap, style: _Style) -> str:
    severity = diagnostic.severity.value
    lines = [
        style.paint(f"{severity}[{diagnostic.code}]", severity)
        + style.paint(f": {printable(diagnostic.message)}", "bold")
    ]
    span = diagnostic.span
    source = sources.get(span.path)
    position = sources.position(span)
    lines.append(
        f"  {style.paint('-->', 'dim')} {printable(span.path)}:{position.line}:{position.column}"
    )
    if source is not None:
        labels = [(diagnostic.primary, True)] + [(s, False) for s in diagnostic.secondary]
        labels = [(label, primary) for label, primary in labels if label.span.path == span.path]
        width = len(str(max(source.position(label.span.start).line for label, _ in labels)))
        gutter = style.paint(" " * width + " |", "dim")
        lines.append(gutter)
        for label, primary in sorted(labels, key=lambda item: item[0].span.start):
            lines.extend(_excerpt(label, primary, source, width, style, severity))
        lines.append(gutter)
    for label in diagnostic.secondary:
        if label.span.path != span.path:
            other = sources.position(label.span)
            where = f"{printable(label.span.path)}:{other.line}:{other.column}"
            lines.append(f"  = note: {printable(label.message)} ({where})")
    for note in diagnostic.notes:
        lines.append(f"  = note: {printable(note)}")
    if diagnostic.help:
        lines.append(style.paint("help", "help") + f": {printable(diagnostic.help)}")
    return "\n".join(lines) + "\n"


# An excerpt shows at most this many characters of a line: a longer line is cut around the
# span, with `…` where text was left out (a minified 2 MB line is one short line of output).
EXCERPT_WIDTH = 100
_CONTEXT_BEFORE = 40


def _excerpt(
    label: Label, primary: bool, source: SourceFile, width: int, style: _Style, severity: str
) -> list[str]:
    start = source.position(label.span.start)
    end = source.position(max(label.span.end - 1, label.span.start))
    text = _printable_line(source.line_text(start.line))
    number = style.paint(f"{start.line:>{width}} |", "dim")
    first = start.column - 1
    last = (end.column if end.line == start.line else len(text) + 1) - 1
    shown, first, last = _cut(text, first, max(first, last))
    marker = ("^" if primary else "-") * (last - first + 1)
    caret_line = " " * first + marker
    if label.message:
        caret_line += " " + printable(label.message)
    painted = style.paint(caret_line, severity if primary else "dim")
    return [f"{number} {shown}".rstrip(), style.paint(" " * width + " |", "dim") + " " + painted]


def _cut(text: str, first: int, last: int) -> tuple[str, int, int]:
    """The part of a line an excerpt shows and the span's first and last column in it (0-based):
    the whole line when it is short, else a window that starts a little before the span."""
    if len(text) <= EXCERPT_WIDTH:
        return text, first, last
    begin = max(0, min(first - _CONTEXT_BEFORE, len(text) - EXCERPT_WIDTH))
    stop = begin + EXCERPT_WIDTH
    shown = text[begin:stop]
    shift = 0
    if begin > 0:
        shown, shift = "…" + shown, 1
    if stop < len(text):
        shown += "…"
    first = first - begin + shift
    last = min(last, stop - 1) - begin + shift
    return shown, first, max(first, last)


def summary_line(diagnostics: Sequence[Diagnostic], files: int) -> str:
    """One line: how many errors and warnings in how many files."""
    errors = sum(d.severity is Severity.ERROR for d in diagnostics)
    warnings = len(diagnostics) - errors
    checked = f"{files} file{'s' if files != 1 else ''} checked"
    if not diagnostics:
        return f"{checked}, no problems"
    parts = []
    if errors:
        parts.append(f"{errors} error{'s' if errors != 1 else ''}")
    if warnings:
        parts.append(f"{warnings} warning{'s' if warnings != 1 else ''}")
    return f"{checked}, {' and '.join(parts)}"


def to_json_objects(
    diagnostics: Sequence[Diagnostic], sources: SourceMap
) -> list[dict[str, object]]:
    """Diagnostics as plain JSON-ready dictionaries with 1-based lines and columns."""
    result: list[dict[str, object]] = []
    for diagnostic in diagnostics:
        result.append(
            {
                "code": diagnostic.code,
                "severity": diagnostic.severity.value,
                "message": diagnostic.message,
                "file": diagnostic.span.path,
                **_range(diagnostic.primary, sources),
                "label": diagnostic.primary.message,
                "notes": list(diagnostic.notes),
                "help": diagnostic.help,
                "related": [
                    {"file": s.span.path, **_range(s, sources), "label": s.message}
                    for s in diagnostic.secondary
                ],
            }
        )
    return result


def _range(label: Label, sources: SourceMap) -> dict[str, int]:
    start = sources.position(label.span)
    source = sources.get(label.span.path)
    end = source.position(label.span.end) if source else start
    return {
        "line": start.line,
        "column": start.column,
        "end_line": end.line,
        "end_column": end.column,
        "offset": label.span.start,
        "length": label.span.end - label.span.start,
    }


def render_json(diagnostics: Sequence[Diagnostic], sources: SourceMap, files: int) -> str:
    """A JSON document with every diagnostic and a summary."""
    errors = sum(d.severity is Severity.ERROR for d in diagnostics)
    document = {
        "diagnostics": to_json_objects(diagnostics, sources),
        "summary": {"files": files, "errors": errors, "warnings": len(diagnostics) - errors},
    }
    return json.dumps(document, indent=2, sort_keys=True)


def _github_escape(text: str, *, property_value: bool = False) -> str:
    text = (
        printable_keeping_newlines(text)
        .replace("%", "%25")
        .replace("\r", "%0D")
        .replace("\n", "%0A")
    )
    if property_value:
        text = text.replace(":", "%3A").replace(",", "%2C")
    return text


def render_github(diagnostics: Sequence[Diagnostic], sources: SourceMap) -> str:
    """GitHub Actions workflow commands: one `::error` or `::warning` line per diagnostic."""
    lines = []
    for diagnostic in diagnostics:
        start = sources.position(diagnostic.span)
        source = sources.get(diagnostic.span.path)
        end = source.position(diagnostic.span.end) if source else start
        kind = "error" if diagnostic.severity is Severity.ERROR else "warning"
        properties = ",".join(
            [
                f"file={_github_escape(diagnostic.span.path, property_value=True)}",
                f"line={start.line}",
                f"col={start.column}",
                f"endLine={end.line}",
                f"endColumn={end.column}",
                f"title={_github_escape(diagnostic.code, property_value=True)}",
            ]
        )
        message = diagnostic.message + "".join(
            f" ({label.message}: {_where(label, sources)})" for label in diagnostic.secondary
        )
        message += f" (help: {diagnostic.help})" if diagnostic.help else ""
        lines.append(f"::{kind} {properties}::{_github_escape(message)}")
    return "\n".join(lines) + ("\n" if lines else "")


def _where(label: Label, sources: SourceMap) -> str:
    position = sources.position(label.span)
    return f"{label.span.path}:{position.line}:{position.column}"


def _sarif_location(label: Label, sources: SourceMap) -> dict[str, object]:
    start = sources.position(label.span)
    source = sources.get(label.span.path)
    end = source.position(label.span.end) if source else start
    return {
        "physicalLocation": {
            "artifactLocation": {"uri": label.span.path},
            "region": {
                "startLine": start.line,
                "startColumn": start.column,
                "endLine": end.line,
                "endColumn": end.column,
            },
        }
    }


def render_sarif(diagnostics: Sequence[Diagnostic], sources: SourceMap) -> str:
    """A SARIF 2.1.0 log, for code-scanning tools."""
    from mlc import __version__
    from mlc.diagnostics.catalog import CATALOG

    used = sorted({d.code for d in diagnostics})
    rules = [
        {"id": code, "shortDescription": {"text": CATALOG[code].template}}
        for code in used
        if code in CATALOG
    ]
    results = []
    for diagnostic in diagnostics:
        result: dict[str, object] = {
            "ruleId": diagnostic.code,
            "level": "error" if diagnostic.severity is Severity.ERROR else "warning",
            "message": {
                "text": diagnostic.message
                + (f" (help: {diagnostic.help})" if diagnostic.help else "")
            },
            "locations": [_sarif_location(diagnostic.primary, sources)],
        }
        if diagnostic.secondary:
            result["relatedLocations"] = [
                {
                    "id": index,
                    "message": {"text": label.message},
                    **_sarif_location(label, sources),
                }
                for index, label in enumerate(diagnostic.secondary)
            ]
        results.append(result)
    log = {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [
            {
                "tool": {"driver": {"name": "mlc", "version": __version__, "rules": rules}},
                "results": results,
            }
        ],
    }
    return json.dumps(log, indent=2, sort_keys=True)
