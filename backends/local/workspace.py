"""The run's scratch space under the store's local directory, and cleaning up after crashes.

```
<store>/work/<run id>/.lock                     held (flock) while the run is alive
<store>/work/<run id>/workers/<pid>/             the attempt a worker runs: inputs, outputs, tmp
<store>/work/<run id>/workers/<pid>.log          that worker's attempts' logs, one after another
                                                 (each attempt's part goes to the store)
<store>/work/<run id>/workers.log               what workers print outside of any step
```

A run killed with `kill -9` leaves its directory behind with an unlocked lock file; the next
run removes it. Nothing in here is ever an output: outputs are visible only once they are in
the store and recorded.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from mlc.runtime.step_logs import ATTEMPT_HEADER, LogPart
from mlc.runtime.workdir import remove_tree

WORK_DIR = "work"
LOCK_FILE = ".lock"
WORKER_LOG_LIMIT = 16 << 20
"""A worker's log file is emptied before an attempt once it has grown past this (bytes)."""


class WorkerLogs:
    """The log file of each worker, read one attempt's part at a time.

    A worker appends the log of every attempt it runs to one file, and its part is read from
    where the previous one ended: a file per step would be created and deleted again for
    every step, and emptying the file for each attempt costs more than a short step on some
    disks. Once the file has grown past `WORKER_LOG_LIMIT` it is emptied before the next
    attempt. One attempt per worker at a time, so each file has one reader at a time.
    """

    def __init__(self, directory: str) -> None:
        self._directory = directory
        self._ends: dict[int, int] = {}

    def path(self, worker_pid: int) -> str:
        """The worker's log file."""
        return f"{self._directory}/{worker_pid}.log"

    def begin(self, worker_pid: int) -> tuple[int, bool]:
        """Where the next attempt's part will start, and whether the worker must empty the
        file first."""
        end = self._ends.get(worker_pid, 0)
        return (0, True) if end >= WORKER_LOG_LIMIT else (end, False)

    def take(self, worker_pid: int, start: int) -> LogPart:
        """An attempt's part, from `start` to the end of the file (once the attempt ended)."""
        path = self.path(worker_pid)
        end = max(start, os.stat(path).st_size)
        self._ends[worker_pid] = end
        return LogPart(path, start, end)


class RunWorkspace:
    """The directory of one run, locked for as long as the run lives."""

    def __init__(self, local_dir: str, run_id: str) -> None:
        self.root = Path(local_dir, WORK_DIR, run_id)
        (self.root / "workers").mkdir(parents=True, exist_ok=True)
        self._workers = str(self.root / "workers")
        self._scratch: dict[int, Path] = {}
        self.worker_logs = WorkerLogs(self._workers)
        self._lock_fd = _create_locked(self.root / LOCK_FILE)

    def scratch_dir(self, worker_pid: int) -> Path:
        """The attempt directory of one worker (emptied after each of its attempts)."""
        found = self._scratch.get(worker_pid)
        if found is None:
            found = self._scratch[worker_pid] = Path(self._workers, str(worker_pid))
        return found

    @property
    def workers_log(self) -> Path:
        """Where workers write outside of tasks."""
        return self.root / "workers.log"

    def close(self) -> None:
        """Removes the run's directory and releases the lock."""
        with contextlib.suppress(OSError):
            remove_tree(self.root)
        os.close(self._lock_fd)


def _create_locked(lock: Path) -> int:
    """The run's lock file, locked before it appears under its name: another run finding it
    unlocked knows its run is gone, never that it has not locked it yet."""
    temporary = lock.with_name(f"{LOCK_FILE}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX)
    os.replace(temporary, lock)
    return fd


def _claim(lock: Path) -> int | None:
    """The lock file open and locked by us, or None: its run still holds it (or it is gone)."""
    try:
        fd = os.open(lock, os.O_RDWR)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def run_alive(local_dir: str, run_id: str) -> bool:
    """Whether the run's process still holds its workspace's lock."""
    lock = Path(local_dir, WORK_DIR, run_id, LOCK_FILE)
    fd = _claim(lock)
    if fd is None:
        return lock.exists()
    os.close(fd)
    return False


def _locate_live_log(local_dir: str, run_id: str, invocation: str) -> tuple[Path, int] | None:
    """The worker log file holding the invocation's latest attempt, and where it begins."""
    found: tuple[float, Path, int] | None = None
    for path in Path(local_dir, WORK_DIR, run_id, "workers").glob("*.log"):
        try:
            data = path.read_bytes()
            mtime = path.stat().st_mtime
        except OSError:
            continue
        starts = [h.start() for h in ATTEMPT_HEADER.finditer(data) if _names(h, invocation)]
        if starts and (found is None or mtime > found[0]):
            found = (mtime, path, starts[-1])
    return None if found is None else (found[1], found[2])


def _names(header: re.Match[bytes], invocation: str) -> bool:
    return header.group(1).decode(errors="replace") == invocation


def follow_live_log(
    local_dir: str,
    run_id: str,
    invocation: str,
    *,
    ended: Callable[[], bool],
    poll_seconds: float = 0.2,
) -> Iterator[bytes]:
    """The log of a running invocation as it grows: what it has logged so far, then what it
    adds, until `ended()` is true, the run is gone, or its worker starts another invocation.
    Nothing when the invocation is not running."""
    if not run_alive(local_dir, run_id):
        return
    located = _locate_live_log(local_dir, run_id, invocation)
    if located is None:
        return
    path, offset = located
    try:
        # Kept open: the run removes its directory as it ends, possibly before the last read.
        handle = open(path, "rb")  # noqa: SIM115 - closed below, after the last read
    except OSError:
        return
    with handle:
        handle.seek(offset)
        yield from _follow(handle, local_dir, run_id, invocation, ended, poll_seconds)


def _follow(
    handle: BinaryIO,
    local_dir: str,
    run_id: str,
    invocation: str,
    ended: Callable[[], bool],
    poll_seconds: float,
) -> Iterator[bytes]:
    held = b""  # an unfinished last line: it may turn out to be another attempt's header
    while True:
        last = ended() or not run_alive(local_dir, run_id)  # decided before the last read
        data = held + handle.read()
        cut = data.rfind(b"\n") + 1
        lines, held = data[:cut], data[cut:]
        other = next((h for h in ATTEMPT_HEADER.finditer(lines) if not _names(h, invocation)), None)
        if other is not None:  # the worker has moved on: the invocation's part is complete
            yield lines[: other.start()]
            return
        if last:
            yield lines + held
            return
        if lines:
            yield lines
        time.sleep(poll_seconds)


def remove_abandoned_runs(local_dir: str, min_age_seconds: float = 60.0) -> int:
    """Removes the directories of runs whose process is gone (their lock is free), at once.

    A lock file is locked before it takes its name (`_create_locked`), so a free one is a dead
    run's. A directory without a lock file is left alone for `min_age_seconds`: its run may be
    starting up.
    """
    base = Path(local_dir, WORK_DIR)
    removed = 0
    now = time.time()
    try:
        entries = list(base.iterdir())
    except FileNotFoundError:
        return 0
    for entry in entries:
        lock = entry / LOCK_FILE
        if not lock.exists():
            with contextlib.suppress(OSError):
                if now - entry.stat().st_mtime >= min_age_seconds:
                    remove_tree(entry)
                    removed += 1
            continue
        fd = _claim(lock)
        if fd is None:
            continue
        try:
            remove_tree(entry)
            removed += 1
        except OSError:
            pass
        finally:
            os.close(fd)
    return removed
