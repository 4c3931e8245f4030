"""`mlc logs RUN STEP`: print the log a step execution recorded in lineage.

STEP is the step's lineage id (`step:train`, `step:train[2]`) or its bare name (`train`,
`train[2]`): whichever form the run did not record is tried as the other.

The log reference is either an object digest (the log was put into the store, as remote
backends do) or a file path; a relative path is resolved against the store's local directory.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys

from mlc.cli.data import add_store_option, fail, open_store_for
from mlc.store import StoreError, is_digest, parse_digest
from mlc.store.lineage import Lineage, LineageError, StepExecution, open_lineage

STEP_PREFIX = "step:"


def configure(parser: argparse.ArgumentParser) -> None:
    """Sets up `mlc logs`."""
    parser.add_argument("run_id", metavar="RUN")
    parser.add_argument(
        "step_id", metavar="STEP", help="the step: `train`, `step:train` or `train[2]`"
    )
    add_store_option(parser)


def find_step(lineage: Lineage, run_id: str, step_id: str) -> StepExecution:
    """The step execution by lineage id or bare name (`train` finds `step:train`, and the
    other way round); the error names the form that was typed."""
    try:
        return lineage.get_step(run_id, step_id)
    except LineageError:
        if step_id.startswith(STEP_PREFIX):
            other = step_id.removeprefix(STEP_PREFIX)
        else:
            other = STEP_PREFIX + step_id
        try:
            return lineage.get_step(run_id, other)
        except LineageError:
            pass
        raise


def run(args: argparse.Namespace) -> int:
    """Copies the step's log to stdout."""
    try:
        store = open_store_for(args)
        try:
            lineage = open_lineage(store)
            try:
                lineage.sync()
                step = find_step(lineage, lineage.find_run(args.run_id).run_id, args.step_id)
            finally:
                lineage.close()
            reference = step.log_ref
            if not reference:
                return fail(f"step `{step.step_id}` of run `{step.run_id}` recorded no log")
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
        finally:
            store.close()
    except StoreError as exc:
        return fail(str(exc))
    sys.stdout.flush()
    return 0
