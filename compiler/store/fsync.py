"""Durability primitives: fsync of a file or directory, and a whole-filesystem sync (syncfs).

A snapshot of many small files writes them all to temporary names, syncs the filesystem
once, and only then renames them into place: one flush instead of one per file, with the same
guarantee that no object is visible under its final name before its content is on disk.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import cache


def fsync_path(path: str) -> None:
    """fsyncs a file or directory by path (directories: makes renames in them durable)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@cache
def _syncfs() -> Callable[[int], int] | None:
    try:
        import ctypes
        import ctypes.util

        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        function: Callable[[int], int] = libc.syncfs
        return function
    except (OSError, AttributeError):  # pragma: no cover - not Linux
        return None


def sync_filesystem(path: str) -> None:
    """Flushes every dirty page of the filesystem holding `path` (Linux syncfs, else sync)."""
    function = _syncfs()
    if function is None:  # pragma: no cover - not Linux
        os.sync()
        return
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        if function(fd) != 0:  # pragma: no cover - syncfs fails only on a broken fd
            os.sync()
    finally:
        os.close(fd)
