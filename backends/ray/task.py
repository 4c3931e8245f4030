"""What one Ray task runs: one attempt, through mlc's own step runtime.

The task receives the attempt as plain JSON and the store's address, never data, and carries
the attempt out with `mlc.runtime.remote.run_attempt` (the same code a local worker and a
Kubernetes pod run), returning digests and the result as JSON.

A step without GPUs gets `CUDA_VISIBLE_DEVICES` empty (Ray leaves it unset, and the step would
see every GPU of the node); a GPU step gets the devices Ray assigned.

`run_attempt_signalled` is the same as a Ray streaming generator that first says where it
started: the driver learns the moment a task leaves Ray's queue (a step's timeout counts from
there, and a step still waiting after the target's `pending_timeout` fails). It costs one more
message per task, so only the tasks that need it are signalled (see `mlc.backends.ray.executor`).

A log smaller than `inline_log_bytes` comes back with the result instead of being stored by
the task: the driver stores the logs of many steps in one batch.

A worker that runs task after task (every step without GPUs) reuses one attempt directory,
`<run's work directory>/attempts/<pid>`, which the driver removes with the run's work
directory; a GPU step's worker exits after its task, so its attempt gets a temporary directory
of its own, removed after it.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from typing import Any

from mlc.runtime.attempt import Attempt
from mlc.runtime.remote import AttemptRoot
from mlc.runtime.remote import run_attempt as carry_out_here
from mlc.store.base import Store
from mlc.store.uri import open_store_at

CUDA_VARIABLE = "CUDA_VISIBLE_DEVICES"
_stores: dict[str, Store] = {}
_roots: dict[str, AttemptRoot] = {}
"""This worker's attempt directory, by the run's log directory."""


def run_attempt(
    attempt_json: dict[str, Any],
    store_address: dict[str, Any],
    log_dir: str,
    inline_log_bytes: int = 0,
) -> dict[str, Any]:
    """Carries out one attempt in this Ray worker and returns how it ended. `log_dir` is where
    the attempt's log is written while it runs (`mlc logs -f` reads it there on a single-node
    cluster)."""
    attempt = Attempt.from_json(attempt_json)
    gpus = attempt.step.resources.gpu
    gpu_step = gpus is not None and bool(gpus.count)
    cuda = os.environ.get(CUDA_VARIABLE, "") if gpu_step else ""
    root = None if gpu_step else _root(log_dir)
    if root is None:
        os.makedirs(log_dir, exist_ok=True)
    log_path = os.path.join(log_dir, f"{attempt.name}.{attempt.number}.log")
    return carry_out_here(
        attempt,
        _store(store_address),
        log_path=log_path,
        extra_env={CUDA_VARIABLE: cuda},
        inline_log_bytes=inline_log_bytes,
        attempt_dir=root,
    )


def run_attempt_signalled(
    attempt_json: dict[str, Any],
    store_address: dict[str, Any],
    log_dir: str,
    inline_log_bytes: int = 0,
) -> Iterator[dict[str, Any]]:
    """`run_attempt` as a streaming generator: `{"started": HOST}` as soon as the task runs,
    then how the attempt ended."""
    yield {"started": socket.gethostname()}
    yield run_attempt(attempt_json, store_address, log_dir, inline_log_bytes)


def _root(log_dir: str) -> AttemptRoot:
    """This worker's attempt directory for the run whose log directory is `log_dir` (made,
    with the log directory, on first use)."""
    if log_dir not in _roots:
        os.makedirs(log_dir, exist_ok=True)
        path = os.path.join(os.path.dirname(log_dir), "attempts", str(os.getpid()))
        _roots[log_dir] = AttemptRoot(path)
    return _roots[log_dir]


def _store(address: dict[str, Any]) -> Store:
    """The store at an address, opened once per worker process."""
    key = json.dumps(address, sort_keys=True)
    if key not in _stores:
        _stores[key] = open_store_at(address)
    return _stores[key]
