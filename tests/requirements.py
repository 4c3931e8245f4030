"""What a test needs installed: skipped without it on a developer's machine, failed in CI.

CI installs every test dependency (`.ci/run`), so a missing one there is a broken install, and
CI must never pass by skipping the tests that need it.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

import pytest


def require(module: str, why: str) -> ModuleType:
    """Imports `module`, or skips (locally) or fails (under `CI=true`) the calling test."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        message = (
            f"{why} needs `{module}` ({error}); install it with pip install -e '.[test,examples]'"
        )
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
