"""The stat cache: (device, inode, size, mtime_ns) -> digest, so unchanged files are not re-read.

Kept in SQLite (WAL mode, a busy timeout) so several processes can use one cache at once.
An entry is trusted only when the file's mtime was older than the moment it was read by more
than `RACY_WINDOW_NS`: a file written in the same clock tick as it was hashed could change again
without changing its mtime ("racily clean", as git calls it), so such files are hashed again
next time, and cached then.
"""

from __future__ import annotations

import contextlib
import os
import random
import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from typing import NamedTuple

from mlc.store.digest import Digest

RACY_WINDOW_NS = 100_000_000
"""A file modified less than this long before it was read is not cached (100 ms)."""

_LOOKUP_BATCH = 500
"""Inodes looked up per query (well under SQLite's limit of bound parameters)."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS stat_cache (
    device   INTEGER NOT NULL,
    inode    INTEGER NOT NULL,
    size     INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    digest   TEXT    NOT NULL,
    PRIMARY KEY (device, inode)
) WITHOUT ROWID
"""


class FileStat(NamedTuple):
    """The part of `os.stat` that identifies one version of a file (a tuple: one is made
    per file of every snapshot)."""

    device: int
    inode: int
    size: int
    mtime_ns: int

    @classmethod
    def of(cls, st: os.stat_result) -> FileStat:
        """Takes the identifying fields from a stat result."""
        return cls(st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def connect_sqlite(path: str) -> sqlite3.Connection:
    """A connection in WAL mode with a generous busy timeout, usable from any thread.

    Switching a new database to WAL needs an exclusive lock and does not wait on the busy
    timeout, so processes opening the same new database at once retry it.
    """
    connection = sqlite3.connect(path, timeout=60.0, isolation_level=None, check_same_thread=False)
    connection.execute("PRAGMA busy_timeout = 60000")
    deadline = time.monotonic() + 60
    while True:
        try:
            mode = connection.execute("PRAGMA journal_mode = WAL").fetchone()
            break
        except sqlite3.OperationalError as exc:
            # Only a lock is worth waiting for; a full or read-only disk will not go away.
            if time.monotonic() > deadline or "locked" not in str(exc).lower():
                raise
            time.sleep(0.01 + random.random() * 0.05)
    if mode is None or str(mode[0]).lower() != "wal":  # pragma: no cover - e.g. network fs
        connection.execute("PRAGMA journal_mode = DELETE")
    connection.execute("PRAGMA synchronous = NORMAL")
    return connection


class StatCache:
    """Remembers the digest of each file version seen, keyed by `FileStat`."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._lock = threading.Lock()
        # A cache that cannot be opened, read or written (a full or read-only disk) only
        # costs hashing: it is never the reason a snapshot fails.
        self._db: sqlite3.Connection | None = None
        with contextlib.suppress(sqlite3.Error):
            self._db = connect_sqlite(path)
            self._db.execute(_SCHEMA)

    def lookup(self, stat: FileStat) -> Digest | None:
        """The cached digest of this exact file version, or None."""
        return self.lookup_many([stat])[0]

    def lookup_many(self, stats: Sequence[FileStat]) -> list[Digest | None]:
        """Cached digests for many file versions, None where unknown or changed."""
        rows: dict[tuple[int, int], tuple[int, int, str]] = {}
        by_device: dict[int, list[int]] = {}
        for s in stats:
            by_device.setdefault(s.device, []).append(s.inode)
        with self._lock, contextlib.suppress(sqlite3.Error):
            if self._db is None:
                return [None] * len(stats)
            cursor = self._db.cursor()
            cursor.execute("BEGIN")
            try:
                for device, inodes in by_device.items():
                    for start in range(0, len(inodes), _LOOKUP_BATCH):
                        batch = inodes[start : start + _LOOKUP_BATCH]
                        marks = ",".join("?" * len(batch))
                        for inode, size, mtime_ns, digest in cursor.execute(
                            "SELECT inode, size, mtime_ns, digest FROM stat_cache"
                            f" WHERE device = ? AND inode IN ({marks})",
                            (device, *batch),
                        ):
                            rows[device, inode] = (size, mtime_ns, digest)
            finally:
                with contextlib.suppress(sqlite3.Error):
                    cursor.execute("COMMIT")
        found: list[Digest | None] = []
        for s in stats:
            row = rows.get((s.device, s.inode))
            hit = row is not None and row[0] == s.size and row[1] == s.mtime_ns
            found.append(Digest(row[2]) if row is not None and hit else None)
        return found

    def record_many(self, entries: Iterable[tuple[FileStat, Digest, int]]) -> int:
        """Stores (stat, digest, read_at_ns) triples; skips racily clean files. Returns count."""
        rows = [
            (s.device, s.inode, s.size, s.mtime_ns, digest)
            for s, digest, read_at_ns in entries
            if s.mtime_ns < read_at_ns - RACY_WINDOW_NS
        ]
        if not rows:
            return 0
        with self._lock:
            if self._db is None:
                return 0
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    self._db.executemany(
                        "INSERT OR REPLACE INTO stat_cache"
                        " (device, inode, size, mtime_ns, digest) VALUES (?, ?, ?, ?, ?)",
                        rows,
                    )
                except BaseException:
                    with contextlib.suppress(sqlite3.Error):
                        self._db.execute("ROLLBACK")
                    raise
                self._db.execute("COMMIT")
            except sqlite3.Error:
                return 0  # not remembered: those files are hashed again next time
        return len(rows)

    def close(self) -> None:
        """Closes the database connection."""
        with self._lock:
            if self._db is not None:
                self._db.close()


def same_file_version(a: os.stat_result, b: os.stat_result) -> bool:
    """Whether two stats of a file describe the same content version (inode, size, mtime)."""
    return (a.st_ino, a.st_size, a.st_mtime_ns) == (b.st_ino, b.st_size, b.st_mtime_ns)
