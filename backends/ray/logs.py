"""The log of a step running on Ray, while it runs (`mlc logs RUN STEP`, `-f`).

A Ray task writes its attempt's log to `<store's local dir>/work/<run id>/ray/<invocation>.<n>.log`
on the node it runs on, and removes the file once the step's log is in the store. On a
single-node cluster (a local Ray, or mlc on the head of a one-node cluster) that is this
machine, and the log can be read as it grows; on other nodes the log appears in the store when
the attempt ends.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

POLL_SECONDS = 0.2


def log_directory(local_dir: str, run_id: str) -> Path:
    """Where the tasks of a run write their attempts' logs while they run."""
    return Path(local_dir, "work", run_id, "ray").resolve()


def _latest(directory: Path, invocation: str) -> Path | None:
    """The log file of the invocation's latest attempt, if one is being written here."""
    pattern = re.compile(re.escape(invocation) + r"\.(\d+)\.log")
    found: list[tuple[int, Path]] = []
    try:
        for path in directory.iterdir():
            match = pattern.fullmatch(path.name)
            if match:
                found.append((int(match[1]), path))
    except OSError:
        return None
    return max(found)[1] if found else None


def follow_log(
    local_dir: str, run_id: str, invocation: str, *, ended: Callable[[], bool]
) -> Iterator[bytes]:
    """What the invocation's running attempt has logged so far, then what it adds until
    `ended()` is true or the attempt's file goes away. Nothing when no attempt of it is
    running on this machine."""
    path = _latest(log_directory(local_dir, run_id), invocation)
    if path is None:
        return
    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed below; kept open if the file goes
    except OSError:
        return
    with handle:
        while True:
            last = ended() or not path.exists()  # decided before the last read
            data = handle.read()
            if data:
                yield data
            if last:
                return
            time.sleep(POLL_SECONDS)
