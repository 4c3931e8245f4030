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
from pathlib import Path

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

    def read(self, worker_pid: int, start: int) -> bytes:
        """An attempt's part, from `start` to the end of the file (once the attempt ended)."""
        with open(self.path(worker_pid), "rb") as handle:
            handle.seek(start)
            part = handle.read()
        self._ends[worker_pid] = start + len(part)
        return part


class RunWorkspace:
    """The directory of one run, locked for as long as the run lives."""

    def __init__(self, local_dir: str, run_id: str) -> None:
        self.root = Path(local_dir, WORK_DIR, run_id)
        (self.root / "workers").mkdir(parents=True, exist_ok=True)
        self._workers = str(self.root / "workers")
        self._scratch: dict[int, Path] = {}
        self.worker_logs = WorkerLogs(self._workers)
        self._lock_fd = os.open(self.root / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)

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


ATTEMPT_HEADER = re.compile(rb"^--- mlc: (.+?) attempt \d+ started .*$", re.MULTILINE)
"""The line a worker writes before each attempt (`mlc.runtime.attempt.AttemptPlan.header`)."""


def run_alive(local_dir: str, run_id: str) -> bool:
    """Whether the run's process still holds its workspace's lock."""
    try:
        fd = os.open(Path(local_dir, WORK_DIR, run_id, LOCK_FILE), os.O_RDWR)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)
    return False


def live_log(local_dir: str, run_id: str, invocation: str) -> bytes | None:
    """What a running invocation has logged so far, or None when it is not running: its
    worker's log file from the invocation's last attempt header to the next attempt's header
    (or the end)."""
    if not run_alive(local_dir, run_id):
        return None
    found: tuple[float, bytes] | None = None
    for path in Path(local_dir, WORK_DIR, run_id, "workers").glob("*.log"):
        try:
            data = path.read_bytes()
            mtime = path.stat().st_mtime
        except OSError:
            continue
        headers = list(ATTEMPT_HEADER.finditer(data))
        mine = [
            i for i, h in enumerate(headers) if h.group(1).decode(errors="replace") == invocation
        ]
        if not mine:
            continue
        start = headers[mine[-1]].start()
        end = headers[mine[-1] + 1].start() if mine[-1] + 1 < len(headers) else len(data)
        if found is None or mtime > found[0]:
            found = (mtime, data[start:end])
    return None if found is None else found[1]


def remove_abandoned_runs(local_dir: str, min_age_seconds: float = 60.0) -> int:
    """Removes the directories of runs whose process is gone (their lock is free).

    A lock file younger than `min_age_seconds` is left alone: its run may be starting up and
    not hold the lock yet.
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
        try:
            if now - lock.stat().st_mtime < min_age_seconds:
                continue
            fd = os.open(lock, os.O_RDWR)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue
        try:
            remove_tree(entry)
            removed += 1
        except OSError:
            pass
        finally:
            os.close(fd)
    return removed
