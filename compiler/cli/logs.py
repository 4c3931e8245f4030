"""`mlc logs RUN STEP`: print the log a step execution recorded in lineage.

STEP is the step's name (`train`, `train[2]` for an item of a `foreach`) or its lineage id
(`step:train`); see `mlc.cli.step_lookup`.

The log reference is either an object digest (the log was put into the store, as remote
backends do) or a file path; a relative path is resolved against the store's local directory.
A step of a run that is still going has no log recorded yet: its backend is asked for the log
so far (the local backend reads it from the worker running the step). With `-f`, a step that
has not started is waited for (until the run ends, or is seen interrupted), then followed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time

from mlc.cli.data import add_store_option, fail, open_store_for
from mlc.cli.step_lookup import find_step
from mlc.store import StoreError, is_digest, parse_digest
from mlc.store.base import Store
from mlc.store.leases import as_seen_now
from mlc.store.lineage import (
    Lineage,
    LineageError,
    Run,
    StepExecution,
    open_lineage,
    step_name,
)

WAIT_SECONDS = 0.5
"""How often `mlc logs -f` looks again for a step that has not started."""


def configure(parser: argparse.ArgumentParser) -> None:
    """Sets up `mlc logs`."""
    parser.add_argument("run_id", metavar="RUN", help="a run id, or a unique prefix of one")
    parser.add_argument(
        "step_id", metavar="STEP", help="the step: `train`, `step:train` or `train[2]`"
    )
    parser.add_argument(
        "-f",
        "--follow",
        action="store_true",
        help="keep printing what the step logs until it ends (for a step not started yet: "
        "wait for it to start first)",
    )
    add_store_option(parser)


def _print_live_log(store: Store, run: Run, step_id: str, *, follow: bool) -> bool:
    """Prints the log of a step of a run that is still going, from the run's backend (a
    plugin may offer `live_log(store, run_id, invocation, ended=…)`); False when there is
    none. Following, it keeps printing until the step is recorded as ended."""
    if run.status != "running" or not run.backend:
        return False
    from mlc.cli import backends

    live_log = getattr(backends.load(run.backend), "live_log", None)
    if live_log is None:
        return False

    def ended() -> bool:
        if not follow:
            return True
        lineage = open_lineage(store)
        try:
            lineage.sync()
            find_step(lineage, run.run_id, step_id)
            return True
        except LineageError:
            return False
        finally:
            lineage.close()

    printed = False
    for chunk in live_log(store, run.run_id, step_name(step_id), ended=ended):
        if not printed:
            state = "following it until it ends" if follow else "this is its log so far"
            print(f"note: `{step_name(step_id)}` is still running; {state}", file=sys.stderr)
            printed = True
        sys.stdout.buffer.write(chunk)
        sys.stdout.flush()
    return printed


def _not_yet(run: Run, name: str) -> str:
    """Why a step of a run still going has no log: it has not started (a backend with live
    logs would have shown one), or it has not ended."""
    from mlc.cli import backends

    live = getattr(backends.load(run.backend), "live_log", None) if run.backend else None
    state = "has not started yet" if live is not None else "has not started or not ended yet"
    return (
        f"`{name}` of run `{run.run_id}` {state} (the run is still going): "
        f"`mlc logs -f {run.run_id} {name}` follows it once it runs"
    )


def _maker_of(lineage: Lineage, cached: StepExecution) -> StepExecution:
    """For a cache hit, which ran nothing: the execution that made its outputs (announced on
    stderr), or the hit itself when lineage does not know it."""
    for output in cached.outputs.values():
        for producer, _ in lineage.producers_of(output.digest):
            if producer.status == "ran" and producer.log_ref:
                print(
                    f"note: `{cached.name}` was cached in run `{cached.run_id}`; this is the log "
                    f"of run `{producer.run_id}`, which made its output "
                    f"(`mlc logs {producer.run_id} {producer.name}`)",
                    file=sys.stderr,
                )
                return producer
    return cached


def _lookup(store: Store, run_id: str, typed: str) -> tuple[Run, StepExecution | None, str]:
    """The run, its execution of the step (the one that made its output, for a cache hit) or
    None when it recorded none, and why not."""
    lineage = open_lineage(store)
    try:
        lineage.sync()
        run_record = lineage.find_run(run_id)
        try:
            step = find_step(lineage, run_record.run_id, typed)
        except LineageError as missing:
            return run_record, None, str(missing)
        if step.status == "cached" and not step.log_ref:
            step = _maker_of(lineage, step)
        return run_record, step, ""
    finally:
        lineage.close()


def _wait_to_start(store: Store, run_id: str, typed: str) -> tuple[Run, StepExecution | None, str]:
    """For `-f` on a step of a running run that has not started: waits until it has (its
    backend shows its log, or lineage records it) or the run is no longer going; then what
    `_lookup` finds (the run as seen now: `interrupted` if its coordinator is gone)."""
    announced = False
    while True:
        run_record, step, not_found = _lookup(store, run_id, typed)
        if step is not None or run_record.status != "running":
            return run_record, step, not_found
        (seen,) = as_seen_now(store, [run_record])
        if seen.status != "running":
            return seen, None, not_found
        if not announced:
            print(
                f"note: `{step_name(typed)}` of run `{run_record.run_id}` has not started yet; "
                "waiting for it to start, then following it (Ctrl-C to stop)",
                file=sys.stderr,
                flush=True,
            )
            announced = True
        if _print_live_log(store, run_record, typed, follow=True):
            return run_record, None, ""
        time.sleep(WAIT_SECONDS)


def run(args: argparse.Namespace) -> int:
    """Copies the step's log to stdout."""
    try:
        store = open_store_for(args)
        try:
            return _print_log(store, args.run_id, args.step_id, follow=args.follow)
        finally:
            store.close()
    except StoreError as exc:
        return fail(str(exc))


def _print_log(store: Store, run_id: str, typed: str, *, follow: bool) -> int:
    run_record, step, not_found = _lookup(store, run_id, typed)
    if step is None and run_record.status == "running":
        if _print_live_log(store, run_record, typed, follow=follow):
            return 0
        (run_record,) = as_seen_now(store, [run_record])
        if run_record.status == "running" and not follow:
            return fail(_not_yet(run_record, step_name(typed)))
        if run_record.status == "running":
            run_record, step, not_found = _wait_to_start(store, run_record.run_id, typed)
            if step is None and not not_found:
                return 0  # followed live until it ended
        if step is None and run_record.status == "interrupted":
            return fail(
                f"run `{run_record.run_id}` recorded no `{step_name(typed)}`: the run was "
                "interrupted before it ended (its `mlc apply` is gone; see `mlc runs show "
                f"{run_record.run_id}`)"
            )
    if step is None or not step.log_ref:
        # A step still running is recorded when it ends: its backend may show the log so far
        # (and, following, what it adds until it ends).
        if _print_live_log(store, run_record, typed, follow=follow):
            return 0
        if step is None:
            return fail(not_found)
        return fail(f"step `{step.name}` of run `{step.run_id}` recorded no log")
    reference = step.log_ref
    if is_digest(reference):
        with store.open_bytes(parse_digest(reference)) as handle:
            shutil.copyfileobj(handle, sys.stdout.buffer)
    else:
        path = os.path.join(store.local_dir, reference)
        try:
            with open(path, "rb") as handle:
                shutil.copyfileobj(handle, sys.stdout.buffer)
        except OSError as exc:
            return fail(f"cannot read the log {path}: {exc.strerror}")
    sys.stdout.flush()
    return 0
