"""Packs: many small objects in one file, so that storing a file does not mean creating one.

Creating a file is the dominant cost of storing a small one (tens to hundreds of microseconds
of kernel time, far more than reading and hashing 4 KiB). A local store therefore keeps small
objects in packs:

```
packs/<id>.pack   the objects' bytes, one after another
packs/<id>.idx    "MLCIDX1\\n", then per object (sorted by digest) 32 digest bytes, offset and
                  length (unsigned 64-bit, big-endian), then the sha256 of everything before
```

A pack is written under `tmp/`, made durable, renamed into `packs/`, and only then its index;
an object in a pack exists from the moment its index does. A crash leaves either nothing
visible or whole packs (a pack without an index is garbage that `gc` removes). Objects are
immutable like loose ones; an object may be in several packs, or in a pack and loose, which
is harmless. Garbage collection deletes a pack whose objects are all unreachable and rewrites
one that is partly unreachable (the new pack is published before the old one goes). The mtime
of an index is its pack's "last used": a writer that reuses a packed object touches it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import struct
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

from mlc.store.digest import Digest, digest_from_hex
from mlc.store.errors import CorruptObjectError, StoreWriteError
from mlc.store.fsync import fsync_path
from mlc.store.io_errors import describe_os_error

PACKS = "packs"
MAGIC = b"MLCIDX1\n"
_ENTRY = struct.Struct(">32sQQ")
_CHECKSUM_SIZE = 32
PACK_LIMIT = 256 << 20
"""A pack is closed once it holds this many bytes; the next object starts a new one."""
RACY_NANOSECONDS = 2_000_000_000
"""How close to a change of `packs/` a listing may be for the directory's mtime not to be
trusted afterwards: a filesystem's timestamps may be coarser than the time between two packs
(a clock tick, a second, two on FAT), so another pack may land later with the same mtime. An
object not found after such a listing makes `find` list the directory again."""
WRITER_RELIST_SECONDS = 1.0
"""How long a writer goes on with the packs it knows before it lists `packs/` again to reuse
what other processes packed (`PackIndex.refresh_for_writer`). A writer that misses such an
object packs a second copy, which is harmless; listing `packs/` before every snapshot read the
name of every pack each time, and a step with small outputs adds a pack."""
PACKED_MAX = 64 << 10
"""Objects up to this size written in a batch (a snapshot, a batch of logs) go into packs;
larger ones stay loose files, which inputs can be hard links to."""


@dataclass(frozen=True, slots=True)
class PackedObject:
    """Where one object lives: its pack's name (without extension), offset and length."""

    pack: str
    offset: int
    length: int


def encode_index(entries: list[tuple[bytes, int, int]]) -> bytes:
    """The index file of a pack's `(raw digest, offset, length)` entries."""
    body = MAGIC + b"".join(_ENTRY.pack(*entry) for entry in sorted(entries))
    return body + hashlib.sha256(body).digest()


def decode_index(data: bytes, name: str) -> list[tuple[bytes, int, int]]:
    """The entries of an index file; `CorruptObjectError` if it is damaged."""
    body, checksum = data[:-_CHECKSUM_SIZE], data[-_CHECKSUM_SIZE:]
    if (
        not body.startswith(MAGIC)
        or (len(body) - len(MAGIC)) % _ENTRY.size
        or hashlib.sha256(body).digest() != checksum
    ):
        raise CorruptObjectError(f"pack index {name} is damaged")
    return [entry for entry in _ENTRY.iter_unpack(body[len(MAGIC) :])]


class PackFiles(Protocol):
    """The `packs/` directory of a store, on a local disk or a remote filesystem."""

    def version(self) -> object:
        """A token that changes when packs are added or removed (cheap to get)."""
        ...

    def names(self) -> list[str]:
        """The file names in the directory (none when it does not exist)."""
        ...

    def racy(self, version: object) -> bool:
        """Whether the directory may change later without its version changing."""
        ...

    def read(self, name: str) -> bytes:
        """A whole file; `FileNotFoundError` if it is gone."""
        ...

    def read_range(self, name: str, offset: int, length: int) -> bytes:
        """`length` bytes from `offset` (fewer if the file is shorter)."""
        ...

    def mtime(self, name: str) -> float | None:
        """A file's modification time, None if it is gone."""
        ...


class LocalPackFiles:
    """`packs/` in a local store."""

    def __init__(self, directory: str) -> None:
        self.directory = directory

    def path(self, name: str) -> str:
        """The path of a file in the directory."""
        return os.path.join(self.directory, name)

    def version(self) -> object:
        """The directory's mtime (it changes with every entry added or removed)."""
        try:
            return os.stat(self.directory).st_mtime_ns
        except FileNotFoundError:
            return None

    def racy(self, version: object) -> bool:
        """Whether a listing now may miss a later change with the same mtime
        (`RACY_NANOSECONDS`)."""
        return isinstance(version, int) and time.time_ns() - version < RACY_NANOSECONDS

    def names(self) -> list[str]:
        """The file names in the directory."""
        try:
            return os.listdir(self.directory)
        except FileNotFoundError:
            return []

    def read(self, name: str) -> bytes:
        """A whole file."""
        with open(self.path(name), "rb") as handle:
            return handle.read()

    def read_range(self, name: str, offset: int, length: int) -> bytes:
        """Part of a file."""
        fd = os.open(self.path(name), os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        try:
            return os.pread(fd, length, offset)
        finally:
            os.close(fd)

    def mtime(self, name: str) -> float | None:
        """A file's mtime."""
        try:
            return os.stat(self.path(name)).st_mtime
        except FileNotFoundError:
            return None


class PackIndex:
    """The indexes of a store's packs, read on first use and again when `packs/` changed."""

    def __init__(self, files: PackFiles) -> None:
        self.files = files
        self._lock = threading.Lock()
        self._objects: dict[bytes, PackedObject] = {}
        self._copies: dict[bytes, list[PackedObject]] = {}
        self._packs: dict[str, list[tuple[bytes, int, int]]] = {}
        self._seen: object = object()
        self._racy = False
        """The last listing was too close to a change to trust the version (`racy`)."""
        self._listed_at = -WRITER_RELIST_SECONDS
        """When `packs/` was last listed (`time.monotonic`)."""

    def find(self, digest: Digest) -> PackedObject | None:
        """Where a packed object is, or None (after re-reading `packs/` if it changed, or
        may have changed unseen)."""
        key = bytes.fromhex(digest[7:])
        found = self._objects.get(key)
        if found is None:
            # Looked up again even when this thread did not re-read: another may just have.
            self.refresh(recheck=True)
            found = self._objects.get(key)
        return found

    def find_known(self, digest: Digest) -> PackedObject | None:
        """`find` among the packs already read, without looking at `packs/` again."""
        return self._objects.get(bytes.fromhex(digest[7:]))

    def refresh(self, *, recheck: bool = False) -> bool:
        """Reads the indexes added (and forgets those removed) since the last look; True when
        anything changed. Costs one `version()` when nothing did, unless `recheck` and the
        last look was too close to a change to trust that (`PackFiles.racy`)."""
        version = self.files.version()
        with self._lock:
            unchanged = version is None or version == self._seen
            if unchanged and not (recheck and self._racy):
                return False
            self._seen = version
            self._racy = self.files.racy(version)
            self._listed_at = time.monotonic()
            names = {n[: -len(".idx")] for n in self.files.names() if n.endswith(".idx")}
            gone = set(self._packs) - names
            for name in gone:
                del self._packs[name]
            added: list[str] = []
            for name in sorted(names - set(self._packs)):
                try:
                    entries = decode_index(self.files.read(f"{name}.idx"), name)
                except (FileNotFoundError, CorruptObjectError):
                    continue  # removed meanwhile, or damaged: `verify_all` reports it
                self._packs[name] = entries
                added.append(name)
            if gone:  # rare (garbage collection): start over, replacing the maps whole
                objects: dict[bytes, PackedObject] = {}
                copies: dict[bytes, list[PackedObject]] = {}
                for pack in sorted(self._packs):
                    _add_entries(pack, self._packs[pack], objects, copies)
                self._objects, self._copies = objects, copies
                return True
            # Added in place: a reader without the lock sees each object either not yet or
            # whole, and only packs that are published.
            for pack in added:
                _add_entries(pack, self._packs[pack], self._objects, self._copies)
            return bool(added)

    def refresh_for_writer(self) -> None:
        """`refresh` for a writer about to look for the objects it would store: at most once
        every `WRITER_RELIST_SECONDS` (readers refresh on every miss, see `find`)."""
        if time.monotonic() - self._listed_at >= WRITER_RELIST_SECONDS:
            self.refresh()

    def learn(self, name: str, entries: list[tuple[bytes, int, int]]) -> None:
        """Adds a pack this process has just published, without listing `packs/` or reading
        the index back."""
        with self._lock:
            if name not in self._packs:
                self._packs[name] = entries
                _add_entries(name, entries, self._objects, self._copies)

    def locations(self, digest: Digest) -> list[PackedObject]:
        """Every pack that holds an object (two writers may have packed the same one)."""
        first = self.find(digest)
        if first is None:
            return []
        return [first, *self._copies.get(bytes.fromhex(digest[7:]), [])]

    def packs(self) -> dict[str, list[tuple[bytes, int, int]]]:
        """Every known pack and its entries (after a refresh)."""
        self.refresh()
        with self._lock:
            return dict(self._packs)

    def read(self, found: PackedObject) -> bytes:
        """An object's bytes from its pack (checked for length, not hashed)."""
        try:
            data = self.files.read_range(f"{found.pack}.pack", found.offset, found.length)
        except FileNotFoundError:
            raise CorruptObjectError(f"pack {found.pack} is missing") from None
        if len(data) != found.length:
            raise CorruptObjectError(f"pack {found.pack} is shorter than its index says")
        return data

    def iter_objects(self) -> Iterator[tuple[Digest, PackedObject, float]]:
        """Every packed object once (in its first pack), with the newest index mtime of the
        packs that hold it."""
        packs = self.packs()
        mtimes: dict[str, float] = {}
        for pack in packs:
            mtime = self.files.mtime(f"{pack}.idx")
            if mtime is not None:
                mtimes[pack] = mtime
        with self._lock:
            objects, copies = dict(self._objects), dict(self._copies)
        for raw, found in sorted(objects.items()):
            holders = [found, *copies.get(raw, [])]
            known = [mtimes[h.pack] for h in holders if h.pack in mtimes]
            if known:
                yield digest_from_hex(raw.hex()), found, max(known)


def _add_entries(
    pack: str,
    entries: list[tuple[bytes, int, int]],
    objects: dict[bytes, PackedObject],
    copies: dict[bytes, list[PackedObject]],
) -> None:
    """Adds a pack's entries to the maps of an index (an object already known elsewhere is a
    copy)."""
    for raw, offset, length in entries:
        found = PackedObject(pack, offset, length)
        if raw in objects:
            copies[raw] = [*copies.get(raw, []), found]
        else:
            objects[raw] = found


@dataclass(slots=True)
class _OpenPack:
    """A pack being written under `tmp/`: its bytes go out in chunks as objects arrive."""

    name: str
    tmp: str
    fd: int
    size: int = 0
    entries: list[tuple[bytes, int, int]] = field(default_factory=list)
    buffer: bytearray = field(default_factory=bytearray)
    buffer_start: int = 0


class PackWriter:
    """Small objects collected by one batch of writes (threads may add at once), published
    as packs by `commit`. Pack bytes are written to their temporary file in chunks while the
    batch goes on (`pwrite` at reserved offsets, outside the lock), so that hashing and
    writing overlap; `commit` writes the rest, makes the packs durable and publishes them."""

    CHUNK = 4 << 20

    def __init__(
        self,
        directory: str,
        tmp_dir: str,
        limit: int = PACK_LIMIT,
        *,
        index: PackIndex | None = None,
    ) -> None:
        self._directory = directory
        self._tmp_dir = tmp_dir
        self._limit = limit
        self._index = index
        """Told of every pack this writer publishes (its store's own index)."""
        self._lock = threading.Lock()
        self._planned: set[bytes] = set()
        self._current: _OpenPack | None = None
        self._packs: list[_OpenPack] = []

    def add(self, digest: Digest, data: bytes) -> None:
        """Adds an object (once per writer, however often it is added)."""
        raw = bytes.fromhex(digest[7:])
        with self._lock:
            if raw in self._planned:
                return
            self._planned.add(raw)
            pack = self._current or self._open()
            pack.entries.append((raw, pack.size, len(data)))
            pack.size += len(data)
            pack.buffer += data
            chunk: tuple[int, int, bytearray, str] | None = None
            if len(pack.buffer) >= self.CHUNK:
                chunk = (pack.fd, pack.buffer_start, pack.buffer, pack.tmp)
                pack.buffer, pack.buffer_start = bytearray(), pack.size
            if pack.size >= self._limit:
                self._current = None
        if chunk is not None:
            _write_at(*chunk)

    def _open(self) -> _OpenPack:
        name = f"pack-{secrets.token_hex(12)}"
        tmp = os.path.join(self._tmp_dir, f"{name}.pack")
        try:
            fd = os.open(tmp, _CREATE, 0o444)
        except OSError as exc:
            raise StoreWriteError(self._tmp_dir, describe_os_error(exc)) from None
        pack = _OpenPack(name, tmp, fd)
        self._packs.append(pack)
        self._current = pack
        return pack

    def commit(self) -> list[str]:
        """Writes what is left, makes every pack durable and publishes it (pack, then
        index); returns the new packs' names. Call it once every `add` has returned."""
        with self._lock:
            packs, self._packs, self._current = self._packs, [], None
            self._planned.clear()
        published: list[str] = []
        try:
            indexes: list[tuple[_OpenPack, str]] = []
            for pack in packs:
                _write_at(pack.fd, pack.buffer_start, pack.buffer, pack.tmp)
                os.fsync(pack.fd)
                indexes.append(
                    (
                        pack,
                        _write_file(f"{pack.tmp[: -len('.pack')]}.idx", encode_index(pack.entries)),
                    )
                )
            if not packs:
                return []
            os.makedirs(self._directory, exist_ok=True)
            for pack, idx_tmp in indexes:
                os.rename(pack.tmp, os.path.join(self._directory, f"{pack.name}.pack"))
                os.rename(idx_tmp, os.path.join(self._directory, f"{pack.name}.idx"))
                published.append(pack.name)
            fsync_path(self._directory)
            if self._index is not None:
                for pack in packs:
                    self._index.learn(pack.name, sorted(pack.entries))
        except StoreWriteError:
            self._discard(packs)  # a full disk: no empty or partial pack is left behind
            raise
        except OSError as exc:
            self._discard(packs)
            raise StoreWriteError(self._directory, describe_os_error(exc)) from None
        finally:
            for pack in packs:
                with contextlib.suppress(OSError):
                    os.close(pack.fd)
        return published

    def abort(self) -> None:
        """Removes every unpublished pack."""
        with self._lock:
            packs, self._packs, self._current = self._packs, [], None
        for pack in packs:
            with contextlib.suppress(OSError):
                os.close(pack.fd)
        self._discard(packs)

    @staticmethod
    def _discard(packs: list[_OpenPack]) -> None:
        for pack in packs:
            _unlink_quietly(pack.tmp)
            _unlink_quietly(f"{pack.tmp[: -len('.pack')]}.idx")


_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)


def _write_at(fd: int, offset: int, data: bytearray, path: str) -> None:
    view = memoryview(data)
    while view:
        try:
            written = os.pwrite(fd, view, offset)
        except OSError as exc:
            raise StoreWriteError(path, describe_os_error(exc)) from None
        view, offset = view[written:], offset + written


def _write_file(path: str, data: bytes) -> str:
    fd = os.open(path, _CREATE, 0o444)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    return path


def _unlink_quietly(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
