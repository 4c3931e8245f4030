"""A step's log as stored: the logs of its attempts so far, one after another, with what mlc
adds (a failed attempt's reason, an internal error's traceback), and its last lines.

Every executor writes an attempt's log the same way: a header line (`attempt_header`), what
the step prints, and mlc's notes (`failure_note`). An attempt's part of a log file (a local
worker appends all its attempts to one file) is read into memory when the whole log is small, and put into the store with the next batch of
logs (`mlc.runtime.log_batches.LogBatches`) by a local executor. A large one (a chatty training loop) is never held in memory: it is
copied into a temporary file next to the worker's, streamed into the store, and its last
lines read from the end.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import IO, Any

from mlc.runtime.task import TaskResult
from mlc.store.base import Store
from mlc.store.digest import parse_digest
from mlc.store.errors import StoreWriteError
from mlc.store.io_errors import describe_os_error

IN_MEMORY_BYTES = 8 << 20
"""Logs up to this size are assembled in memory (bytes)."""
TAIL_LINES = 20
TAIL_BYTES = 64 << 10
"""How much of the end of a log its last lines are looked for in."""
COPY_BYTES = 1 << 20

ATTEMPT_HEADER = re.compile(rb"^--- mlc: (.+?) attempt \d+ started .*$", re.MULTILINE)
"""The line written to a log before each attempt (`attempt_header`), and its invocation."""


def attempt_header(invocation: str, attempt: int) -> str:
    """The line written to the log before an attempt (`ATTEMPT_HEADER` finds it)."""
    return f"--- mlc: {invocation} attempt {attempt} started {time.strftime('%Y-%m-%d %H:%M:%S')} ---\n"


def describe_result(result: TaskResult | None, error: str | None) -> str:
    """One line saying why an attempt failed."""
    if error:
        return error
    if result is None:
        return "the attempt ended without a result"
    return result.error or f"exited with code {result.exit_code}"


def failure_note(attempt: int, result: TaskResult | None, error: str | None) -> str:
    """What mlc adds to the log of a failed attempt."""
    return f"--- mlc: attempt {attempt} failed: {describe_result(result, error)} ---\n"


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

    def to_json(self) -> dict[str, Any]:
        """Its digest and size (the data stays in this process; it is in the store)."""
        return {"digest": self.digest, "size": self.size}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> EarlierLog:
        """The log a `to_json` dict describes, read from the store when needed."""
        return cls(digest=data.get("digest"), size=int(data.get("size") or 0))


@dataclass(frozen=True, slots=True)
class StoredLog:
    """A step's log as put into the store."""

    digest: str
    tail: list[str]
    whole: EarlierLog
    """The same log, to be continued by a retry."""


def store_log(
    store: Store,
    put_small: Callable[[bytes], str],
    earlier: EarlierLog,
    part: LogPart | None,
    notes: bytes,
) -> StoredLog:
    """Puts `earlier` + the attempt's `part` + `notes` into the store as one log. A log small
    enough to be held in memory goes through `put_small` (a `LogBatches.put`, or the store's
    own `put_bytes`), which returns its digest."""
    size = earlier.size + (part.size if part else 0) + len(notes)
    if size <= IN_MEMORY_BYTES:
        data = b"".join([_earlier_data(store, earlier), _read(part), notes])
        tail = tail_lines(data[-TAIL_BYTES:], cut=size > TAIL_BYTES)
        digest = put_small(data)
        return StoredLog(digest, tail, EarlierLog(data=data, digest=digest, size=size))
    directory = os.path.dirname(part.path) if part else None
    try:
        fd, path = tempfile.mkstemp(prefix="log-", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise StoreWriteError(directory or tempfile.gettempdir(), describe_os_error(exc)) from None
    try:
        with _written(path), os.fdopen(fd, "wb") as out:
            if earlier.digest is not None and len(earlier.data) != earlier.size:
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


@contextlib.contextmanager
def _written(path: str) -> Iterator[None]:
    """A write to `path` that fails (a full disk) is a `StoreWriteError` naming it."""
    try:
        yield
    except OSError as exc:
        raise StoreWriteError(path, describe_os_error(exc)) from None


def tail_lines(end: bytes, *, cut: bool) -> list[str]:
    """The last lines of the end of a log (`cut`: it does not start at a line's start)."""
    lines = end.decode("utf-8", errors="replace").splitlines()
    return (lines[1:] if cut else lines)[-TAIL_LINES:]


def _earlier_data(store: Store, earlier: EarlierLog) -> bytes:
    """A small earlier log's bytes: kept in memory by this process, else read from the store
    (an attempt that runs elsewhere than the one before it)."""
    if len(earlier.data) == earlier.size or earlier.digest is None:
        return earlier.data
    with store.open_bytes(parse_digest(earlier.digest)) as stored:
        return stored.read()


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
