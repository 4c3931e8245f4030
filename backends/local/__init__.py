"""The local backend: runs pipelines as processes on this machine (the embedded default).

Registered under the `mlc.backends` entry point `local`. Like every backend plugin, this
module exposes `description` (what the backend honours, read by `mlc lint` without importing
anything heavy) and `create(store, …)` (the backend that runs pipelines, imported on demand);
and `live_log(store, run_id, invocation, ended=…)`, the log of a step that is running.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
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


def live_log(
    store: Store, run_id: str, invocation: str, *, ended: Callable[[], bool] | None = None
) -> Iterator[bytes]:
    """The log of an invocation of a run that is still going (for `mlc logs` before the step
    has ended and its log is in the store): what it has logged so far, then, with `ended`,
    what it adds until `ended()` is true. Nothing when it is not running."""
    from mlc.backends.local.workspace import follow_live_log

    return follow_live_log(
        store.local_dir, run_id, invocation, ended=ended if ended is not None else lambda: True
    )
