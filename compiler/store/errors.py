"""Errors of the content-addressed store: each carries a message written for the user."""

from __future__ import annotations


class StoreError(Exception):
    """Base of every error the store raises on purpose; `str(error)` is a user-facing message."""


class StoreNotFoundError(StoreError):
    """The store does not exist (and was opened for reading only)."""


class InvalidDigestError(StoreError, ValueError):
    """A string that should be a digest (`sha256:<64 hex>`) is not one."""


class ObjectNotFoundError(StoreError, KeyError):
    """No object with this digest is in the store."""

    def __str__(self) -> str:
        # KeyError would quote the message; keep it readable.
        return str(self.args[0]) if self.args else "object not found"


class UnsafePathError(StoreError):
    """A path (in a manifest, or a destination) is absolute, contains `..`, or escapes its root."""


class ManifestError(StoreError):
    """A manifest object is malformed: not canonical JSON, bad entries, or conflicting paths."""


class UnsupportedFileError(StoreError):
    """A path to snapshot is neither a regular file nor a directory (a socket, a fifo, ...)."""


class FileChangedError(StoreError):
    """A file kept changing while it was being read, so no consistent version could be taken."""


class StoreWriteError(StoreError):
    """Writing to the store failed (disk full, permission denied, ...); nothing was left behind."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"cannot write to the store at {path}: {reason}")
        self.path = path
        self.reason = reason


class CorruptObjectError(StoreError):
    """An object's content does not hash to its digest."""


class RecordExistsError(StoreError):
    """A record with this kind and key was already written; records are created exactly once."""


class RecordNotFoundError(StoreError, KeyError):
    """No record with this kind and key exists."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "record not found"


class UnreadableRecordError(StoreError):
    """A record exists but is not a JSON object: torn by a power loss (records are not flushed
    one by one), or written by something else. Readers take it for an absent record."""


class DestinationExistsError(StoreError):
    """`materialize` was asked to write over something that already exists."""
