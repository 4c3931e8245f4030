"""Durability primitives: fsync of a file or directory, and batched flushing of many files.

A snapshot of many small files does what git's `core.fsyncMethod=batch` does: each object is
written to a temporary file and its data is written out to disk with `sync_file_range` (that
file only; no journal commit), then one `fsync` of a barrier file commits the filesystem
journal for all of them, and only then are they renamed into place; the fan-out directories are
fsynced after the renames. One journal commit per batch instead of one per file, and unlike
`syncfs`, no flushing of other programs' dirty data. Where `sync_file_range` is missing each
file is fsynced instead.

The barrier works only through a journal: it is the journal commit that carries every file's
size and block map to disk. ext4 can be made without one (some cloud images are); there a
file's data written out leaves its inode in memory, and a power loss could leave an object
empty under its final name. So where the file's filesystem is ext2/3/4 without a journal
(`journalled`), each file is fsynced instead.
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
    a plain fsync where that is not available, or where there is no journal to commit."""
    function = _sync_file_range()
    flags = SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER
    if function is None or not journalled(os.fstat(fd).st_dev) or function(fd, 0, 0, flags) != 0:
        os.fsync(fd)


@cache
def journalled(device: int, proc: str = "/proc", sysfs: str = "/sys") -> bool:
    """Whether the filesystem on `device` (an `st_dev`) has a journal, as far as Linux says:
    False only for a filesystem the ext4 driver mounts (ext2, ext3, ext4) with no journal of
    its own in `/proc/fs/jbd2`; True for every other filesystem, and off Linux."""
    block = os.path.realpath(f"{sysfs}/dev/block/{os.major(device)}:{os.minor(device)}")
    name = os.path.basename(block)
    if not os.path.isdir(f"{proc}/fs/ext4/{name}"):
        return True
    try:
        return any(entry.startswith(f"{name}-") for entry in os.listdir(f"{proc}/fs/jbd2"))
    except OSError:  # jbd2 is not even loaded: no ext4 filesystem has a journal
        return False


def commit_batch(directory: str) -> None:
    """Commits the journal for every file written out with `write_out` on this filesystem, by
    fsyncing a new barrier file in `directory` (then removes it). Nothing to do without a
    journal: `write_out` fsynced each file."""
    if not journalled(os.stat(directory).st_dev):
        return
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
