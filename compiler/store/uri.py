"""Opening a store from a path or URI: a path or `file://` is local, anything else is fsspec."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlparse

from mlc.store.base import Store

DEFAULT_STORE = ".mlc"
"""The default local store: `.mlc/` in the project (current) directory."""


def is_remote_uri(uri: str) -> bool:
    """True for `scheme://…` URIs other than `file://` (a Windows drive letter is a path)."""
    scheme = urlparse(uri).scheme
    return len(scheme) > 1 and scheme != "file"


def open_store(
    uri_or_path: str | os.PathLike[str] = DEFAULT_STORE,
    *,
    storage_options: Mapping[str, Any] | None = None,
    create: bool = True,
    cache_dir: str | os.PathLike[str] | None = None,
    workers: int | None = None,
) -> Store:
    """Opens (and by default creates) the store at a local path or a remote URI.

    `storage_options` go to the fsspec filesystem of a remote store (for S3, e.g.
    `{"client_kwargs": {"endpoint_url": "http://127.0.0.1:9000"}}`); credentials come from the
    environment as usual for that filesystem. `cache_dir` is where a remote store keeps its
    local stat cache (default: `~/.cache/mlc/<hash of the URI>`). With `create=False` a missing
    local store raises `StoreNotFoundError`.
    """
    text = os.fspath(uri_or_path)
    if not is_remote_uri(text):
        from mlc.store.local import LocalStore

        path = text[len("file://") :] if text.startswith("file://") else text
        return LocalStore(path, create=create, workers=workers)
    from mlc.store.remote import FsspecStore

    return FsspecStore(
        text,
        storage_options=dict(storage_options or {}),
        cache_dir=None if cache_dir is None else os.fspath(cache_dir),
        workers=workers,
    )


def store_address(store: Store) -> dict[str, Any]:
    """What another process on this machine needs to open the same store (`open_store_at`):
    plain JSON, credentials for a remote store still coming from the environment."""
    if not store.is_remote:
        return {"uri": str(getattr(store, "root", store.uri))}
    return {
        "uri": store.uri,
        "storage_options": dict(getattr(store, "storage_options", {})),
        "cache_dir": getattr(store, "local_dir", None),
    }


def open_store_at(address: Mapping[str, Any]) -> Store:
    """Opens the store a `store_address` describes (it must exist)."""
    return open_store(
        address["uri"],
        storage_options=address.get("storage_options"),
        create=False,
        cache_dir=address.get("cache_dir"),
    )
