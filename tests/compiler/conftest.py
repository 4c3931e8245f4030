"""Helpers to check and compile spec text written inline in a test."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from mlc.compile import CheckResult, CompileResult, Options, check_paths, compile_spec

HEADER = "mlspec 1\n"


@pytest.fixture
def check(tmp_path: Path) -> Callable[..., CheckResult]:
    """Checks spec text (the `mlspec 1` header is added) and returns the result."""

    def run(text: str, **options: object) -> CheckResult:
        path = tmp_path / "spec.mlspec"
        path.write_text(HEADER + text, encoding="utf-8")
        return check_paths([path], Options(**options))  # type: ignore[arg-type]

    return run


@pytest.fixture
def compile_text(tmp_path: Path) -> Callable[..., CompileResult]:
    """Compiles spec text to an IR document."""

    def run(text: str, **kwargs: object) -> CompileResult:
        path = tmp_path / "spec.mlspec"
        path.write_text(HEADER + text, encoding="utf-8")
        return compile_spec(path, **kwargs)  # type: ignore[arg-type]

    return run


def codes(result: CheckResult | CompileResult) -> list[str]:
    """The codes of a result's diagnostics, in order."""
    return [d.code for d in result.diagnostics]
