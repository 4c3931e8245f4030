"""What a pod runs: `python3 -m mlc.backends.kubernetes.pod` carries out one attempt.

The attempt and the store's address come from the environment the Job manifest sets
(`mlc.backends.kubernetes.message`); the step runs through mlc's own runtime
(`mlc.runtime.remote.run_attempt`, the same code a local worker and a Ray task run) in the
container's working directory (the image's project directory), or in the spec's directory
when a volume mounts it at the same path as on the machine that ran `mlc apply`; the result
goes to the
termination message. The step's log goes to the container's output as it runs (for `kubectl
logs` and `mlc logs -f`) and into the store (it outlives the Job).

SIGTERM (the Job deleted, the pod's deadline) stops the step: its command gets the grace
period, the log is stored and the result says it was stopped. A `call` step's timeout is kept
here too (a command's is kept by the runtime).

Imports only mlc's runtime and store: the image needs mlc (with its store's extra), not the
Kubernetes client.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from collections.abc import Mapping
from typing import Any

from mlc.backends.kubernetes.message import STORE, attempt_from_environment, encode_result
from mlc.runtime.attempt import Attempt
from mlc.runtime.remote import run_attempt
from mlc.runtime.task import TaskResult
from mlc.store.uri import open_store_at

TERMINATION_LOG = "/dev/termination-log"
LOG_PATH = "/tmp/mlc-step.log"


class _Stop(KeyboardInterrupt):
    """Raised in the main thread to stop the attempt (SIGTERM, or a `call` step's timeout)."""


def main(environ: Mapping[str, str] | None = None) -> int:
    """Runs the attempt the environment describes; 0 when it produced its outputs."""
    environ = os.environ if environ is None else environ
    address: dict[str, Any] = json.loads(environ[STORE])
    store = open_store_at(address)
    data = attempt_from_environment(environ, store)
    if not os.path.isdir(data["base_dir"]):  # the spec's directory is not mounted here
        data["base_dir"] = os.getcwd()
    attempt = Attempt.from_json(data)
    timed_out = threading.Event()

    def stop(signum: int, frame: object) -> None:
        if signum == signal.SIGALRM:
            timed_out.set()
        raise _Stop

    signal.signal(signal.SIGTERM, stop)
    timeout = attempt.timeout_seconds
    if timeout and attempt.step.command.kind == "call":
        signal.signal(signal.SIGALRM, stop)
        signal.setitimer(signal.ITIMER_REAL, timeout)
    with _Echo(LOG_PATH):
        value = run_attempt(attempt, store, log_path=LOG_PATH)
    signal.setitimer(signal.ITIMER_REAL, 0)
    if timed_out.is_set() and timeout:
        value["result"] = TaskResult.timed_out_after(-15, timeout).to_json()
    message = encode_result(value, store)
    try:
        with open(TERMINATION_LOG, "w", encoding="utf-8") as handle:
            handle.write(message)
    except OSError:  # not in a pod (tests run the entry point as a process)
        print(message, file=sys.stderr)
    return 0 if value["collected"].get("outputs") is not None else 1


class _Echo:
    """Copies the step's log file to the container's output while the step runs (to a copy
    of the output taken before: a `call` step's own output goes to the log file)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._follow, daemon=True)
        self.out = -1

    def __enter__(self) -> _Echo:
        sys.stdout.flush()
        self.out = os.dup(1)
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        self.thread.join(timeout=5)
        os.close(self.out)

    def _follow(self) -> None:
        """Opens the log once it exists and keeps reading it (the runtime removes the file
        when it has stored it: the open handle still reads to its end)."""
        handle = None
        try:
            while True:
                finished = self.done.is_set()
                if handle is None:
                    try:
                        handle = open(self.path, "rb")  # noqa: SIM115 (held across the loop)
                    except OSError:
                        handle = None
                if handle is not None:
                    chunk = handle.read()
                    while chunk:
                        chunk = chunk[os.write(self.out, chunk) :]
                if finished:
                    return
                self.done.wait(0.2)
        finally:
            if handle is not None:
                handle.close()


if __name__ == "__main__":
    sys.exit(main())
