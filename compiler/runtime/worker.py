"""A long-lived worker process: runs tasks one at a time, sent as JSON lines over a pipe.

    python -m mlc.runtime.worker TASKS_FD RESULTS_FD

The scheduler starts a worker as the leader of a new session and reuses it for task after
task, so a `call` step never pays for a fresh interpreter, and stopping a step (timeout,
cancel) means killing the worker's whole process group. A command step runs as a child in
the same group. If the scheduler dies (even by `kill -9`), the worker notices that it was
re-parented and kills its group, so no step outlives the run that started it.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time

from mlc.runtime.task import Task, TaskResult, execute_task

PARENT_CHECK_SECONDS = 0.2


def watch_parent(parent_pid: int) -> None:
    """Kills this worker's process group as soon as its parent is gone."""
    while True:
        if os.getppid() != parent_pid:
            os.killpg(os.getpgrp(), signal.SIGKILL)
        time.sleep(PARENT_CHECK_SECONDS)


def serve(tasks_fd: int, results_fd: int) -> int:
    """Runs tasks until the task pipe is closed; returns the exit code."""
    threading.Thread(target=watch_parent, args=(os.getppid(),), daemon=True).start()
    with (
        os.fdopen(tasks_fd, "r", encoding="utf-8") as tasks,
        os.fdopen(results_fd, "w", encoding="utf-8") as results,
    ):
        for line in tasks:
            try:
                task = Task.from_json(json.loads(line))
                result = execute_task(task, new_session=False)
            except Exception as exc:
                result = TaskResult(1, f"the worker could not run the task: {exc}")
            results.write(json.dumps(result.to_json()) + "\n")
            results.flush()
    return 0


def main(argv: list[str]) -> int:
    """Entry point: `TASKS_FD RESULTS_FD`."""
    if len(argv) != 2:
        print("usage: python -m mlc.runtime.worker TASKS_FD RESULTS_FD", file=sys.stderr)
        return 2
    return serve(int(argv[0]), int(argv[1]))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
