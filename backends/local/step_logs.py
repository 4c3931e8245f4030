"""A step's log as stored: the logs of its attempts so far, one after another, with what mlc
adds (a failed attempt's reason, an internal error's traceback), and its last lines.

An attempt's part of its worker's log file (`mlc.backends.local.workspace.WorkerLogs`) is
read into memory when the whole log is small, and put into the store with the next batch of
logs (`LogBatches`). A large one (a chatty training loop) is never held in memory: it is
copied into a temporary file next to the worker's, streamed into the store, and its last
lines read from the end.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from typing import IO

from mlc.backends.local.log_batches import LogBatches
from mlc.store.base import Store
from mlc.store.digest import parse_digest

IN_MEMORY_BYTES = 8 << 20
"""Logs up to this size are assembled in memory (bytes)."""
TAIL_LINES = 20
TAIL_BYTES = 64 << 10
"""How much of the end of a log its last lines are looked for in."""
COPY_BYTES = 1 << 20


@dataclass(frozen=True, slots=True)
class LogPart:
    """One attempt's part of a worker's log file: bytes `start` to `end` of `path`."""

    path: str
    start: int
    end: int

    @property
    def size(self) -> int:
        """Its length in bytes."""
        return self.end - self.start


@dataclass(frozen=True, slots=True)
class EarlierLog:
    """The log of a step's attempts so far, kept while another attempt may follow: in
    memory when small, else as the stored object it already is."""

    data: bytes = b""
    digest: str | None = None
    size: int = 0


@dataclass(frozen=True, slots=True)
class StoredLog:
    """A step's log as put into the store."""

    digest: str
    tail: list[str]
    whole: EarlierLog
    """The same log, to be continued by a retry."""


def store_log(
    store: Store, batches: LogBatches, earlier: EarlierLog, part: LogPart | None, notes: bytes
) -> StoredLog:
    """Puts `earlier` + the attempt's `part` + `notes` into the store as one log."""
    size = earlier.size + (part.size if part else 0) + len(notes)
    if size <= IN_MEMORY_BYTES:  # then so was the earlier log: it is in `earlier.data`
        data = b"".join([earlier.data, _read(part), notes])
        tail = tail_lines(data[-TAIL_BYTES:], cut=size > TAIL_BYTES)
        return StoredLog(batches.put(data), tail, EarlierLog(data=data, size=size))
    directory = os.path.dirname(part.path) if part else None
    fd, path = tempfile.mkstemp(prefix="log-", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as out:
            if earlier.digest is not None:
                with store.open_bytes(parse_digest(earlier.digest)) as stored:
                    shutil.copyfileobj(stored, out, COPY_BYTES)
            else:
                out.write(earlier.data)
            if part is not None:
                _copy_part(part, out)
            out.write(notes)
        digest = str(store.put_file(path))
        with open(path, "rb") as written:
            written.seek(max(0, size - TAIL_BYTES))
            tail = tail_lines(written.read(), cut=size > TAIL_BYTES)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)
    return StoredLog(digest, tail, EarlierLog(digest=digest, size=size))


def tail_lines(end: bytes, *, cut: bool) -> list[str]:
    """The last lines of the end of a log (`cut`: it does not start at a line's start)."""
    lines = end.decode("utf-8", errors="replace").splitlines()
    return (lines[1:] if cut else lines)[-TAIL_LINES:]


def _read(part: LogPart | None) -> bytes:
    if part is None or not part.size:
        return b""
    with open(part.path, "rb") as handle:
        handle.seek(part.start)
        return handle.read(part.size)


def _copy_part(part: LogPart, out: IO[bytes]) -> None:
    with open(part.path, "rb") as handle:
        handle.seek(part.start)
        left = part.size
        while left:
            chunk = handle.read(min(COPY_BYTES, left))
            if not chunk:
                break
            out.write(chunk)
            left -= len(chunk)
