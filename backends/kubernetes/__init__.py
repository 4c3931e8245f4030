"""The Kubernetes backend: runs pipelines as Kubernetes Jobs, one per attempt, no controller.

Registered under the `mlc.backends` entry point `kubernetes`. `description` is read by `mlc
lint` without importing the Kubernetes client; `create(store, …)` returns the backend, which
connects only when a step must run; `live_log` is the log of a step still running;
`write_artifacts` is what `mlc compile --target NAME
--output DIR` writes (RBAC and one Job manifest per step). See `docs/kubernetes.md`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING

from mlc.backends.kubernetes.capabilities import DESCRIPTION

if TYPE_CHECKING:
    from pathlib import Path

    from mlc.backends.kubernetes.backend import KubernetesBackend
    from mlc.ir.model import IRDocument
    from mlc.store.base import Store

description = DESCRIPTION


def create(store: Store, *, environ: Mapping[str, str] | None = None) -> KubernetesBackend:
    """The Kubernetes backend, running pipelines against `store`."""
    from mlc.backends.kubernetes.backend import KubernetesBackend

    return KubernetesBackend(store, environ=environ)


def live_log(
    store: Store, run_id: str, invocation: str, *, ended: Callable[[], bool] | None = None
) -> Iterator[bytes]:
    """The log of a step of a run still going: its pod's (see `mlc.backends.kubernetes.logs`)."""
    from mlc.backends.kubernetes.logs import follow_log

    return follow_log(store, run_id, invocation, ended=ended or (lambda: True))


def write_artifacts(document: IRDocument, output: Path) -> list[Path]:
    """What `mlc compile --target NAME --output DIR` writes for a Kubernetes target (see
    `mlc.backends.kubernetes.artifacts`); raises `ValueError` saying why it cannot."""
    from mlc.backends.kubernetes.artifacts import write_artifacts as write

    return write(document, output)
