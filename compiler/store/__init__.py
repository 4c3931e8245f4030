"""The content-addressed store: versioned data, stat cache, remote stores, GC and lineage.

Open a store with `open_store(path_or_uri)`; snapshot data with `store.snapshot(path)`; read it
back with `read_bytes`, `read_manifest` or `materialize`. Layout, guarantees and commands are
described in `docs/store.md`. Importing this package is cheap: fsspec and s3fs load only when a
remote store is opened, SQLite only when the stat cache or lineage is used.
"""

from mlc.store.base import ObjectKind, Store, StoredObject, VerifyReport, Version
from mlc.store.digest import Digest, digest_bytes, find_digests, is_digest, parse_digest
from mlc.store.errors import (
    CorruptObjectError,
    DestinationExistsError,
    FileChangedError,
    InvalidDigestError,
    ManifestError,
    ObjectNotFoundError,
    RecordExistsError,
    RecordNotFoundError,
    StoreError,
    StoreNotFoundError,
    StoreWriteError,
    UnreadableRecordError,
    UnsafePathError,
    UnsupportedFileError,
)
from mlc.store.gc import GCReport, gc, parse_duration
from mlc.store.hashing import hash_file, hash_files
from mlc.store.manifest import Manifest, ManifestEntry
from mlc.store.uri import DEFAULT_STORE, is_remote_uri, open_store

__all__ = [
    "DEFAULT_STORE",
    "CorruptObjectError",
    "DestinationExistsError",
    "Digest",
    "FileChangedError",
    "GCReport",
    "InvalidDigestError",
    "Manifest",
    "ManifestEntry",
    "ManifestError",
    "ObjectKind",
    "ObjectNotFoundError",
    "RecordExistsError",
    "RecordNotFoundError",
    "Store",
    "StoreError",
    "StoreNotFoundError",
    "StoreWriteError",
    "StoredObject",
    "UnreadableRecordError",
    "UnsafePathError",
    "UnsupportedFileError",
    "VerifyReport",
    "Version",
    "digest_bytes",
    "find_digests",
    "gc",
    "hash_file",
    "hash_files",
    "is_digest",
    "is_remote_uri",
    "open_store",
    "parse_digest",
    "parse_duration",
]
