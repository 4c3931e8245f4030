"""What a test needs installed: skipped without it on a developer's machine, failed in CI.

CI installs every test dependency (`.ci/run`), so a missing one there is a broken install, and
CI must never pass by skipping the tests that need it.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType
from typing import NoReturn

import pytest


def require(module: str, why: str) -> ModuleType:
    """Imports `module`, or skips (locally) or fails (under `CI=true`) the calling test."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        message = (
            f"{why} needs `{module}` ({error}); install it with pip install -e '.[test,examples]'"
        )
        unavailable(message)


def in_ci() -> bool:
    """Whether the tests run in CI (`CI` set to 1, true or yes, as `.ci/run` sets it)."""
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def unavailable(message: str) -> NoReturn:
    """Skips the calling test on a developer's machine; fails it in CI, where everything a test
    needs is installed and started by the project, so a missing piece is a broken set-up."""
    if in_ci():
        pytest.fail(message, pytrace=False)
    pytest.skip(message)
