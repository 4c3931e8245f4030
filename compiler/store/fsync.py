"""Durability primitives: fsync of a file or directory, and batched flushing of many files.

A snapshot of many small files does what git's `core.fsyncMethod=batch` does: each object is
written to a temporary file and its data is written out to disk with `sync_file_range` (that
file only; no journal commit), then one `fsync` of a barrier file commits the filesystem
journal for all of them, and only then are they renamed into place; the fan-out directories are
fsynced after the renames. One journal commit per batch instead of one per file, and unlike
`syncfs`, no flushing of other programs' dirty data. Where `sync_file_range` is missing each
file is fsynced instead.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from functools import cache

_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)

# <linux/fs.h>
SYNC_FILE_RANGE_WAIT_BEFORE = 1
SYNC_FILE_RANGE_WRITE = 2
SYNC_FILE_RANGE_WAIT_AFTER = 4


def fsync_path(path: str) -> None:
    """fsyncs a file or directory by path (directories: makes renames in them durable)."""
    fd = os.open(path, os.O_RDONLY | _O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@cache
def _sync_file_range() -> Callable[[int, int, int, int], int] | None:
    try:
        import ctypes
        import ctypes.util

        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        native = libc.sync_file_range
        native.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
        native.restype = ctypes.c_int
        function: Callable[[int, int, int, int], int] = native
        return function
    except (OSError, AttributeError):  # pragma: no cover - not Linux
        return None


def write_out(fd: int) -> None:
    """Writes a file's data to disk and waits for it, without a journal commit (batch mode);
    a plain fsync where that is not available."""
    function = _sync_file_range()
    flags = SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER
    if function is None or function(fd, 0, 0, flags) != 0:
        os.fsync(fd)


def commit_batch(directory: str) -> None:
    """Commits the journal for every file written out with `write_out` on this filesystem, by
    fsyncing a new barrier file in `directory` (then removes it)."""
    barrier = os.path.join(directory, f".barrier-{os.getpid()}-{os.urandom(6).hex()}")
    fd = os.open(barrier, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_CLOEXEC, 0o600)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
        os.unlink(barrier)


def fsync_directories(directories: Iterable[str]) -> None:
    """fsyncs each directory once (after renames into them)."""
    for directory in sorted(set(directories)):
        fsync_path(directory)
