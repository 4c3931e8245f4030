"""The Ray backend: runs pipelines as Ray tasks, one per attempt, with mlc as the driver.

Registered under the `mlc.backends` entry point `ray`. `description` is read by `mlc lint`
without importing Ray; `create(store, …)` returns the backend, and Ray is imported only when a
step must run; `live_log(store, run_id, invocation, ended=…)` is the log of a step that is
running. See `docs/ray.md`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

    from mlc.backends.ray.backend import RayBackend
    from mlc.ir.model import IRDocument
    from mlc.store.base import Store


def __getattr__(name: str) -> object:
    """`description`, loaded on first use: a Ray task imports this package too, and needs
    none of what describing the backend imports (the target checks)."""
    if name == "description":
        from mlc.backends.ray.capabilities import DESCRIPTION

        return DESCRIPTION
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def create(store: Store, *, environ: Mapping[str, str] | None = None) -> RayBackend:
    """The Ray backend, running pipelines against `store`."""
    from mlc.backends.ray.backend import RayBackend

    return RayBackend(store, environ=environ)


def live_log(
    store: Store, run_id: str, invocation: str, *, ended: Callable[[], bool] | None = None
) -> Iterator[bytes]:
    """The log of a step of a run still going, when its attempt runs on this machine (see
    `mlc.backends.ray.logs`)."""
    from mlc.backends.ray.logs import follow_log

    local_dir = str(getattr(store, "local_dir", ".mlc"))
    return follow_log(local_dir, run_id, invocation, ended=ended or (lambda: True))


def write_artifacts(document: IRDocument, output: Path) -> list[Path]:
    """What `mlc compile --target NAME --output DIR` writes for a Ray target (see
    `mlc.backends.ray.artifacts`); raises `ValueError` saying why it cannot."""
    from mlc.backends.ray.artifacts import write_artifacts as write

    return write(document, output)
