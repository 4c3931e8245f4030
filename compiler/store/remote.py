"""Remote stores on any fsspec filesystem (S3 first), with the same layout as a local store.

Objects are published under their final key with a create-only write: on S3 a conditional put
(`IfNoneMatch="*"`), which the server refuses if the key exists, so two writers never overwrite
each other and nobody sees a partial object (an S3 object appears whole or not at all). Other
filesystems get an upload to a temporary key under `tmp/`, a move to the final key, and a size
check. The stat cache and the lineage database of a remote store live in a local cache
directory (`~/.cache/mlc/stores/<hash of the URI>` by default). fsspec and s3fs are imported
only when a remote store is opened.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import io
import os
import secrets
import shutil
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, BinaryIO, cast

from mlc.store import layout
from mlc.store.base import ManifestReading, ObjectKind, StoredObject, VerifyReport, Version
from mlc.store.digest import Digest, digest_bytes, digest_from_hex, parse_digest
from mlc.store.errors import (
    CorruptObjectError,
    DestinationExistsError,
    FileChangedError,
    ManifestError,
    ObjectNotFoundError,
    RecordExistsError,
    RecordNotFoundError,
    StoreError,
    StoreWriteError,
    UnsafePathError,
)
from mlc.store.hashing import BUFFER_SIZE, default_workers, parallel_map
from mlc.store.manifest import Manifest, ManifestEntry, decode_manifest
from mlc.store.packs import PACKS, PackedObject, PackIndex
from mlc.store.records import decode_record, encode_record
from mlc.store.snapshot import FileVersion, snapshot_with
from mlc.store.statcache import StatCache, same_file_version

IN_MEMORY_LIMIT = 64 << 20
"""Files up to this size are uploaded from memory; larger ones from a local staging copy."""

TOUCH_INTERVAL = 3600.0
"""An existing S3 object reused by a write is touched (metadata copy) if older than this."""

_CONDITIONAL_PROTOCOLS = {"s3", "s3a"}


def default_cache_dir(uri: str) -> str:
    """`$XDG_CACHE_HOME/mlc/stores/<16 hex of sha256(uri)>` (or `~/.cache/...`)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "mlc", "stores", hashlib.sha256(uri.encode()).hexdigest()[:16])


def _mtime_of(info: Mapping[str, Any]) -> float:
    for name in ("LastModified", "mtime", "modified", "updated", "created"):
        value = info.get(name)
        if isinstance(value, dt.datetime):
            if value.tzinfo is None:
                value = value.replace(tzinfo=dt.UTC)
            return value.timestamp()
        if isinstance(value, int | float):
            return float(value)
        if isinstance(value, str):
            try:
                return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
            except ValueError:
                continue
    return 0.0


class FsspecStore(ManifestReading):
    """A content-addressed store on an fsspec filesystem (`s3://bucket/prefix`, `memory://…`)."""

    is_remote = True

    def __init__(
        self,
        uri: str,
        *,
        storage_options: Mapping[str, Any] | None = None,
        cache_dir: str | None = None,
        workers: int | None = None,
    ) -> None:
        try:
            import fsspec
        except ImportError:  # pragma: no cover - depends on the installation
            from mlc.installation import pip_install

            raise StoreError(
                f"opening {uri} needs fsspec (and s3fs for S3): `{pip_install('s3')}`"
            ) from None
        options = dict(storage_options or {})
        protocol = uri.split("://", 1)[0]
        if protocol in _CONDITIONAL_PROTOCOLS:
            # Listings are cached by s3fs; a store must see other writers' objects at once.
            options.setdefault("use_listings_cache", False)
        try:
            fs, root = fsspec.core.url_to_fs(uri, **options)
        except ImportError as exc:
            from mlc.installation import pip_install

            hint = f" (for S3: `{pip_install('s3')}`)" if protocol in ("s3", "s3a") else ""
            raise StoreError(f"opening {uri} needs an extra package: {exc}{hint}") from None
        except (ValueError, OSError) as exc:
            raise StoreError(f"cannot open the store {uri}: {exc}") from None
        self.fs: Any = fs
        self.uri = uri
        self.storage_options = dict(storage_options or {})
        self.root = str(root).rstrip("/")
        self.protocol = protocol
        self.conditional_puts = protocol in _CONDITIONAL_PROTOCOLS
        self.workers = default_workers() if workers is None else workers
        self.local_dir = cache_dir or default_cache_dir(uri)
        self.hashed_files = 0
        self._counter_lock = threading.Lock()
        self._statcache: StatCache | None = None
        self.packs = PackIndex(_RemotePackFiles(fs, self.path_of(PACKS)))
        """Packs a local store wrote, when its files were copied here (read, never written)."""

    def __repr__(self) -> str:
        return f"FsspecStore({self.uri!r})"

    # ---------------------------------------------------------------- low level

    def path_of(self, key: str) -> str:
        """The filesystem path of a layout key."""
        return f"{self.root}/{key}"

    def _create_only(self, key: str, data: bytes) -> bool:
        """Writes `key` only if absent; True if this call created it."""
        return self._publish(
            key, len(data), lambda path, mode: self.fs.pipe_file(path, data, mode=mode)
        )

    def _create_only_from_file(self, key: str, local_path: str, size: int) -> bool:
        """Uploads a local file to `key` only if absent; True if this call created it."""
        return self._publish(
            key, size, lambda path, mode: self.fs.put_file(local_path, path, mode=mode)
        )

    def _publish(self, key: str, size: int, upload: Callable[[str, str], object]) -> bool:
        """Makes `key` exist exactly once, never partially visible.

        Where the filesystem has conditional puts (S3), one create-only upload does it.
        Elsewhere the content goes to a temporary key and is moved into place, then its size
        is checked.
        """
        path = self.path_of(key)
        if self.conditional_puts:
            try:
                upload(path, "create")
            except FileExistsError:
                return False
            except OSError as exc:
                if _is_precondition_failure(exc):
                    return False
                raise StoreWriteError(path, str(exc)) from None
            return True
        if self.fs.exists(path):
            return False
        tmp = self.path_of(f"{layout.TMP}/{secrets.token_hex(8)}")
        try:
            upload(tmp, "overwrite")
            if self.fs.exists(path):
                return False
            self.fs.mv(tmp, path)
        except OSError as exc:
            raise StoreWriteError(path, str(exc)) from None
        finally:
            if self.fs.exists(tmp):
                self.fs.rm_file(tmp)
        if self.fs.size(path) != size:
            raise StoreWriteError(path, "the uploaded object has the wrong size")
        return True

    def _modified(self, path: str) -> float | None:
        """The last-modified time of a key, or None if absent (on S3: one HEAD request,
        where fsspec's `exists` and `info` would also list the prefix)."""
        try:
            if self.conditional_puts:
                bucket, key, _ = self.fs.split_path(path)
                return _mtime_of(self.fs.call_s3("head_object", Bucket=bucket, Key=key))
            return _mtime_of(self.fs.info(path))
        except FileNotFoundError:
            return None

    def _read_small(self, path: str) -> bytes:
        """A small file's content in one request. (On S3, s3fs first asks for the size of a
        whole-file read, to split large ones: a HEAD, and for a missing key a listing too.)"""
        if self.conditional_puts:
            return bytes(self.fs.cat_file(path, max_concurrency=1))
        return bytes(self.fs.cat_file(path))

    def _exists(self, path: str) -> bool:
        return self._modified(path) is not None

    def _count_hashed(self) -> None:
        with self._counter_lock:
            self.hashed_files += 1

    def _touch_if_old(self, digest: Digest) -> bool:
        """True if the object exists; on S3, refreshes LastModified when old so GC keeps it."""
        path = self.path_of(layout.object_key(digest))
        modified = self._modified(path)
        if modified is None:
            return False
        if self.conditional_puts and modified < time.time() - TOUCH_INTERVAL:
            # A metadata-replacing self-copy updates LastModified.
            with contextlib.suppress(OSError, AttributeError, NotImplementedError):
                self.fs.setxattr(path, mlc_touched=str(int(time.time())))
        return True

    @property
    def statcache(self) -> StatCache:
        """The local stat cache of this remote store."""
        with self._counter_lock:
            return self._open_statcache()

    def _open_statcache(self) -> StatCache:
        if self._statcache is None:
            os.makedirs(self.local_dir, exist_ok=True)
            self._statcache = StatCache(os.path.join(self.local_dir, layout.STAT_CACHE))
        return self._statcache

    # ---------------------------------------------------------------- writing

    def put_bytes(self, data: bytes) -> Digest:
        """Puts a byte string as a file object."""
        digest = digest_bytes(data)
        if not self.has(digest):
            self._create_only(layout.object_key(digest), data)
        return digest

    def put_bytes_many(self, items: Sequence[bytes]) -> list[Digest]:
        """Puts several byte strings (each write is durable on its own here)."""
        return [self.put_bytes(data) for data in items]

    def put_file(self, path: str | os.PathLike[str]) -> Digest:
        """Puts one file's content and returns its digest."""
        return self._ingest(os.fspath(path)).digest

    def put_manifest(self, manifest: Manifest) -> Digest:
        """Puts a manifest; its marker is written first."""
        data = manifest.encode()
        digest = digest_bytes(data)
        self._create_only(layout.dir_marker_key(digest), b"")
        return self.put_bytes(data)

    def _ingest(self, path: str) -> FileVersion:
        """Hashes a stable copy of the file (memory or a local staging file) and uploads it."""
        try:
            handle = open(path, "rb")  # noqa: SIM115
        except OSError as exc:
            raise StoreError(f"cannot read {path}: {exc.strerror}") from None
        with handle:
            fd = handle.fileno()
            for _ in range(3):
                before = os.fstat(fd)
                read_at = time.time_ns()
                if before.st_size <= IN_MEMORY_LIMIT:
                    data = os.pread(fd, before.st_size + 1, 0)
                    if len(data) != before.st_size or not same_file_version(before, os.fstat(fd)):
                        continue
                    digest = digest_bytes(data)
                    if not self._touch_if_old(digest):
                        self._create_only(layout.object_key(digest), data)
                else:
                    staged = self._stage(fd)
                    try:
                        digest = staged[0]
                        if not same_file_version(before, os.fstat(fd)):
                            continue
                        if not self._touch_if_old(digest):
                            self._create_only_from_file(
                                layout.object_key(digest), staged[1], before.st_size
                            )
                    finally:
                        os.unlink(staged[1])
                self._count_hashed()
                return FileVersion(digest, before, read_at)
        raise FileChangedError(f"{path} kept changing while it was read; try again later")

    def _stage(self, fd: int) -> tuple[Digest, str]:
        staging = os.path.join(self.local_dir, "staging")
        os.makedirs(staging, exist_ok=True)
        target = os.path.join(staging, secrets.token_hex(8))
        hasher = hashlib.sha256()
        buffer = bytearray(BUFFER_SIZE)
        view = memoryview(buffer)
        offset = 0
        with open(target, "wb") as out:
            while n := os.preadv(fd, [buffer], offset):
                offset += n
                hasher.update(view[:n])
                out.write(view[:n])
        return digest_from_hex(hasher.hexdigest()), target

    def snapshot(self, path: str | os.PathLike[str]) -> Version:
        """Uploads a file or directory, reading only files the local stat cache lacks."""
        return snapshot_with(
            os.fspath(path),
            statcache=self.statcache,
            reuse=self._touch_if_old,
            ingest=self._ingest,
            publish=lambda: None,
            put_manifest=self.put_manifest,
            workers=self.workers,
            reuse_is_slow=True,
        )

    # ---------------------------------------------------------------- reading

    def has(self, digest: Digest) -> bool:
        """True if the object is present (as a file of its own or in a pack)."""
        digest = parse_digest(digest)
        return (
            self._exists(self.path_of(layout.object_key(digest)))
            or self.packs.find(digest) is not None
        )

    def kind(self, digest: Digest) -> ObjectKind:
        """`dir` or `file`; `ObjectNotFoundError` if absent."""
        if not self.has(digest):
            raise ObjectNotFoundError(f"object {digest} is not in the store {self.uri}")
        is_dir = self._exists(self.path_of(layout.dir_marker_key(digest)))
        return "dir" if is_dir else "file"

    def _packed(self, digest: Digest) -> PackedObject:
        found = self.packs.find(digest)
        if found is None:
            raise ObjectNotFoundError(f"object {digest} is not in the store {self.uri}")
        return found

    def size(self, digest: Digest) -> int:
        """The stored size of an object."""
        digest = parse_digest(digest)
        try:
            return int(self.fs.size(self.path_of(layout.object_key(digest))))
        except FileNotFoundError:
            return self._packed(digest).length

    def open_bytes(self, digest: Digest) -> BinaryIO:
        """A binary file object reading the object."""
        digest = parse_digest(digest)
        try:
            return cast(BinaryIO, self.fs.open(self.path_of(layout.object_key(digest)), "rb"))
        except FileNotFoundError:
            return io.BytesIO(self.packs.read(self._packed(digest)))

    def read_bytes(self, digest: Digest) -> bytes:
        """The whole content of an object."""
        digest = parse_digest(digest)
        try:
            return bytes(self.fs.cat_file(self.path_of(layout.object_key(digest))))
        except FileNotFoundError:
            return self.packs.read(self._packed(digest))

    def materialize(
        self, digest: Digest, dest: str | os.PathLike[str], *, readonly: bool = True
    ) -> Version:
        """Downloads a file or directory to `dest` (which must not exist), atomically."""
        target = os.path.abspath(os.fspath(dest))
        if os.path.lexists(target):
            raise DestinationExistsError(f"{target} already exists; materialize needs a new path")
        parent = os.path.dirname(target)
        os.makedirs(parent, exist_ok=True)
        version = self.describe(digest)
        building = os.path.join(parent, f".{os.path.basename(target)}.mlc-{secrets.token_hex(4)}")
        try:
            if version.kind == "file":
                self._download(digest, building, 0o644, readonly)
            else:
                manifest = self.read_manifest(digest)
                os.mkdir(building)
                real = os.path.realpath(building)
                jobs: list[tuple[ManifestEntry, str]] = []
                for entry in manifest:
                    local = os.path.join(real, *entry.path.split("/"))
                    if os.path.commonpath([real, os.path.normpath(local)]) != real:
                        raise UnsafePathError(
                            f"manifest entry `{entry.path}` escapes the destination"
                        )
                    os.makedirs(os.path.dirname(local), exist_ok=True)
                    jobs.append((entry, local))
                # Each distinct object is downloaded once; duplicates are copied locally.
                by_digest: dict[Digest, list[tuple[ManifestEntry, str]]] = {}
                for job in jobs:
                    by_digest.setdefault(job[0].digest, []).append(job)
                parallel_map(
                    lambda group: self._download_group(group, readonly),
                    list(by_digest.values()),
                    self.workers,
                )
            os.rename(building, target)
        except BaseException:
            if os.path.isdir(building):
                shutil.rmtree(building, ignore_errors=True)
            elif os.path.lexists(building):
                os.unlink(building)
            raise
        return version

    def _download_group(self, group: list[tuple[ManifestEntry, str]], readonly: bool) -> None:
        first, first_path = group[0]
        self._download(first.digest, first_path, first.mode, readonly)
        for entry, local in group[1:]:
            shutil.copyfile(first_path, local)
            os.chmod(local, entry.mode & ~0o222 if readonly else entry.mode)

    def _download(self, digest: Digest, local: str, mode: int, readonly: bool) -> None:
        try:
            self.fs.get_file(self.path_of(layout.object_key(digest)), local)
        except FileNotFoundError:
            data = self.packs.read(self._packed(digest))
            with open(local, "wb") as handle:
                handle.write(data)
        os.chmod(local, mode & ~0o222 if readonly else mode)

    # ---------------------------------------------------------------- verification

    def _check(self, digest: Digest, is_dir: bool | None = None) -> str | None:
        hasher = hashlib.sha256()
        try:
            with self.fs.open(self.path_of(layout.object_key(digest)), "rb") as handle:
                while chunk := handle.read(8 * BUFFER_SIZE):
                    hasher.update(chunk)
        except FileNotFoundError:
            found = self.packs.find(digest)
            if found is None:
                return "missing"
            try:
                hasher.update(self.packs.read(found))
            except CorruptObjectError as exc:
                return str(exc)
        actual = digest_from_hex(hasher.hexdigest())
        if actual != digest:
            return f"content hashes to {actual}"
        if is_dir is None:
            is_dir = self._exists(self.path_of(layout.dir_marker_key(digest)))
        if is_dir:
            try:
                decode_manifest(self.read_bytes(digest), digest)
            except (ManifestError, UnsafePathError) as exc:
                return f"invalid manifest: {exc}"
        return None

    def verify(self, digest: Digest) -> bool:
        """Re-hashes one object."""
        return self._check(parse_digest(digest)) is None

    def verify_all(self) -> VerifyReport:
        """Re-hashes every object (the directory index is listed once, not probed per object)."""
        digests = [o.digest for o in self.iter_objects()]
        try:
            markers = self.fs.find(self.path_of(layout.DIR_INDEX))
        except FileNotFoundError:
            markers = []
        dirs = {layout.digest_of_key(str(name)) for name in markers}
        problems = parallel_map(lambda d: self._check(d, d in dirs), digests, self.workers)
        return VerifyReport(
            len(digests), {d: p for d, p in zip(digests, problems, strict=True) if p is not None}
        )

    # ---------------------------------------------------------------- records

    def put_record(self, kind: str, key: str, document: Mapping[str, Any]) -> None:
        """Creates a record exactly once (conditional put on S3)."""
        if not self._create_only(layout.record_key(kind, key), encode_record(document)):
            raise RecordExistsError(f"record {kind}/{key} already exists")

    def get_record(self, kind: str, key: str) -> dict[str, Any]:
        """Reads one record."""
        try:
            data = self._read_small(self.path_of(layout.record_key(kind, key)))
        except FileNotFoundError:
            raise RecordNotFoundError(f"no record {kind}/{key} in {self.uri}") from None
        return decode_record(bytes(data), f"{kind}/{key}")

    def list_records(self, kind: str) -> list[str]:
        """Keys of all records of a kind, sorted."""
        directory = self.path_of(f"{layout.RECORDS}/{layout.check_record_name('kind', kind)}")
        try:
            names = self.fs.ls(directory, detail=False)
        except FileNotFoundError:
            return []
        keys = (str(n).rstrip("/").rsplit("/", 1)[-1] for n in names)
        return sorted(k[: -len(".json")] for k in keys if k.endswith(".json"))

    # ---------------------------------------------------------------- leases

    def put_lease(self, run_id: str, document: Mapping[str, Any]) -> float:
        """Overwrites the lease object (one put: a reader sees the old or the new one)."""
        path = self.path_of(layout.lease_key(run_id))
        try:
            self.fs.pipe_file(path, encode_record(document))
            return _mtime_of(self.fs.info(path)) or time.time()
        except OSError as exc:
            raise StoreWriteError(path, str(exc)) from None

    def list_leases(self) -> list[tuple[dict[str, Any], float]]:
        """Every lease and its modification time on the store's clock."""
        try:
            found = self.fs.ls(self.path_of(layout.LEASES), detail=True)
        except FileNotFoundError:
            return []
        leases: list[tuple[dict[str, Any], float]] = []
        for info in found:
            name = str(info.get("name", ""))
            if not name.endswith(".json"):
                continue
            try:
                document = decode_record(self._read_small(name), name)
            except (OSError, StoreError):
                continue
            leases.append((document, _mtime_of(info) or 0.0))
        return leases

    def delete_lease(self, run_id: str) -> None:
        """Removes a lease."""
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm_file(self.path_of(layout.lease_key(run_id)))

    # ---------------------------------------------------------------- GC support

    def iter_objects(self) -> Iterator[StoredObject]:
        """Every object with its size and last-modified time."""
        base = self.path_of(f"{layout.OBJECTS}/sha256")
        try:
            found = self.fs.find(base, detail=True)
        except FileNotFoundError:
            found = {}
        loose: set[Digest] = set()
        for name, info in sorted(found.items()):
            digest = layout.digest_of_key(str(name))
            if digest is not None:
                loose.add(digest)
                yield StoredObject(digest, int(info.get("size") or 0), _mtime_of(info))
        for digest, packed, mtime in self.packs.iter_objects():
            if digest not in loose:
                yield StoredObject(digest, packed.length, mtime)

    def now(self) -> float:
        """The store's clock: the modification time of a probe object written now."""
        probe = self.path_of(f"{layout.TMP}/clock-{secrets.token_hex(8)}")
        try:
            self.fs.pipe_file(probe, b"")
            return _mtime_of(self.fs.info(probe)) or time.time()
        except OSError:
            return time.time()
        finally:
            with contextlib.suppress(OSError):
                self.fs.rm_file(probe)

    def delete_object(self, digest: Digest, *, unless_modified_since: float) -> bool:
        """Deletes an object unless modified at or after the given time (store clock)."""
        path = self.path_of(layout.object_key(digest))
        try:
            if _mtime_of(self.fs.info(path)) >= unless_modified_since:
                return False
            self.fs.rm_file(path)
        except FileNotFoundError:
            return False
        marker = self.path_of(layout.dir_marker_key(digest))
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm_file(marker)
        return True

    def compact(self, *, unless_modified_since: float) -> None:
        """Nothing to do: a remote store keeps every object in a file of its own."""

    def clean_tmp(self, older_than: float) -> int:
        """Removes abandoned temporary keys."""
        try:
            found = self.fs.find(self.path_of(layout.TMP), detail=True)
        except FileNotFoundError:
            return 0
        removed = 0
        for name, info in found.items():
            if _mtime_of(info) < older_than:
                try:
                    self.fs.rm_file(name)
                    removed += 1
                except FileNotFoundError:
                    continue
        return removed

    def close(self) -> None:
        """Closes the local stat cache."""
        if self._statcache is not None:
            self._statcache.close()
            self._statcache = None


def _is_precondition_failure(exc: BaseException) -> bool:
    text = f"{exc} {exc.__cause__ or ''}"
    return "PreconditionFailed" in text or "412" in text


class _RemotePackFiles:
    """`packs/` on a remote filesystem (see `mlc.store.packs.PackFiles`)."""

    def __init__(self, fs: Any, directory: str) -> None:
        self._fs = fs
        self._directory = directory

    def version(self) -> object:
        """The current second: the directory is listed again at most once a second."""
        return int(time.monotonic())

    def racy(self, version: object) -> bool:
        """Never: the version is the second of the listing, not a time the directory keeps."""
        return False

    def names(self) -> list[str]:
        """The file names under `packs/`."""
        try:
            return [
                str(path).rsplit("/", 1)[-1] for path in self._fs.ls(self._directory, detail=False)
            ]
        except FileNotFoundError:
            return []

    def read(self, name: str) -> bytes:
        """A whole file."""
        return bytes(self._fs.cat_file(f"{self._directory}/{name}"))

    def read_range(self, name: str, offset: int, length: int) -> bytes:
        """Part of a file (one ranged request)."""
        path = f"{self._directory}/{name}"
        return bytes(self._fs.cat_file(path, start=offset, end=offset + length))

    def mtime(self, name: str) -> float | None:
        """A file's last-modified time."""
        try:
            return _mtime_of(self._fs.info(f"{self._directory}/{name}"))
        except FileNotFoundError:
            return None
