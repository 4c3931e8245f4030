"""`mlc plan SPEC`: for every step, "cached" or "will run because …", without running anything.

```
mlc plan SPEC [--target NAME] [--param K=V ...] [--rerun STEP|all ...] [--store URI]
              [--locked | --update-lock] [--format human|json]
```

Takes the same options as `mlc apply`. Each miss is explained against the last successful
execution of the step in lineage: which input, param or code changed, with the old and the new
digest or value. A plan writes nothing: what `apply` would write into `mlc.lock` first (an
entry it lacks for a dataset at `latest` or a tag) is resolved the same way, used for the plan
and said (`mlc.lock: `mlc apply` will add …`); with `--locked` the plan is refused as the run
would be. Exit code 0, or 1 for bad input.
"""

from __future__ import annotations

import argparse
import sys
from contextlib import nullcontext
from typing import TYPE_CHECKING

from mlc.cli.apply import (
    UserError,
    add_lock_options,
    add_run_options,
    check_rerun,
    json_report,
    load_backend,
    load_document,
    open_run_store,
    print_error,
    user_errors,
    without_target,
)

if TYPE_CHECKING:
    from mlc.cli.lock import LockWrite
    from mlc.runtime.plan import Plan

_ACTION_WORDS = {"cached": "cached", "run": "will run", "skip": "skipped"}


def configure(parser: argparse.ArgumentParser) -> None:
    """Sets up `mlc plan`."""
    add_run_options(parser)
    add_lock_options(parser)


def render_plan(plan: Plan, lock: LockWrite | None = None) -> list[str]:
    """The human-readable plan, one line per invocation, what `apply` will write into
    mlc.lock, and a summary."""
    lines = [f"plan for pipeline {plan.pipeline}:"]
    width = max((len(entry.name) for entry in plan.entries), default=4)
    for entry in plan.entries:
        word = _ACTION_WORDS[entry.action]
        text = f"  {entry.name:<{width}}  {word:<8}"
        if entry.action == "cached" and entry.cached_from:
            text += f"  from run {entry.cached_from}"
        elif entry.reasons:
            text += "  because " + "; ".join(entry.reasons)
        lines.append(text.rstrip())
    for warning in plan.warnings:
        lines.append(f"warning: {warning}")
    if lock is not None:
        lines += lock.notes(done=False)
    lines.append(
        f"{plan.count('cached')} cached, {plan.count('run')} will run, {plan.count('skip')} skipped"
    )
    return lines


def run(args: argparse.Namespace) -> int:
    """Prints the plan; 0, or 1 for bad input."""
    from mlc.cli.lock import lock_write
    from mlc.runtime.lockfile import previewed_lock

    try:
        document = load_document(args)
        check_rerun(document, args.rerun)
        store = open_run_store(args, document)
    except UserError as exc:
        return print_error(str(exc))
    try:
        with user_errors():
            lock = lock_write(document, store, locked=args.locked, update=args.update_lock)
        backend = load_backend(document, store)
        preview = previewed_lock(lock.path, lock.entries) if lock.changes else nullcontext()
        with user_errors(), preview:
            plan = backend.plan(document, rerun=args.rerun)
    except UserError as exc:
        return print_error(without_target(args, document, str(exc)))
    finally:
        store.close()
    if args.format == "json":
        print(json_report({**plan.to_json(), "lock": lock.to_json()}))
    else:
        sys.stdout.write("\n".join(render_plan(plan, lock)) + "\n")
    return 0
