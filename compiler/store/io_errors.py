"""What a failed write means, in words: a full disk, a quota, a read-only filesystem, a
permission. The store, lineage and the runtime turn `OSError` and SQLite errors into messages
that name the file and say what to do, instead of an internal error."""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import sqlite3

_HELP = {
    errno.ENOSPC: "the disk is full; free some space (`mlc gc` removes unused objects)",
    errno.EDQUOT: "the disk quota is exceeded; free some space (`mlc gc`) or raise the quota",
    errno.EROFS: "the filesystem is read-only; use a store on a writable one (`--store`)",
    errno.EACCES: "permission denied; check the owner and mode of the folder",
    errno.EPERM: "operation not permitted; check the owner and mode of the folder",
}


def describe_os_error(exc: OSError) -> str:
    """`No space left on device: the disk is full; free some space (…)`, or the system's words.

    >>> describe_os_error(OSError(28, "No space left on device"))
    'No space left on device: the disk is full; free some space (`mlc gc` removes unused objects)'
    """
    reason = exc.strerror or str(exc)
    help_text = _HELP.get(exc.errno or 0)
    return f"{reason}: {help_text}" if help_text else reason


def is_disk_error(exc: OSError) -> bool:
    """A write refused by the filesystem (full, quota, read-only, permission)."""
    return (exc.errno or 0) in _HELP


def describe_sqlite_error(exc: sqlite3.Error) -> str:
    """SQLite's words, with what a full or read-only disk looks like to it made plain.

    >>> import sqlite3
    >>> describe_sqlite_error(sqlite3.OperationalError("database or disk is full"))
    'database or disk is full: the disk is full; free some space (`mlc gc` removes unused objects)'
    """
    text = str(exc)
    lowered = text.lower()
    if "disk is full" in lowered:
        return f"{text}: {_HELP[errno.ENOSPC]}"
    if "disk i/o error" in lowered:
        return f"{text}: the disk may be full or failing; free some space (`mlc gc`)"
    if "readonly" in lowered or "read-only" in lowered:
        return f"{text}: {_HELP[errno.EROFS]}"
    if "unable to open" in lowered:
        return f"{text}: {_HELP[errno.EACCES]}"
    return text
