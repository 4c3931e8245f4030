"""Errors the step runtime raises on purpose; `str(error)` is a message written for the user."""

from __future__ import annotations


class RuntimeFailure(Exception):
    """Base of every deliberate runtime error."""


class PreflightError(RuntimeFailure):
    """The pipeline cannot start: a missing secret, a dataset digest mismatch, a step that can
    never fit, a module that cannot be found. Raised before anything runs."""


class StepFailure(RuntimeFailure):
    """One attempt of a step failed for a reason the user can act on (bad exit code, a missing
    output, metrics of the wrong type, a template error). Retries apply."""


class TemplateFailure(StepFailure):
    """A command template could not be rendered (an unknown name, a sandbox violation)."""


class ConditionFailure(StepFailure):
    """A `when` condition could not be evaluated (a missing metric, a type error)."""
