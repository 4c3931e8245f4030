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
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

from mlc.store.digest import Digest, digest_from_hex
from mlc.store.errors import CorruptObjectError, StoreWriteError
from mlc.store.fsync import fsync_path

PACKS = "packs"
MAGIC = b"MLCIDX1\n"
_ENTRY = struct.Struct(">32sQQ")
_CHECKSUM_SIZE = 32
PACK_LIMIT = 256 << 20
"""A pack is closed once it holds this many bytes; the next object starts a new one."""
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

    def find(self, digest: Digest) -> PackedObject | None:
        """Where a packed object is, or None (after re-reading `packs/` if it changed)."""
        key = bytes.fromhex(digest[7:])
        found = self._objects.get(key)
        if found is None:
            # Looked up again even when this thread did not re-read: another may just have.
            self.refresh()
            found = self._objects.get(key)
        return found

    def refresh(self) -> bool:
        """Reads the indexes added (and forgets those removed) since the last look; True when
        anything changed. Costs one `version()` when nothing did."""
        version = self.files.version()
        with self._lock:
            if version is None or version == self._seen:
                return False
            self._seen = version
            names = {n[: -len(".idx")] for n in self.files.names() if n.endswith(".idx")}
            changed = False
            for gone in set(self._packs) - names:
                del self._packs[gone]
                changed = True
            for name in names - set(self._packs):
                try:
                    entries = decode_index(self.files.read(f"{name}.idx"), name)
                except (FileNotFoundError, CorruptObjectError):
                    continue  # removed meanwhile, or damaged: `verify_all` reports it
                self._packs[name] = entries
                changed = True
            if changed:
                objects: dict[bytes, PackedObject] = {}
                copies: dict[bytes, list[PackedObject]] = {}
                for pack, entries in sorted(self._packs.items()):
                    for raw, offset, length in entries:
                        found = PackedObject(pack, offset, length)
                        if raw in objects:
                            copies.setdefault(raw, []).append(found)
                        else:
                            objects[raw] = found
                self._objects, self._copies = objects, copies
            return changed

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


class PackWriter:
    """Small objects collected by one batch of writes (threads may add at once), published
    as packs by `commit`."""

    def __init__(self, directory: str, tmp_dir: str, limit: int = PACK_LIMIT) -> None:
        self._directory = directory
        self._tmp_dir = tmp_dir
        self._limit = limit
        self._lock = threading.Lock()
        self._data = bytearray()
        self._entries: list[tuple[bytes, int, int]] = []
        self._planned: set[bytes] = set()
        self._full: list[tuple[bytearray, list[tuple[bytes, int, int]]]] = []

    def add(self, digest: Digest, data: bytes) -> None:
        """Adds an object (once per writer, however often it is added)."""
        raw = bytes.fromhex(digest[7:])
        with self._lock:
            if raw in self._planned:
                return
            self._planned.add(raw)
            self._entries.append((raw, len(self._data), len(data)))
            self._data += data
            if len(self._data) >= self._limit:
                self._full.append((self._data, self._entries))
                self._data, self._entries = bytearray(), []

    def commit(self) -> list[str]:
        """Writes every pack, makes them durable and publishes them (pack, then index);
        returns the new packs' names."""
        with self._lock:
            batches = [*self._full, (self._data, self._entries)]
            self._full, self._data, self._entries = [], bytearray(), []
            self._planned.clear()
        written: list[tuple[str, str, str]] = []
        try:
            for data, entries in batches:
                if entries:
                    written.append(self._write(data, entries))
            if not written:
                return []
            os.makedirs(self._directory, exist_ok=True)
            for name, pack_tmp, idx_tmp in written:
                os.rename(pack_tmp, os.path.join(self._directory, f"{name}.pack"))
                os.rename(idx_tmp, os.path.join(self._directory, f"{name}.idx"))
            fsync_path(self._directory)
        except OSError as exc:
            for _, pack_tmp, idx_tmp in written:
                for tmp in (pack_tmp, idx_tmp):
                    _unlink_quietly(tmp)
            raise StoreWriteError(self._directory, exc.strerror or str(exc)) from None
        return [name for name, _, _ in written]

    def _write(
        self, data: bytearray, entries: list[tuple[bytes, int, int]]
    ) -> tuple[str, str, str]:
        name = f"pack-{secrets.token_hex(12)}"
        pack_tmp = os.path.join(self._tmp_dir, f"{name}.pack")
        idx_tmp = os.path.join(self._tmp_dir, f"{name}.idx")
        for path, content in ((pack_tmp, data), (idx_tmp, encode_index(entries))):
            fd = os.open(
                path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o444
            )
            try:
                view = memoryview(content)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            finally:
                os.close(fd)
        return name, pack_tmp, idx_tmp


def _unlink_quietly(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
