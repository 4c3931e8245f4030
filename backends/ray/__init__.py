"""The Ray backend: runs pipelines as Ray tasks, one per attempt, with mlc as the driver.

Registered under the `mlc.backends` entry point `ray`. `description` is read by `mlc lint`
without importing Ray; `create(store, …)` returns the backend, and Ray is imported only when a
step must run. See `docs/ray.md`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from mlc.backends.ray.capabilities import DESCRIPTION

if TYPE_CHECKING:
    from mlc.backends.ray.backend import RayBackend
    from mlc.store.base import Store

description = DESCRIPTION


def create(store: Store, *, environ: Mapping[str, str] | None = None) -> RayBackend:
    """The Ray backend, running pipelines against `store`."""
    from mlc.backends.ray.backend import RayBackend

    return RayBackend(store, environ=environ)
