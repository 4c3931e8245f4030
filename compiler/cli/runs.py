"""`mlc runs`: list recorded runs (newest first), or show one run with its steps.

```
mlc runs [--limit N] [--pipeline NAME] [--format json]
mlc runs show RUN [--format json]      RUN is a run id or a unique prefix of one
```
"""

from __future__ import annotations

import argparse

from mlc.checks.suggest import did_you_mean
from mlc.cli.data import add_format_option, add_store_option, fail, open_store_for, print_json
from mlc.cli.step_order import dag_order
from mlc.store import StoreError
from mlc.store.display import format_duration, format_time, render_table, short_digest
from mlc.store.leases import as_seen_now
from mlc.store.lineage import Lineage, Run, StepExecution, open_lineage


def configure(parser: argparse.ArgumentParser) -> None:
    """Sets up `mlc runs` and `mlc runs show`."""
    parser.add_argument(
        "action",
        nargs="?",
        choices=("list", "show"),
        default="list",
        help="list the runs, newest first (default), or show one with its steps",
    )
    parser.add_argument(
        "run_id", nargs="?", metavar="RUN", help="for `show`: a run id, or a unique prefix of one"
    )
    parser.add_argument("--limit", type=int, default=20, help="how many runs to list (20)")
    parser.add_argument("--pipeline", help="only runs of this pipeline")
    add_store_option(parser)
    add_format_option(parser)


def run(args: argparse.Namespace) -> int:
    """Lists runs or shows one."""
    if args.action == "show" and not args.run_id:
        return fail("`mlc runs show` needs a run id (see `mlc runs`)")
    if args.action == "list" and args.run_id:
        return fail(f"unexpected argument `{args.run_id}`; did you mean `mlc runs show`?")
    try:
        store = open_store_for(args)
        try:
            lineage = open_lineage(store)
            try:
                lineage.sync()
                if args.action == "show":
                    return _show(lineage, args)
                return _list(lineage, args)
            finally:
                lineage.close()
        finally:
            store.close()
    except StoreError as exc:
        return fail(str(exc))


def _commit(run: Run) -> str:
    if not run.git_commit:
        return "-"
    return run.git_commit[:10] + ("+dirty" if run.git_dirty else "")


def _list(lineage: Lineage, args: argparse.Namespace) -> int:
    runs = as_seen_now(lineage.store, lineage.list_runs(args.limit, args.pipeline))
    if not runs and args.pipeline:
        known = sorted({r.pipeline for r in lineage.list_runs(None)})
        if args.pipeline not in known:
            listed = ", ".join(f"`{p}`" for p in known) or "none yet"
            hint = did_you_mean(args.pipeline, known)
            return fail(
                f"no runs of a pipeline `{args.pipeline}`"
                + (f"; {hint}" if hint else "")
                + f" (pipelines with runs: {listed})"
            )
    if args.format == "json":
        print_json([r.to_json() for r in runs])
        return 0
    if not runs:
        print("no runs recorded yet")
        return 0
    rows = [
        [
            r.run_id,
            r.pipeline,
            r.target or "-",
            r.backend or "-",
            r.status,
            format_time(r.started_at),
            format_duration(r.started_at, r.ended_at),
            _commit(r),
        ]
        for r in runs
    ]
    for line in render_table(
        ["RUN", "PIPELINE", "TARGET", "BACKEND", "STATUS", "STARTED", "DURATION", "COMMIT"], rows
    ):
        print(line)
    return 0


def _exit(step: StepExecution) -> str:
    """The command's exit code; a step that failed after its command succeeded says so, since
    `0` next to `failed` reads as a contradiction (its cause is printed below the table)."""
    if step.exit_code is None:
        return "-"
    if step.exit_code == 0 and step.status == "failed":
        return "0 (then failed)"
    return str(step.exit_code)


def _outputs(step: StepExecution) -> str:
    return ", ".join(f"{n}={short_digest(o.digest)}" for n, o in step.outputs.items()) or "-"


def _show(lineage: Lineage, args: argparse.Namespace) -> int:
    (run,) = as_seen_now(lineage.store, [lineage.find_run(args.run_id)])
    steps = dag_order(lineage.steps_of(run.run_id))
    if args.format == "json":
        print_json({**run.to_json(), "steps": [s.to_json() for s in steps]})
        return 0
    facts = [
        ("run", run.run_id),
        ("pipeline", run.pipeline),
        ("spec", run.spec_path or "-"),
        ("target", run.target or "-"),
        ("backend", run.backend or "-"),
        ("status", run.status),
        ("started", format_time(run.started_at)),
        ("ended", format_time(run.ended_at)),
        ("duration", format_duration(run.started_at, run.ended_at)),
        ("host", f"{run.host or '-'} (user {run.user or '-'})"),
        ("commit", _commit(run)),
        ("params", ", ".join(f"{k}={v!r}" for k, v in sorted(run.params.items())) or "-"),
    ]
    for name, value in facts:
        print(f"{name + ':':<10}{value}")
    if not steps:
        print("\nno step executions recorded")
        return 0
    print()
    rows = [
        [
            s.name,
            s.status,
            str(s.attempts),
            _exit(s),
            format_duration(s.started_at, s.ended_at),
            _outputs(s),
        ]
        for s in steps
    ]
    for line in render_table(["STEP", "STATUS", "ATTEMPTS", "EXIT", "DURATION", "OUTPUTS"], rows):
        print(line)
    causes = [s for s in steps if s.status in ("failed", "cancelled") and s.error]
    if causes:
        print()
        for step in causes:
            print(f"{step.name} {step.status}: {step.error}")
    return 0
