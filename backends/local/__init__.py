"""The local backend: runs pipelines as processes on this machine (the embedded default).

Registered under the `mlc.backends` entry point `local`. Like every backend plugin, this
module exposes `description` (what the backend honours, read by `mlc lint` without importing
anything heavy) and `create(store, …)` (the backend that runs pipelines, imported on demand);
and `live_log(store, run_id, invocation)`, the log so far of a step that is running.
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


def live_log(store: Store, run_id: str, invocation: str) -> bytes | None:
    """What an invocation of a run that is still going has logged so far, or None (for
    `mlc logs` before the step has ended and its log is in the store)."""
    from mlc.backends.local.workspace import live_log as read_live_log

    return read_live_log(store.local_dir, run_id, invocation)
