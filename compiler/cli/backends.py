"""Finding installed backends through the `mlc.backends` entry points, lazily.

An entry point names a backend plugin: an object (usually a module) with a `description`, a
`BackendDescription` that `mlc lint` reads without importing anything heavy, and, when the
backend can run pipelines, `create(store)` returning the backend. Only the CLI looks plugins
up; the compiler receives their descriptions as data.
"""

from __future__ import annotations

import sys
from functools import cache, lru_cache
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from mlc.checks.targets import BackendDescription

GROUP = "mlc.backends"


@lru_cache(maxsize=1)
def _entry_points() -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=GROUP)}


def installed() -> list[str]:
    """Names of every installed backend."""
    return sorted(_entry_points())


@cache
def load(name: str) -> Any | None:
    """The backend plugin registered under `name`, or None (a broken plugin is reported)."""
    entry = _entry_points().get(name)
    if entry is None:
        return None
    try:
        return entry.load()
    except Exception as error:
        print(f"warning: backend `{name}` cannot be loaded ({error})", file=sys.stderr)
        return None


def describe(name: str) -> BackendDescription | None:
    """The description a backend declares, or None when no such backend is installed."""
    plugin = load(name)
    if plugin is None:
        return None
    description = getattr(plugin, "description", None)
    return description if isinstance(description, BackendDescription) else None
