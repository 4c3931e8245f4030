"""Suppression comments: `# mlc: ignore[CODE, …]` silences those codes on its line, and
`# mlc: ignore` every code on it.

A diagnostic is covered when its primary span starts on the comment's line. `mlc fmt` keeps
that true: it never splits a line that ends in such a comment (see `mlc.front.format`).
"""

from __future__ import annotations

import re

from mlc.diagnostics.model import Diagnostic
from mlc.source import SourceMap

SUPPRESSION = re.compile(r"#\s*mlc:\s*ignore(?:\[([A-Za-z0-9_,\s]+)\])?")


def is_suppression(comment: str) -> bool:
    """Whether a comment's text is a suppression comment."""
    return SUPPRESSION.match(comment.strip()) is not None


def suppressed(diagnostic: Diagnostic, sources: SourceMap) -> bool:
    """Whether a suppression comment on the line where `diagnostic` starts covers its code."""
    source = sources.get(diagnostic.span.path)
    if source is None:
        return False
    line = source.line_text(source.position(diagnostic.span.start).line)
    match = SUPPRESSION.search(line)
    if not match:
        return False
    listed = match.group(1)
    return listed is None or diagnostic.code in {c.strip().upper() for c in listed.split(",")}
