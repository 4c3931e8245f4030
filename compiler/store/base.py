"""The one protocol every store kind implements, and the values its operations return."""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Literal, Protocol

from mlc.store.digest import Digest
from mlc.store.errors import ManifestError
from mlc.store.manifest import Manifest, decode_manifest

ObjectKind = Literal["file", "dir"]
"""What an object is: a file's bytes, or a directory manifest."""


@dataclass(frozen=True, slots=True)
class Version:
    """The version of a file or directory put in the store by `Store.snapshot`."""

    digest: Digest
    kind: ObjectKind
    size: int
    """Bytes of content (for a directory, the sum over its files)."""
    file_count: int
    hashed_files: int = 0
    """How many files this snapshot had to read and hash (0 when nothing changed)."""

    def to_json(self) -> dict[str, Any]:
        """A plain dict for `--format json`."""
        return {
            "digest": self.digest,
            "kind": self.kind,
            "size": self.size,
            "file_count": self.file_count,
            "hashed_files": self.hashed_files,
        }


@dataclass(frozen=True, slots=True)
class StoredObject:
    """An object as listed by `Store.iter_objects` (for GC and verification)."""

    digest: Digest
    size: int
    mtime: float
    """Last modification, seconds since the epoch (the store's clock)."""


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """The outcome of `verify_all`: how many objects were checked and which are bad, and why."""

    checked: int
    bad: Mapping[Digest, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when every object hashes to its digest and every manifest is valid."""
        return not self.bad


class Store(Protocol):
    """A content-addressed store (local directory or remote fsspec filesystem).

    All stores share one layout (see `mlc.store.layout`), so a store written by a local run can
    be copied or synced to S3 and read there, and runs on different machines share objects.
    """

    uri: str
    is_remote: bool
    local_dir: str
    """Where this machine keeps the store's local state (stat cache, lineage database)."""
    hashed_files: int
    """Files read and hashed by this store object since it was opened (a counter)."""

    def snapshot(self, path: str | os.PathLike[str]) -> Version:
        """Puts a file or directory into the store and returns its version."""
        ...

    def put_bytes(self, data: bytes) -> Digest:
        """Puts a byte string as a file object."""
        ...

    def put_bytes_many(self, items: Sequence[bytes]) -> list[Digest]:
        """Puts several byte strings as file objects, made durable together (one flush of the
        filesystem for all of them where the store can); their digests, in order."""
        ...

    def put_file(self, path: str | os.PathLike[str]) -> Digest:
        """Puts one file's content (no stat cache); e.g. a log file."""
        ...

    def put_manifest(self, manifest: Manifest) -> Digest:
        """Puts a manifest whose entries are already stored; its digest is a directory version."""
        ...

    def has(self, digest: Digest) -> bool:
        """True if the object is present."""
        ...

    def kind(self, digest: Digest) -> ObjectKind:
        """`file` or `dir`; raises `ObjectNotFoundError` if absent."""
        ...

    def size(self, digest: Digest) -> int:
        """The stored size of an object in bytes."""
        ...

    def open_bytes(self, digest: Digest) -> BinaryIO:
        """A binary file object reading the object's content."""
        ...

    def read_bytes(self, digest: Digest) -> bytes:
        """The whole content of an object."""
        ...

    def read_manifest(self, digest: Digest) -> Manifest:
        """The manifest of a directory version."""
        ...

    def describe(self, digest: Digest) -> Version:
        """The version facts of a stored object (kind, size, file count) without hashing."""
        ...

    def materialize(
        self, digest: Digest, dest: str | os.PathLike[str], *, readonly: bool = True
    ) -> Version:
        """Recreates the file or directory at `dest`, which must not exist yet."""
        ...

    def verify(self, digest: Digest) -> bool:
        """Re-hashes one object; False if it is corrupt (or a bad manifest)."""
        ...

    def verify_all(self) -> VerifyReport:
        """Re-hashes every object and reports the bad ones."""
        ...

    def put_record(self, kind: str, key: str, document: Mapping[str, Any]) -> None:
        """Creates `records/<kind>/<key>.json` exactly once; `RecordExistsError` if present."""
        ...

    def get_record(self, kind: str, key: str) -> dict[str, Any]:
        """Reads a record; `RecordNotFoundError` if absent."""
        ...

    def list_records(self, kind: str) -> list[str]:
        """The keys of all records of a kind, sorted."""
        ...

    def put_lease(self, run_id: str, document: Mapping[str, Any]) -> float:
        """Writes (or rewrites) the lease of a live run; returns its time on the store's clock
        (`mlc.store.leases`)."""
        ...

    def list_leases(self) -> list[tuple[dict[str, Any], float]]:
        """Every lease with the time it was last written, on the store's clock."""
        ...

    def delete_lease(self, run_id: str) -> None:
        """Removes a run's lease (nothing if there is none)."""
        ...

    def iter_objects(self) -> Iterator[StoredObject]:
        """Every object in the store (for GC and `verify_all`)."""
        ...

    def now(self) -> float:
        """The store's current time, on the same clock as `StoredObject.mtime`."""
        ...

    def delete_object(self, digest: Digest, *, unless_modified_since: float) -> bool:
        """Deletes an object unless it was written or touched at or after the given time."""
        ...

    def compact(self, *, unless_modified_since: float) -> None:
        """Finishes the deletions `delete_object` could only schedule (objects in packs)."""
        ...

    def clean_tmp(self, older_than: float) -> int:
        """Removes abandoned temporary files last modified before `older_than`; returns count."""
        ...

    def close(self) -> None:
        """Releases the stat cache and any connections."""
        ...


class ManifestReading(ABC):
    """What every store derives from `kind`, `size` and `read_bytes`: manifests and versions."""

    @abstractmethod
    def kind(self, digest: Digest) -> ObjectKind:
        """Whether an object is a file or a directory manifest."""

    @abstractmethod
    def size(self, digest: Digest) -> int:
        """The size of an object in bytes."""

    @abstractmethod
    def read_bytes(self, digest: Digest) -> bytes:
        """The whole content of an object."""

    def read_manifest(self, digest: Digest) -> Manifest:
        """The manifest of a directory version; `ManifestError` if the object is not one."""
        if self.kind(digest) != "dir":
            raise ManifestError(f"{digest} is a file, not a directory manifest")
        return decode_manifest(self.read_bytes(digest), digest)

    def describe(self, digest: Digest) -> Version:
        """Kind, size and file count of a stored object."""
        if self.kind(digest) == "dir":
            manifest = self.read_manifest(digest)
            return Version(digest, "dir", manifest.total_size, len(manifest))
        return Version(digest, "file", self.size(digest), 1)
