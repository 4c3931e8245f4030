"""The local backend: runs pipelines as processes on this machine (the embedded default).

Registered under the `mlc.backends` entry point `local`. Like every backend plugin, this
module exposes `description` (what the backend honours, read by `mlc lint` without importing
anything heavy) and `create(store, …)` (the backend that runs pipelines, imported on demand).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from mlc.backends.local.capabilities import DESCRIPTION

if TYPE_CHECKING:
    from mlc.backends.local.backend import LocalBackend
    from mlc.store.base import Store

description = DESCRIPTION


def create(store: Store, *, environ: Mapping[str, str] | None = None) -> LocalBackend:
    """The local backend, running pipelines against `store`."""
    from mlc.backends.local.backend import LocalBackend

    return LocalBackend(store, environ=environ)
