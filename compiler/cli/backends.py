"""Finding installed backends through the `mlc.backends` entry points, lazily.

An entry point names a backend plugin: an object (usually a module) with a `description`, a
`BackendDescription` that `mlc lint` reads without importing anything heavy, and, when the
backend can run pipelines, `create(store)` returning the backend. Only the CLI looks plugins
up; the compiler receives their descriptions as data.
"""

from __future__ import annotations

import importlib
import sys
from functools import cache, lru_cache
from typing import TYPE_CHECKING, Any

from mlc.checks.targets import BackendDescription

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

GROUP = "mlc.backends"

TARGET_HELP = (
    "where to run: a `target` block of the spec, or a backend (`local`, `ray`, "
    "`kubernetes`) with its defaults. A backend is how steps run; a target is a named "
    "backend with its settings (store, address, namespace, accelerators, nodes)."
)

# The backends shipped with mlc. They are registered through the entry points like any other,
# but are loaded straight from `mlc.backends`: reading entry points means importing
# `importlib.metadata` and scanning every installed distribution, about 50 ms that `mlc lint`
# would otherwise pay for every spec with a target. Their names are therefore reserved.
BUILT_IN = {
    "local": "mlc.backends.local",
    "ray": "mlc.backends.ray",
    "kubernetes": "mlc.backends.kubernetes",
}


@lru_cache(maxsize=1)
def _entry_points() -> dict[str, EntryPoint]:
    from importlib.metadata import entry_points

    return {ep.name: ep for ep in entry_points(group=GROUP)}


def installed() -> list[str]:
    """Names of every installed backend."""
    return sorted({*BUILT_IN, *_entry_points()})


@cache
def load(name: str) -> Any | None:
    """The backend plugin registered under `name`, or None (a broken plugin is reported)."""
    try:
        if name in BUILT_IN:
            return importlib.import_module(BUILT_IN[name])
        entry = _entry_points().get(name)
        return entry.load() if entry is not None else None
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
