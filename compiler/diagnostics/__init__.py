"""Diagnostics: the one model every phase reports problems in, its catalog and renderers."""

from mlc.diagnostics.model import Diagnostic, Label, Severity, has_errors

__all__ = ["Diagnostic", "Label", "Severity", "has_errors"]
