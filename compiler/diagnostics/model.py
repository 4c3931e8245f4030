"""The diagnostic model: severity, stable code, one-line message, spans, notes and help.

Phases never raise on bad input; they return lists of `Diagnostic`. Renderers (human, JSON,
GitHub annotations, SARIF) are separate functions over the same objects.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from mlc.source import Span


class Severity(StrEnum):
    """How bad a diagnostic is; only errors make a command fail."""

    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, slots=True)
class Label:
    """A span with a short remark shown under the caret line."""

    span: Span
    message: str = ""


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One problem found in a spec, with everything needed to render it."""

    code: str
    severity: Severity
    message: str
    primary: Label
    secondary: tuple[Label, ...] = ()
    notes: tuple[str, ...] = ()
    help: str | None = None
    extra: dict[str, str] = field(default_factory=dict, compare=False, hash=False)

    @property
    def span(self) -> Span:
        """The primary span."""
        return self.primary.span


def has_errors(diagnostics: Iterable[Diagnostic]) -> bool:
    """Whether any diagnostic is an error."""
    return any(d.severity is Severity.ERROR for d in diagnostics)


def sort_key(diagnostic: Diagnostic) -> tuple[str, int, int, str]:
    """Orders diagnostics by file, then position, then code, for stable output."""
    span = diagnostic.span
    return (span.path, span.start, span.end, diagnostic.code)
