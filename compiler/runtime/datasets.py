"""Resolving declared datasets to digests before anything runs.

A dataset's `uri` is a local path (relative to the spec's directory, absolute, or `file://`).
Its data is snapshotted into the store (the stat cache makes this cheap when nothing changed):

- `digest`: the snapshot must have exactly that digest, or the run does not start;
- `tag` / `latest`: `mlc.lock` says which digest to use. If the data has moved on since it was
  locked, the locked version is used from the store (with a warning), or the run does not start
  when the store no longer has it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from mlc.ir.model import Dataset, IRDocument
from mlc.runtime.errors import PreflightError
from mlc.runtime.lockfile import LOCK_FILE, LockedDataset, version_label
from mlc.store.base import Store
from mlc.store.digest import Digest
from mlc.store.errors import StoreError


@dataclass(frozen=True, slots=True)
class ResolvedDataset:
    """A dataset with the digest a run uses, and its kind (`file` or `dir`)."""

    dataset: Dataset
    digest: Digest
    kind: str


@dataclass(slots=True)
class ResolvedDatasets:
    """Every dataset of a document, resolved, and warnings for the user."""

    by_name: dict[str, ResolvedDataset] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def local_path(dataset: Dataset, base_dir: str) -> Path:
    """The local path of a dataset's `uri`; a remote URI is a `PreflightError`."""
    uri = dataset.uri
    if uri.startswith("file://"):
        uri = uri[len("file://") :]
    elif "://" in uri:
        raise PreflightError(
            f"dataset `{dataset.name}` is at `{dataset.uri}`; only local paths can be read here"
        )
    path = Path(uri)
    return path if path.is_absolute() else Path(base_dir, path)


def snapshot_dataset(store: Store, dataset: Dataset, base_dir: str) -> tuple[Digest, str]:
    """Puts a dataset's current data in the store; returns (digest, kind)."""
    path = local_path(dataset, base_dir)
    if not path.exists():
        raise PreflightError(f"dataset `{dataset.name}`: {path} does not exist")
    try:
        version = store.snapshot(path)
    except StoreError as exc:
        raise PreflightError(f"dataset `{dataset.name}`: {exc}") from None
    return version.digest, version.kind


def resolve_datasets(
    document: IRDocument, store: Store, lock: Mapping[str, LockedDataset]
) -> ResolvedDatasets:
    """Resolves every dataset; problems with all of them are raised as one `PreflightError`."""
    resolved = ResolvedDatasets()
    problems: list[str] = []
    for dataset in document.pipeline.datasets:
        try:
            item = _resolve(dataset, document.base_dir, store, lock, resolved.warnings)
        except PreflightError as exc:
            problems.append(str(exc))
            continue
        resolved.by_name[dataset.name] = item
    if problems:
        raise PreflightError("\n".join(problems))
    return resolved


def _resolve(
    dataset: Dataset,
    base_dir: str,
    store: Store,
    lock: Mapping[str, LockedDataset],
    warnings: list[str],
) -> ResolvedDataset:
    digest, kind = snapshot_dataset(store, dataset, base_dir)
    if dataset.version.kind == "digest":
        if digest != dataset.version.value:
            where = dataset.source
            raise PreflightError(
                f"dataset `{dataset.name}` changed under its pin\n"
                f"--> {where.file}:{where.line}:{where.column}\n"
                f"= note: the spec pins {dataset.version.value}\n"
                f"= note: the data at `{dataset.uri}` is {digest}\n"
                f'help: restore the data, or pin the new version: `version = "{digest}"`'
            )
        return ResolvedDataset(dataset, digest, kind)
    entry = lock.get(dataset.name)
    wanted = version_label(dataset)
    if entry is None or entry.uri != dataset.uri or entry.version != wanted:
        why = "has no entry for it" if entry is None else "resolved an older declaration of it"
        raise PreflightError(
            f"dataset `{dataset.name}` is pinned to `{wanted}`, which {LOCK_FILE} resolves, but "
            f"{LOCK_FILE} {why}; `mlc apply` writes it (unless --locked), or run `mlc lock` "
            "on the spec"
        )
    locked = Digest(entry.digest)
    if locked == digest:
        return ResolvedDataset(dataset, digest, kind)
    if not store.has(locked):
        raise PreflightError(
            f"dataset `{dataset.name}` is locked to {locked}, but the data at `{dataset.uri}` "
            f"is now {digest} and the store no longer has the locked version; run `mlc lock` "
            "to use the current data"
        )
    warnings.append(
        f"dataset `{dataset.name}` changed since it was locked; using the locked version "
        f"{locked[:19]} (run `mlc lock` to move to {digest[:19]})"
    )
    return ResolvedDataset(dataset, locked, store.kind(locked))
