"""The local store: a directory (default `.mlc/` in the project) holding the standard layout.

Every write goes to a unique temporary file under `tmp/`, is flushed to disk, and is renamed
to its final key; finished objects are read-only (0o444). Renaming identical content over an
existing object is harmless, so any number of threads and processes may write at once.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import itertools
import json
import os
import secrets
import shutil
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, BinaryIO, Literal

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
    StoreNotFoundError,
    StoreWriteError,
    UnsafePathError,
)
from mlc.store.fsync import commit_batch, fsync_directories, fsync_path, write_out
from mlc.store.hashing import BUFFER_SIZE, SMALL_FILE, default_workers, hash_fd, parallel_map
from mlc.store.io_errors import describe_os_error
from mlc.store.manifest import (
    MODE_EXECUTABLE,
    Manifest,
    ManifestEntry,
    decode_manifest,
)
from mlc.store.packs import (
    PACKED_MAX,
    PACKS,
    LocalPackFiles,
    PackedObject,
    PackIndex,
    PackWriter,
)
from mlc.store.records import decode_record, encode_record
from mlc.store.snapshot import FileVersion, snapshot_with
from mlc.store.statcache import StatCache, same_file_version

STORE_MARKER = "mlc-store.json"
TOUCH_INTERVAL = 3600.0
"""An existing object reused by a write gets its mtime refreshed if older than this (seconds),
so a concurrent `gc` with a grace period of at least this long never removes it."""

_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_CLOEXEC
Flush = Literal["fsync", "batch", "none"]
"""How a temporary file reaches the disk: fsynced, written out for a batch commit
(`mlc.store.fsync`), or left to the filesystem's write-back."""


class _PendingWrites:
    """The writes of one batch: small objects for packs (`mlc.store.packs`), and temporary
    files waiting to be renamed into place after one filesystem sync.

    A batch with a single small object (a step with one small output, a batch of one log)
    stores it loose: a pack of one is two new files (pack and index) and three flushes, a
    loose object one file and two, and a loose object can be hard-linked into a step's
    inputs. On some filesystems creating a file is far dearer than writing it (ext4 without
    a journal skips every inode freed in the last seconds nearby: up to a millisecond a file
    after a large deletion), so each file not created counts."""

    def __init__(self, store: LocalStore) -> None:
        self._store = store
        self._lock = threading.Lock()
        self._pending: list[tuple[str, str]] = []
        self.packs = PackWriter(store.pack_dir, store.tmp_dir, index=store.packs)
        self._lone: tuple[Digest, bytes] | None = None
        """The batch's first small object, held until a second one makes a pack worthwhile."""
        self._packing = False

    def add(self, tmp: str, final: str) -> None:
        with self._lock:
            self._pending.append((tmp, final))

    def add_small(self, digest: Digest, data: bytes) -> None:
        """Adds an object of at most `PACKED_MAX` bytes: packed unless it is the batch's only
        one."""
        with self._lock:
            if not self._packing:
                if self._lone is None:
                    self._lone = (digest, data)
                    return
                if self._lone[0] == digest:
                    return
                self._packing = True
                first, self._lone = self._lone, None
            else:
                first = None
        if first is not None:
            self.packs.add(*first)
        self.packs.add(digest, data)

    def commit(self) -> None:
        """Publishes the packs, commits the written-out temporary files, renames them into
        place, and makes the renames durable (see `mlc.store.fsync`). A lone small object on
        its own is flushed directly (no barrier file)."""
        self.packs.commit()
        lone, self._lone = self._lone, None
        # (Packs were asked when it was added; a loose copy is one `stat` away.)
        if lone is not None and not self._store._touch(self._store.object_path(lone[0])):
            if not self._pending:
                self._store._put_loose(*lone)
                return
            tmp = self._store._write_tmp(lone[1], flush="batch")
            self._pending.append((tmp, self._store.object_path(lone[0])))
        if not self._pending:
            return
        commit_batch(self._store.tmp_dir)
        for tmp, final in self._pending:
            self._store.rename_into_place(tmp, final)
        fsync_directories(os.path.dirname(final) for _, final in self._pending)
        self._pending.clear()

    def abort(self) -> None:
        """Removes every temporary file not yet renamed, and every unpublished pack."""
        self.packs.abort()
        self._lone = None
        for tmp, _ in self._pending:
            _unlink_quietly(tmp)
        self._pending.clear()


def _unlink_quietly(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


class LocalStore(ManifestReading):
    """A content-addressed store in a local directory (see `mlc.store.layout`)."""

    is_remote = False

    def __init__(
        self, root: str | os.PathLike[str], *, create: bool = True, workers: int | None = None
    ) -> None:
        self.root = os.path.abspath(os.fspath(root))
        self.uri = f"file://{self.root}"
        self.local_dir = self.root
        self.workers = default_workers() if workers is None else workers
        self.hashed_files = 0
        self.tmp_dir = os.path.join(self.root, layout.TMP)
        self._objects_dir = os.path.join(self.root, layout.OBJECTS, "sha256")
        self._tmp_prefix = secrets.token_hex(6)
        self._tmp_counter = itertools.count()
        self._counter_lock = threading.Lock()
        self._made_dirs: set[str] = set()
        self._statcache: StatCache | None = None
        self._pack_files = LocalPackFiles(os.path.join(self.root, PACKS))
        self.packs = PackIndex(self._pack_files)
        self._doomed: dict[str, set[bytes]] = {}
        """Packed objects `delete_object` condemned, by pack, until `compact` rewrites them."""
        if not os.path.isfile(os.path.join(self.root, STORE_MARKER)):
            if not create:
                raise StoreNotFoundError(
                    f"no mlc store at {self.root} (run `mlc data add` or a pipeline first, "
                    "or pass --store)"
                )
            self._initialise()

    def __repr__(self) -> str:
        return f"LocalStore({self.root!r})"

    # ---------------------------------------------------------------- layout and low level

    def _initialise(self) -> None:
        try:
            for key in (layout.OBJECTS, layout.DIR_INDEX, layout.RECORDS, layout.TMP):
                os.makedirs(os.path.join(self.root, key), exist_ok=True)
        except OSError as exc:
            raise StoreWriteError(self.root, describe_os_error(exc)) from None
        marker = json.dumps({"format": "mlc.store", "version": 1}).encode() + b"\n"
        self._create_exclusive(os.path.join(self.root, STORE_MARKER), marker, exist_ok=True)

    @property
    def pack_dir(self) -> str:
        """Where the store's packs are (see `mlc.store.packs`)."""
        return self._pack_files.directory

    def path_of(self, key: str) -> str:
        """The local path of a layout key."""
        return os.path.join(self.root, *key.split("/"))

    def object_path(self, digest: Digest) -> str:
        """The path of an object's file (which may not exist)."""
        hexpart = digest[7:]  # after "sha256:"; called per file, so kept cheap
        return f"{self._objects_dir}/{hexpart[:2]}/{hexpart[2:]}"

    def _ensure_parent(self, path: str) -> None:
        parent = os.path.dirname(path)
        if parent not in self._made_dirs:
            try:
                os.makedirs(parent, exist_ok=True)
            except OSError as exc:
                raise StoreWriteError(parent, describe_os_error(exc)) from None
            self._made_dirs.add(parent)

    def _tmp_path(self) -> str:
        # A random per-store-object prefix (fork-safe with the pid) plus a counter: unique
        # across processes and threads without a system call per name.
        return f"{self.tmp_dir}/{os.getpid()}-{self._tmp_prefix}-{next(self._tmp_counter)}"

    def _write_tmp(self, data: bytes | memoryview, *, flush: Flush) -> str:
        """Writes `data` to a new read-only temporary file, fsynced (`fsync`), written out for a
        batch commit (`batch`) or not flushed at all (`none`); nothing is left behind on
        error."""
        tmp = self._tmp_path()
        try:
            fd = os.open(tmp, _CREATE_FLAGS, 0o444)
        except OSError as exc:
            raise StoreWriteError(self.tmp_dir, describe_os_error(exc)) from None
        try:
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            if flush == "fsync":
                os.fsync(fd)
            elif flush == "batch":
                write_out(fd)
        except OSError as exc:
            os.close(fd)
            _unlink_quietly(tmp)
            raise StoreWriteError(self.root, describe_os_error(exc)) from None
        os.close(fd)
        return tmp

    def _create_exclusive(
        self, path: str, data: bytes, *, exist_ok: bool, durable: bool = True
    ) -> bool:
        """Creates `path` with `data` only if absent, by linking a complete temporary file into
        place, flushed with its directory (`durable`). True if made.

        With `durable=False` nothing is flushed: other processes see the whole file at once,
        and the disk gets it with the filesystem's next write-back (seconds). A power loss
        may lose it or, depending on the filesystem, leave it empty or partial, so its readers
        must take a file they cannot parse for an absent one."""
        self._ensure_parent(path)
        tmp = self._write_tmp(data, flush="fsync" if durable else "none")
        try:
            os.link(tmp, path)
        except FileExistsError:
            if exist_ok:
                return False
            raise
        except OSError as exc:
            raise StoreWriteError(path, describe_os_error(exc)) from None
        finally:
            _unlink_quietly(tmp)
        if durable:
            fsync_path(os.path.dirname(path))
        return True

    def rename_into_place(self, tmp: str, final: str) -> None:
        """Publishes a finished temporary file under its final name (identical content wins)."""
        self._ensure_parent(final)
        try:
            os.rename(tmp, final)
        except OSError as exc:
            _unlink_quietly(tmp)
            raise StoreWriteError(final, describe_os_error(exc)) from None

    def _refresh(self, digest: Digest, *, size: int | None = None) -> bool:
        """True if the object exists; refreshes its mtime (a packed object: its pack's index
        mtime) when old so GC keeps it. With the object's `size` known, packs are not asked
        about an object too large to be packed."""
        if self._touch(self.object_path(digest)):
            return True
        if size is not None and size > PACKED_MAX:
            return False
        packed = self.packs.find(digest)
        return packed is not None and self._touch(self._pack_files.path(f"{packed.pack}.idx"))

    def _reuse_small(self, digest: Digest) -> bool:
        """`_refresh` for a small object about to be stored, in one dictionary lookup: only
        the packs already known are asked (`PackIndex.refresh_for_writer`), not loose files
        nor packs written since. A miss only means a second copy of the object, which is
        harmless, where asking `packs/` again may list every pack."""
        packed = self.packs.find_known(digest)
        return packed is not None and self._touch(self._pack_files.path(f"{packed.pack}.idx"))

    @staticmethod
    def _touch(path: str) -> bool:
        """True if `path` exists; its mtime is refreshed when older than `TOUCH_INTERVAL`."""
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return False
        if st.st_mtime < time.time() - TOUCH_INTERVAL:
            try:
                os.utime(path)
            except FileNotFoundError:
                return False
            except PermissionError:  # another user's object: reuse it as it is
                pass
        return True

    def _count_hashed(self, n: int = 1) -> None:
        with self._counter_lock:
            self.hashed_files += n

    @property
    def statcache(self) -> StatCache:
        """The stat cache of this store, opened on first use."""
        with self._counter_lock:
            return self._open_statcache()

    def _open_statcache(self) -> StatCache:
        if self._statcache is None:
            self._statcache = StatCache(os.path.join(self.root, layout.STAT_CACHE))
        return self._statcache

    # ---------------------------------------------------------------- writing

    def put_bytes(self, data: bytes) -> Digest:
        """Puts a byte string as a file object and returns its digest."""
        digest = digest_bytes(data)
        # (Packed copies are looked for among the packs known, as in a snapshot.)
        self.packs.refresh_for_writer()
        if not (self._touch(self.object_path(digest)) or self._reuse_small(digest)):
            self._put_loose(digest, data)
        return digest

    def _put_loose(self, digest: Digest, data: bytes) -> None:
        """Stores one object as a file of its own: flushed, renamed into place, its directory
        flushed (one object needs no batch commit)."""
        tmp = self._write_tmp(data, flush="fsync")
        final = self.object_path(digest)
        self.rename_into_place(tmp, final)
        fsync_path(os.path.dirname(final))

    def put_bytes_many(self, items: Sequence[bytes]) -> list[Digest]:
        """Puts several byte strings with one batch commit (see `mlc.store.fsync`): each is
        written out, one barrier commits them all, then they are renamed into place."""
        pending = _PendingWrites(self)
        digests: list[Digest] = []
        planned: set[Digest] = set()
        try:
            for data in items:
                digest = digest_bytes(data)
                digests.append(digest)
                small = len(data) <= PACKED_MAX
                # (A small object is looked for only in the packs already known, as in a
                # snapshot: a miss costs a second copy, not a listing of `packs/`.)
                known = (
                    self._reuse_small(digest) if small else self._refresh(digest, size=len(data))
                )
                if digest not in planned and not known:
                    planned.add(digest)
                    if small:
                        pending.add_small(digest, data)
                    else:
                        pending.add(self._write_tmp(data, flush="batch"), self.object_path(digest))
            pending.commit()
        except BaseException:
            pending.abort()
            raise
        return digests

    def put_file(self, path: str | os.PathLike[str]) -> Digest:
        """Puts one file's content (without the stat cache) and returns its digest."""
        pending = _PendingWrites(self)
        try:
            version = self._ingest(os.fspath(path), pending)
            pending.commit()
        except BaseException:
            pending.abort()
            raise
        return version.digest

    def put_manifest(self, manifest: Manifest) -> Digest:
        """Puts a directory manifest (its entries must already be stored)."""
        data = manifest.encode()
        digest = digest_bytes(data)
        # The marker goes first: a visible manifest object always has its marker.
        marker = self.path_of(layout.dir_marker_key(digest))
        if not os.path.exists(marker):
            self._create_exclusive(marker, b"", exist_ok=True)
        return self.put_bytes(data)

    def _ingest(self, path: str, pending: _PendingWrites) -> FileVersion:
        """Reads, hashes and stores one file in a single pass; the digest is of what was stored."""
        try:
            fd = os.open(path, os.O_RDONLY | _O_CLOEXEC)
        except OSError as exc:
            raise StoreError(f"cannot read {path}: {exc.strerror}") from None
        try:
            for _ in range(3):
                version = self._ingest_fd(fd, path, pending)
                if version is not None:
                    self._count_hashed()
                    return version
            raise FileChangedError(f"{path} kept changing while it was read; try again later")
        finally:
            os.close(fd)

    def _ingest_fd(self, fd: int, path: str, pending: _PendingWrites) -> FileVersion | None:
        before = os.fstat(fd)
        read_at = time.time_ns()
        if before.st_size <= SMALL_FILE:
            data = os.pread(fd, before.st_size + 1, 0)
            if len(data) != before.st_size or not same_file_version(before, os.fstat(fd)):
                return None
            digest = digest_bytes(data)
            if len(data) <= PACKED_MAX:
                if not self._reuse_small(digest):
                    pending.add_small(digest, data)
            elif not self._refresh(digest, size=len(data)):
                pending.add(self._write_tmp(data, flush="batch"), self.object_path(digest))
            return FileVersion(digest, before, read_at)
        digest, tmp = self._copy_and_hash(fd, path)
        if not same_file_version(before, os.fstat(fd)):
            _unlink_quietly(tmp)
            return None
        if self._refresh(digest, size=before.st_size):
            _unlink_quietly(tmp)
        else:
            pending.add(tmp, self.object_path(digest))
        return FileVersion(digest, before, read_at)

    def _copy_and_hash(self, fd: int, path: str) -> tuple[Digest, str]:
        """Streams a large file into a temporary object while hashing the same bytes."""
        tmp = self._tmp_path()
        try:
            out = os.open(tmp, _CREATE_FLAGS, 0o444)
        except OSError as exc:
            raise StoreWriteError(self.tmp_dir, describe_os_error(exc)) from None
        hasher = hashlib.sha256()
        buffer = bytearray(BUFFER_SIZE)
        view = memoryview(buffer)
        offset = 0
        try:
            while True:
                try:
                    n = os.preadv(fd, [buffer], offset)
                except OSError as exc:
                    raise StoreError(f"cannot read {path}: {exc.strerror}") from None
                if not n:
                    break
                offset += n
                hasher.update(view[:n])
                chunk = view[:n]
                while chunk:
                    try:
                        written = os.write(out, chunk)
                    except OSError as exc:
                        raise StoreWriteError(self.root, describe_os_error(exc)) from None
                    chunk = chunk[written:]
            try:
                write_out(out)
            except OSError as exc:
                raise StoreWriteError(self.root, describe_os_error(exc)) from None
        except BaseException:
            os.close(out)
            _unlink_quietly(tmp)
            raise
        os.close(out)
        return digest_from_hex(hasher.hexdigest()), tmp

    def snapshot(self, path: str | os.PathLike[str]) -> Version:
        """Puts a file or directory into the store, reading only files the stat cache lacks."""
        self.packs.refresh_for_writer()
        pending = _PendingWrites(self)
        touched: set[str] = set()

        def reuse(digest: Digest) -> bool:
            # A packed object: one dictionary lookup, and its pack's index touched once per
            # snapshot (not stat-ed once per file).
            packed = self.packs.find_known(digest)
            if packed is None:
                return self._refresh(digest)
            if packed.pack not in touched:
                if not self._touch(self._pack_files.path(f"{packed.pack}.idx")):
                    return self._refresh(digest)
                touched.add(packed.pack)
            return True

        def ingest(file_path: str) -> FileVersion:
            return self._ingest(file_path, pending)

        def publish() -> None:
            pending.commit()

        try:
            return snapshot_with(
                os.fspath(path),
                statcache=self.statcache,
                reuse=reuse,
                ingest=ingest,
                publish=publish,
                put_manifest=self.put_manifest,
                workers=self.workers,
            )
        except BaseException:
            pending.abort()
            raise

    # ---------------------------------------------------------------- reading

    def _missing(self, digest: Digest) -> ObjectNotFoundError:
        return ObjectNotFoundError(f"object {digest} is not in the store at {self.root}")

    def has(self, digest: Digest) -> bool:
        """True if the object is present (loose or in a pack)."""
        digest = parse_digest(digest)
        return os.path.exists(self.object_path(digest)) or self.packs.find(digest) is not None

    def kind(self, digest: Digest) -> ObjectKind:
        """`dir` for a directory manifest, `file` otherwise; `ObjectNotFoundError` if absent."""
        if not self.has(digest):
            raise ObjectNotFoundError(f"object {digest} is not in the store at {self.root}")
        is_dir = os.path.exists(self.path_of(layout.dir_marker_key(digest)))
        return "dir" if is_dir else "file"

    def size(self, digest: Digest) -> int:
        """The stored size of an object."""
        digest = parse_digest(digest)
        try:
            return os.stat(self.object_path(digest)).st_size
        except FileNotFoundError:
            packed = self.packs.find(digest)
            if packed is None:
                raise self._missing(digest) from None
            return packed.length

    def open_bytes(self, digest: Digest) -> BinaryIO:
        """A binary file object reading the object."""
        digest = parse_digest(digest)
        try:
            return open(self.object_path(digest), "rb")
        except FileNotFoundError:
            return io.BytesIO(self._read_packed(digest))

    def read_bytes(self, digest: Digest) -> bytes:
        """The whole content of an object."""
        with self.open_bytes(digest) as handle:
            return handle.read()

    # ---------------------------------------------------------------- materialize

    def materialize(
        self, digest: Digest, dest: str | os.PathLike[str], *, readonly: bool = True
    ) -> Version:
        """Recreates a file or directory at `dest` (which must not exist).

        Files are hard-linked from the store when `readonly` and on the same device (so they
        share the store's read-only inode), else copied. Not for root, whom read-only modes do
        not stop: a step running as root could write through the link into the store, so root
        gets copies. A directory is built under a temporary sibling name and renamed to `dest`
        when complete, so `dest` never appears half-written.
        """
        target = os.path.abspath(os.fspath(dest))
        if os.path.lexists(target):
            raise DestinationExistsError(f"{target} already exists; materialize needs a new path")
        parent = os.path.dirname(target)
        try:
            os.makedirs(parent, exist_ok=True)
        except OSError as exc:
            raise StoreWriteError(parent, describe_os_error(exc)) from None
        version = self.describe(digest)
        link_ok = (
            readonly and os.geteuid() != 0 and os.stat(parent).st_dev == os.stat(self.root).st_dev
        )
        building = os.path.join(parent, f".{os.path.basename(target)}.mlc-{secrets.token_hex(4)}")
        try:
            if version.kind == "file":
                self._place_file(digest, building, 0o644, readonly=readonly, link=link_ok)
            else:
                self._materialize_tree(digest, building, readonly=readonly, link=link_ok)
            os.rename(building, target)
        except OSError as exc:
            _remove_tree(building)
            raise StoreWriteError(target, describe_os_error(exc)) from None
        except BaseException:
            _remove_tree(building)
            raise
        return version

    def _materialize_tree(self, digest: Digest, root: str, *, readonly: bool, link: bool) -> None:
        manifest = self.read_manifest(digest)
        os.mkdir(root)
        real_root = os.path.realpath(root)
        made: set[str] = {real_root}
        targets: list[tuple[ManifestEntry, str]] = []
        for entry in manifest:
            target = os.path.join(real_root, *entry.path.split("/"))
            if os.path.commonpath([real_root, os.path.normpath(target)]) != real_root:
                raise UnsafePathError(f"manifest entry `{entry.path}` escapes the destination")
            directory = os.path.dirname(target)
            if directory not in made:
                os.makedirs(directory, exist_ok=True)
                made.add(directory)
            targets.append((entry, target))

        def place(item: tuple[ManifestEntry, str]) -> None:
            entry, target = item
            self._place_file(entry.digest, target, entry.mode, readonly=readonly, link=link)

        parallel_map(place, targets, self.workers)

    def _place_file(
        self, digest: Digest, target: str, mode: int, *, readonly: bool, link: bool
    ) -> None:
        source = self.object_path(digest)
        if not os.path.exists(source):
            data = self._read_packed(digest)
            fd = os.open(target, _CREATE_FLAGS, mode & ~0o222 if readonly else mode)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
            finally:
                os.close(fd)
            return
        if link and mode != MODE_EXECUTABLE:
            try:
                os.link(source, target)
                return
            except OSError as exc:
                if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP):
                    raise
        shutil.copyfile(source, target)
        os.chmod(target, mode & ~0o222 if readonly else mode)

    # ---------------------------------------------------------------- verification

    def verify(self, digest: Digest) -> bool:
        """Re-hashes one object (and re-validates it if it is a manifest)."""
        return self._check(parse_digest(digest)) is None

    def _check(self, digest: Digest) -> str | None:
        path = self.object_path(digest)
        try:
            fd = os.open(path, os.O_RDONLY | _O_CLOEXEC)
        except FileNotFoundError:
            return self._check_packed(digest)
        try:
            actual = hash_fd(fd)
        finally:
            os.close(fd)
        if actual != digest:
            return f"content hashes to {actual}"
        if os.path.exists(self.path_of(layout.dir_marker_key(digest))):
            try:
                with open(path, "rb") as handle:
                    decode_manifest(handle.read(), digest)
            except (ManifestError, UnsafePathError) as exc:
                return f"invalid manifest: {exc}"
        return None

    def _check_packed(self, digest: Digest) -> str | None:
        packed = self.packs.find(digest)
        if packed is None:
            return "missing"
        try:
            actual = digest_bytes(self._read_packed(digest))
        except CorruptObjectError as exc:
            return str(exc)
        except ObjectNotFoundError:
            return "missing"
        return None if actual == digest else f"content in {packed.pack} hashes to {actual}"

    def _read_packed(self, digest: Digest) -> bytes:
        """A packed object's bytes; if its pack was rewritten since this store object last
        looked (a `gc` in another process), the packs are looked at again once."""
        packed = self.packs.find(digest)
        if packed is None:
            raise self._missing(digest)
        if os.path.exists(self._pack_files.path(f"{packed.pack}.idx")):
            return self.packs.read(packed)
        self.packs.refresh()
        packed = self.packs.find(digest)
        if packed is None:
            raise self._missing(digest)
        return self.packs.read(packed)

    def verify_all(self) -> VerifyReport:
        """Re-hashes every object in parallel; reports each bad one with the reason."""
        digests = [obj.digest for obj in self.iter_objects()]
        problems = parallel_map(self._check, digests, self.workers)
        bad = {d: p for d, p in zip(digests, problems, strict=True) if p is not None}
        return VerifyReport(len(digests), bad)

    def check_object(self, digest: Digest) -> None:
        """Raises `CorruptObjectError` if the object does not verify."""
        problem = self._check(parse_digest(digest))
        if problem is not None:
            raise CorruptObjectError(f"object {digest} is corrupt: {problem}")

    # ---------------------------------------------------------------- records

    def put_record(self, kind: str, key: str, document: Mapping[str, Any]) -> None:
        """Creates `records/<kind>/<key>.json` exactly once (`RecordExistsError` otherwise).

        A record is visible whole to every process at once, and reaches the disk with the
        filesystem's next write-back, not with flushes of its own (a cache entry is written
        per step, and each flush waits for the disk: most of a short step's cost). A power
        loss can therefore lose the last seconds' records, or leave one empty or partial
        (ext4 without a journal, or with delayed allocation); every reader takes a record it
        cannot parse for an absent one (a lost cache entry means the step runs again)."""
        path = self.path_of(layout.record_key(kind, key))
        try:
            self._create_exclusive(path, encode_record(document), exist_ok=False, durable=False)
        except FileExistsError:
            raise RecordExistsError(f"record {kind}/{key} already exists") from None

    def get_record(self, kind: str, key: str) -> dict[str, Any]:
        """Reads one record."""
        path = self.path_of(layout.record_key(kind, key))
        try:
            with open(path, "rb") as handle:
                return decode_record(handle.read(), f"{kind}/{key}")
        except FileNotFoundError:
            raise RecordNotFoundError(f"no record {kind}/{key} in {self.root}") from None

    def list_records(self, kind: str) -> list[str]:
        """Keys of all records of one kind, sorted."""
        directory = os.path.dirname(self.path_of(layout.record_key(kind, "x")))
        try:
            names = os.listdir(directory)
        except FileNotFoundError:
            return []
        return sorted(n[: -len(".json")] for n in names if n.endswith(".json"))

    # ---------------------------------------------------------------- leases

    def put_lease(self, run_id: str, document: Mapping[str, Any]) -> float:
        """Writes a lease under a temporary name, then renames it into place."""
        path = self.path_of(layout.lease_key(run_id))
        temporary = f"{path}.{secrets.token_hex(4)}.tmp"
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(temporary, "wb") as handle:
                handle.write(encode_record(document))
            os.replace(temporary, path)
            return os.stat(path).st_mtime
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise StoreWriteError(path, describe_os_error(exc)) from None

    def list_leases(self) -> list[tuple[dict[str, Any], float]]:
        """Every lease and its mtime (one that vanishes or is unreadable meanwhile is left out)."""
        directory = self.path_of(layout.LEASES)
        try:
            names = sorted(n for n in os.listdir(directory) if n.endswith(".json"))
        except FileNotFoundError:
            return []
        leases: list[tuple[dict[str, Any], float]] = []
        for name in names:
            path = os.path.join(directory, name)
            try:
                with open(path, "rb") as handle:
                    leases.append(
                        (decode_record(handle.read(), name), os.fstat(handle.fileno()).st_mtime)
                    )
            except (OSError, StoreError):
                continue
        return leases

    def delete_lease(self, run_id: str) -> None:
        """Removes a lease."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path_of(layout.lease_key(run_id)))

    # ---------------------------------------------------------------- GC support

    def iter_objects(self) -> Iterator[StoredObject]:
        """Every object in the store with its size and mtime (loose ones, then packed ones;
        each digest once)."""
        base = self.path_of(f"{layout.OBJECTS}/sha256")
        try:
            fanouts = sorted(os.scandir(base), key=lambda e: e.name)
        except FileNotFoundError:
            fanouts = []
        loose: set[Digest] = set()
        for fanout in fanouts:
            if not fanout.is_dir(follow_symlinks=False) or len(fanout.name) != 2:
                continue
            for entry in sorted(os.scandir(fanout.path), key=lambda e: e.name):
                digest = layout.digest_of_key(f"{layout.OBJECTS}/sha256/{fanout.name}/{entry.name}")
                if digest is None:
                    continue
                try:
                    st = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue
                loose.add(digest)
                yield StoredObject(digest, st.st_size, st.st_mtime)
        for digest, packed, mtime in self.packs.iter_objects():
            if digest not in loose:  # the loose copy is the one read first
                yield StoredObject(digest, packed.length, mtime)

    def now(self) -> float:
        """The local clock."""
        return time.time()

    def delete_object(self, digest: Digest, *, unless_modified_since: float) -> bool:
        """Deletes an object unless touched at or after `unless_modified_since`.

        The object is first renamed away (atomic); if its mtime then shows that a writer
        reused it meanwhile, it is linked back. A writer that finds the name gone writes the
        object again, so a concurrent snapshot never ends up referring to a deleted object.
        """
        path = self.object_path(digest)
        trash = self._tmp_path() + ".gc"
        try:
            os.rename(path, trash)
        except FileNotFoundError:
            return self._condemn_packed(digest, unless_modified_since)
        try:
            if os.stat(trash).st_mtime >= unless_modified_since:
                with contextlib.suppress(FileExistsError):
                    os.link(trash, path)
                return False
        finally:
            _unlink_quietly(trash)
        _unlink_quietly(self.path_of(layout.dir_marker_key(digest)))
        return True

    def _condemn_packed(self, digest: Digest, unless_modified_since: float) -> bool:
        """Marks a packed object for removal by `compact` (the packs that hold it are
        rewritten without it), unless one of them was touched since the cut-off."""
        holders = self.packs.locations(digest)
        try:
            if not holders or any(
                os.stat(self._pack_files.path(f"{h.pack}.idx")).st_mtime >= unless_modified_since
                for h in holders
            ):
                return False
        except FileNotFoundError:
            return False
        for holder in holders:
            self._doomed.setdefault(holder.pack, set()).add(bytes.fromhex(digest[7:]))
        return True

    def compact(self, *, unless_modified_since: float) -> None:
        """Rewrites the packs holding objects `delete_object` condemned.

        For each such pack: its live objects (if any) are published in a new pack first, so
        they never disappear; then its index is renamed away, and if that index shows a touch
        at or after `unless_modified_since` (a writer reused one of its objects), it is put
        back (the duplicates are harmless); otherwise the old pack and index are removed. A
        writer that comes to touch the index once it is gone writes its own copy instead.
        """
        doomed, self._doomed = self._doomed, {}
        packs = self.packs.packs()
        for name, dead in sorted(doomed.items()):
            entries = packs.get(name)
            if entries is None:
                continue
            live = [entry for entry in entries if entry[0] not in dead]
            if live:
                writer = PackWriter(self.pack_dir, self.tmp_dir, index=self.packs)
                for raw, offset, length in live:
                    packed = PackedObject(name, offset, length)
                    writer.add(digest_from_hex(raw.hex()), self.packs.read(packed))
                writer.commit()
            index = self._pack_files.path(f"{name}.idx")
            withdrawn = f"{self._tmp_path()}.idx.gc"
            try:
                os.rename(index, withdrawn)
            except FileNotFoundError:
                continue
            if os.stat(withdrawn).st_mtime >= unless_modified_since:
                os.rename(withdrawn, index)
                continue
            _unlink_quietly(self._pack_files.path(f"{name}.pack"))
            _unlink_quietly(withdrawn)
        if doomed:
            fsync_path(self.pack_dir)
            self.packs.refresh()

    def clean_tmp(self, older_than: float) -> int:
        """Removes temporary files abandoned by crashed writers, and packs whose writer
        crashed before publishing their index."""
        removed = 0
        try:
            entries = list(os.scandir(self.tmp_dir))
        except FileNotFoundError:
            entries = []
        try:
            packs = list(os.scandir(self.pack_dir))
        except FileNotFoundError:
            packs = []
        indexes = {entry.name for entry in packs if entry.name.endswith(".idx")}
        entries += [
            entry
            for entry in packs
            if entry.name.endswith(".pack") and entry.name[: -len(".pack")] + ".idx" not in indexes
        ]
        for entry in entries:
            try:
                if entry.stat(follow_symlinks=False).st_mtime < older_than:
                    os.unlink(entry.path)
                    removed += 1
            except FileNotFoundError:
                continue
        return removed

    def close(self) -> None:
        """Closes the stat cache."""
        if self._statcache is not None:
            self._statcache.close()
            self._statcache = None


def _remove_tree(path: str) -> None:
    if not os.path.lexists(path):
        return
    if os.path.isdir(path) and not os.path.islink(path):
        for directory, _dirs, _files in os.walk(path):
            os.chmod(directory, 0o755)
        shutil.rmtree(path, ignore_errors=True)
    else:
        _unlink_quietly(path)
