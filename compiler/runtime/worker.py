"""A long-lived worker process: carries out attempts one at a time, sent as JSON lines.

    python -m mlc.runtime.worker TASKS_FD RESULTS_FD

Each line on the task pipe is `{"store": <store address>, "task": <Task>, "attempt":
<AttemptPlan>}`; the worker answers with two lines, `{"ended": <TaskResult> | null}` as soon
as the task has finished (the scheduler's timeout clock stops there; an attempt without a
timeout has it sent together with the next) and `{"collected": <Collected>}` once the outputs
are in the store (see `mlc.runtime.attempt`).

The scheduler starts a worker as the leader of a new session and reuses it for attempt after
attempt, so a `call` step never pays for a fresh interpreter, and stopping a step (timeout,
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
from typing import Any

from mlc.runtime.attempt import AttemptPlan, Collected, carry_out
from mlc.runtime.task import Task, TaskResult
from mlc.store.base import Store
from mlc.store.uri import open_store_at

PARENT_CHECK_SECONDS = 0.2


def watch_parent(parent_pid: int) -> None:
    """Kills this worker's process group as soon as its parent is gone."""
    while True:
        if os.getppid() != parent_pid:
            os.killpg(os.getpgrp(), signal.SIGKILL)
        time.sleep(PARENT_CHECK_SECONDS)


def serve(tasks_fd: int, results_fd: int) -> int:
    """Carries out attempts until the task pipe is closed; returns the exit code."""
    threading.Thread(target=watch_parent, args=(os.getppid(),), daemon=True).start()
    # Steps must not inherit the pipes (a command is started with `posix_spawn`, which
    # closes only non-inheritable descriptors).
    os.set_inheritable(tasks_fd, False)
    os.set_inheritable(results_fd, False)
    stores: dict[str, Store] = {}
    emptied: set[str] = set()
    with (
        os.fdopen(tasks_fd, "r", encoding="utf-8") as tasks,
        os.fdopen(results_fd, "w", encoding="utf-8") as results,
    ):
        timed = True

        def reply(message: dict[str, Any], *, flush: bool = True) -> None:
            results.write(json.dumps(message) + "\n")
            if flush:
                results.flush()

        def ended(result: TaskResult | None) -> None:
            # Without a timeout to stop, the end goes out with the second report (one write,
            # one wake-up of the scheduler instead of two).
            reply({"ended": None if result is None else result.to_json()}, flush=timed)

        def collected(report: Collected) -> None:
            reply({"collected": report.to_json()})

        for line in tasks:
            try:
                message = json.loads(line)
                task = Task.from_json(message["task"])
                plan = AttemptPlan.from_json(message["attempt"])
                store = _store(stores, message["store"])
                timed = plan.timed
            except Exception as exc:
                ended(None)
                collected(Collected(error=f"the worker could not read the attempt: {exc}"))
            else:
                carry_out(plan, task, store, ended=ended, collected=collected, emptied=emptied)
    return 0


def _store(stores: dict[str, Store], address: dict[str, Any]) -> Store:
    """The store at an address, opened once per worker."""
    key = json.dumps(address, sort_keys=True)
    if key not in stores:
        stores[key] = open_store_at(address)
    return stores[key]


def main(argv: list[str]) -> int:
    """Entry point: `TASKS_FD RESULTS_FD`."""
    if len(argv) != 2:
        print("usage: python -m mlc.runtime.worker TASKS_FD RESULTS_FD", file=sys.stderr)
        return 2
    return serve(int(argv[0]), int(argv[1]))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
