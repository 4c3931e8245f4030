"""`[tool.mlc]` in the nearest `pyproject.toml`: rule selection for `mlc lint`."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class LintConfig:
    """Which codes to report and which paths to skip."""

    select: list[str] = field(default_factory=list)
    ignore: list[str] = field(default_factory=list)
    exclude: list[str] = field(default_factory=list)


def load_config(start: Path) -> LintConfig:
    """Reads `[tool.mlc]` from the first `pyproject.toml` at or above `start`."""
    for folder in (start, *start.parents):
        candidate = folder / "pyproject.toml"
        if candidate.is_file():
            import tomllib

            try:
                data = tomllib.loads(candidate.read_text(encoding="utf-8"))
            except (tomllib.TOMLDecodeError, OSError) as error:
                print(f"warning: ignoring {candidate}: {error}", file=sys.stderr)
                return LintConfig()
            section = data.get("tool", {}).get("mlc", {})
            return LintConfig(
                select=[str(c) for c in section.get("select", [])],
                ignore=[str(c) for c in section.get("ignore", [])],
                exclude=[str(p) for p in section.get("exclude", [])],
            )
    return LintConfig()
