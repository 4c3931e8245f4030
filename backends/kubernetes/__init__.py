"""The Kubernetes backend: runs pipelines as Kubernetes Jobs, one per attempt, no controller.

Registered under the `mlc.backends` entry point `kubernetes`. `description` is read by `mlc
lint` without importing the Kubernetes client; `create(store, …)` returns the backend, which
connects only when a step must run; `write_artifacts` is what `mlc compile --target NAME
--output DIR` writes (RBAC and one Job manifest per step). See `docs/kubernetes.md`.
"""

from __future__ import annotations

from collections.abc import Mapping
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


def write_artifacts(document: IRDocument, output: Path) -> list[Path]:
    """What `mlc compile --target NAME --output DIR` writes for a Kubernetes target (see
    `mlc.backends.kubernetes.artifacts`); raises `ValueError` saying why it cannot."""
    from mlc.backends.kubernetes.artifacts import write_artifacts as write

    return write(document, output)
