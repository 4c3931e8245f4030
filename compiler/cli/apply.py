"""`mlc apply SPEC`: compile a spec (or read a compiled IR document) and run it on a target.

```
mlc apply SPEC [--target NAME] [--param K=V ...] [--rerun STEP|all ...] [--keep-going]
               [--locked | --update-lock] [--detach] [--store URI] [--format human|json]
```

SPEC is a `.mlspec` file, or an IR document written by `mlc compile` (`.json`). The target's
backend is found through the `mlc.backends` entry points. On a terminal the progress is a live
table redrawn in place; otherwise one line per change. The last line sums the run up. With
`--format json` only the final JSON report is printed. Exit codes: 0 succeeded, 1 failed or bad
input, 130 cancelled (Ctrl-C or SIGTERM).

This module also holds what `mlc plan` and `mlc lock` share with it: loading the document,
opening the store and finding the backend.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, redirect_stdout
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from mlc.cli.progress import format_seconds, make_progress

if TYPE_CHECKING:
    from mlc.ir.model import IRDocument
    from mlc.runtime.report import RunReport
    from mlc.store.base import Store

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_CANCELLED = 130
DEFAULT_BACKEND = "local"


class UserError(Exception):
    """Bad input: printed as `error: …`, exit code 1."""


# ---------------------------------------------------------------------- shared with plan, lock


def add_run_options(parser: argparse.ArgumentParser) -> None:
    """SPEC, `--target`, `--param`, `--pipeline`, `--rerun`, `--store`, `--format`."""
    parser.add_argument(
        "spec",
        help="the .mlspec file (or a directory holding one), or an IR document from `mlc compile`",
    )
    from mlc.cli.backends import TARGET_HELP

    parser.add_argument("--target", metavar="NAME", help=TARGET_HELP)
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="bind a pipeline param (repeatable)",
    )
    parser.add_argument("--pipeline", help="the pipeline to use when a file declares several")
    parser.add_argument(
        "--rerun",
        action="append",
        default=[],
        metavar="STEP",
        help="run STEP even if it is cached (repeatable; `all` for every step)",
    )
    from mlc.cli.data import STORE_HELP

    parser.add_argument("--store", metavar="URI", help=STORE_HELP)
    parser.add_argument(
        "--format",
        choices=("human", "json"),
        default="human",
        help="human: text to read (default); json: one document for programs",
    )


def add_lock_options(parser: argparse.ArgumentParser) -> None:
    """`--locked` and `--update-lock`: what `apply` (and, previewing it, `plan`) does with
    mlc.lock."""
    lock = parser.add_mutually_exclusive_group()
    lock.add_argument(
        "--locked",
        action="store_true",
        help="use mlc.lock as it is and fail if it lacks an entry, instead of writing it (CI)",
    )
    lock.add_argument(
        "--update-lock",
        action="store_true",
        help="resolve every dataset pinned by a tag or `latest` again, as `mlc lock` does",
    )


def load_document(args: argparse.Namespace) -> IRDocument:
    """The IR document to run: compiled from the spec, or read from an IR file.

    Diagnostics are printed to stderr; errors raise `UserError`.
    """
    from mlc.cli.spec_path import SpecPathError, find_spec

    try:
        path = find_spec(args.spec)
    except SpecPathError as exc:
        raise UserError(str(exc)) from None
    args.spec = str(path)
    if args.target is None and path.suffix != ".json":
        from mlc.cli.config import load_config

        args.target = load_config(Path.cwd()).target
    if path.suffix == ".json":
        return _read_ir(path, args)
    from mlc.cli import ir_cache
    from mlc.cli.params import parse_params

    params = parse_params(args.param)
    if isinstance(params, str):
        raise UserError(params)
    key = None
    if ir_cache.enabled():  # an unchanged spec is not compiled again (see `mlc.cli.ir_cache`)
        # Looked up before the compiler is imported: a hit needs neither it nor lark.
        key = ir_cache.entry_key(args.spec, args.target, args.pipeline, params)
        cached = ir_cache.lookup(key)
        if cached is not None:
            if cached.warnings:
                from mlc.cli.common import use_colour

                colour = "colour" if use_colour(sys.stderr) else "plain"
                sys.stderr.write(cached.warnings.get(colour, ""))
            return cached.document
    from mlc.cli.common import print_diagnostics, spec_options, worth_repeating
    from mlc.compile import compile_spec

    options = spec_options(args)
    if isinstance(options, str):
        raise UserError(options)
    result = compile_spec(path, options=options)
    shown = worth_repeating(result.diagnostics)
    sys.stderr.write("".join(f"{note}\n" for note in result.notes))
    if shown:
        print_diagnostics(shown, result.sources, "human", 1, summary=result.document is None)
    if result.document is None:
        raise UserError(f"`{args.spec}` has errors; nothing was run")
    if key is not None:
        ir_cache.store_compilation(key, result)
    return result.document


def _read_ir(path: Path, args: argparse.Namespace) -> IRDocument:
    from mlc.ir.serialize import IRVersionError, load
    from pydantic import ValidationError

    if args.param:
        raise UserError("params are bound when the IR is compiled; pass --param to `mlc compile`")
    try:
        document = load(path.read_text(encoding="utf-8"))
    except (ValueError, IRVersionError, ValidationError) as exc:
        first = str(exc).splitlines()[0]
        raise UserError(f"`{path}` is not a valid IR document: {first}") from None
    if args.target and (document.target is None or document.target.name != args.target):
        raise UserError(
            f"`{path}` was compiled for target "
            f"`{document.target.name if document.target else '(none)'}`, not `{args.target}`"
        )
    return document


def open_run_store(args: argparse.Namespace, document: IRDocument | None) -> Store:
    """The store: `--store`, else the target's, else `$MLC_STORE`, else the project's."""
    from mlc.cli.data import default_store_uri, open_store_for
    from mlc.store.errors import StoreError

    uri = args.store or (document.target.store if document and document.target else None)
    uri = uri or default_store_uri()
    try:
        return open_store_for(argparse.Namespace(store=uri), create=True)
    except StoreError as exc:
        raise UserError(str(exc)) from None


def load_backend(document: IRDocument, store: Store) -> Any:
    """An instance of the target's backend (found through the `mlc.backends` entry points)."""
    from mlc.cli import backends

    name = document.target.backend if document.target else DEFAULT_BACKEND
    plugin = backends.load(name)
    if plugin is None:
        raise UserError(
            f"backend `{name}` is not installed (installed: {', '.join(backends.installed())})"
        )
    create = getattr(plugin, "create", None)
    if create is None:
        raise UserError(
            f"backend `{name}` can check and compile pipelines but cannot run them in this "
            "version of mlc"
        )
    return create(store)


def check_rerun(document: IRDocument, names: Sequence[str]) -> None:
    """Every `--rerun` name is `all`, a step, or one item of a foreach step (`train[2]`)."""
    from mlc.runtime.invocation import invocations_of

    known = {"all"}
    for step in document.pipeline.steps:
        known.add(step.name)
        known.update(invocation.name for invocation in invocations_of(step))
    unknown = [name for name in names if name not in known]
    if unknown:
        steps = ", ".join(f"`{s.name}`" for s in document.pipeline.steps)
        raise UserError(f"--rerun names no step `{unknown[0]}` (steps: {steps}, or `all`)")


def without_target(args: argparse.Namespace, document: IRDocument, message: str) -> str:
    """A refusal, and when no target was chosen, which one ran and which the spec declares:
    a problem with backend `local`'s defaults is often one a declared target settles."""
    if document.target is not None or not args.spec.endswith(".mlspec"):
        return message
    from mlc.compile import Options, check_paths

    result = check_paths([Path(args.spec)], Options(pipeline=args.pipeline))
    declared = [t for program in result.programs[:1] for t in program.targets.values()]
    if not declared:
        return message
    listed = ", ".join(f"`{t.name}` ({t.backend})" for t in declared)
    return (
        f"{message}\nno `--target` was given, so backend `{DEFAULT_BACKEND}` is used with its "
        f"defaults; this spec declares {listed}: choose one with `--target NAME`"
    )


@contextmanager
def user_errors() -> Iterator[None]:
    """Turns the runtime's and the store's deliberate errors into `UserError`."""
    from mlc.runtime.errors import RuntimeFailure
    from mlc.store.errors import StoreError

    try:
        yield
    except (RuntimeFailure, StoreError) as exc:
        raise UserError(str(exc)) from None


def print_error(message: str) -> int:
    """`error: …` on stderr (each further line indented); returns exit code 1."""
    lines = message.splitlines() or [message]
    print(f"error: {lines[0]}", file=sys.stderr)
    for line in lines[1:]:
        print(f"  {line}", file=sys.stderr)
    return EXIT_FAILED


def summary_line(report: RunReport) -> str:
    """`run 2026…-ab12cd succeeded: 3 ran, 1 cached, 0 failed in 4.2s` (skips when any)."""
    counts = f"{report.count('ran')} ran, {report.count('cached')} cached, "
    counts += f"{report.count('failed')} failed"
    for extra in ("skipped", "cancelled"):
        if report.count(extra):
            counts += f", {report.count(extra)} {extra}"
    return f"run {report.run_id} {report.status}: {counts} in {format_seconds(report.duration_s)}"


def print_failures(report: RunReport, stream: TextIO) -> None:
    """For each failed invocation: its error and the last lines of its log."""
    for step in report.steps:
        if step.status != "failed":
            continue
        print(f"\nerror: step `{step.name}` failed: {step.error}", file=stream)
        if step.log_tail:
            print(
                f"  last lines of its log (all of it: mlc logs {report.run_id} {step.name}):",
                file=stream,
            )
            for line in step.log_tail:
                print(f"  | {line}", file=stream)


# ---------------------------------------------------------------------- the command


def configure(parser: argparse.ArgumentParser) -> None:
    """Sets up `mlc apply`."""
    add_run_options(parser)
    parser.add_argument(
        "--keep-going",
        action="store_true",
        help="after a failure, keep running the steps that do not depend on it",
    )
    add_lock_options(parser)
    parser.add_argument(
        "--detach",
        action="store_true",
        help="return once the run is submitted (targets whose runs go on without mlc apply: "
        "a Ray Jobs API address)",
    )


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM cancels the run the way Ctrl-C does."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run(args: argparse.Namespace) -> int:
    """Runs the pipeline and returns 0, 1 or 130."""
    from mlc.cli.lock import lock_before_apply

    try:
        document = load_document(args)
        check_rerun(document, args.rerun)
        store = open_run_store(args, document)
    except UserError as exc:
        return _fail(args, str(exc))
    try:
        with user_errors():
            for note in lock_before_apply(
                document, store, locked=args.locked, update=args.update_lock
            ):
                print(note, file=sys.stderr)
        backend = load_backend(document, store)
        progress = make_progress(args.format, sys.stdout)
        # stdout is mlc's (the progress, the JSON report): what a backend's libraries print
        # (Ray's notices of dead workers, say) goes to stderr.
        with sigterm_as_interrupt(), user_errors(), redirect_stdout(sys.stderr):
            try:
                options = {"detach": True} if args.detach else {}
                report = backend.apply(
                    document,
                    rerun=args.rerun,
                    keep_going=args.keep_going,
                    observer=progress,
                    **options,
                )
            finally:
                progress.close()
    except UserError as exc:
        return _fail(args, without_target(args, document, str(exc)))
    finally:
        store.close()
    return _finish(args, report)


def _fail(args: argparse.Namespace, message: str) -> int:
    if args.format == "json":
        print(
            json.dumps({"run_id": None, "status": "error", "error": message, "steps": []}, indent=2)
        )
    return print_error(message)


def json_report(document: Mapping[str, Any]) -> str:
    """A report as JSON for people and programs: one top-level field per line, and each item
    of a list of objects (a run's steps) on a line of its own. One line per step keeps a
    report of thousands of steps readable, and it is written by the C encoder, where
    `indent=2` takes the pure-Python one (a fifth of a second for 1,000 steps)."""
    fields = []
    for key, value in document.items():
        name = json.dumps(key)
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            items = ",\n".join(f"    {json.dumps(item)}" for item in value)
            fields.append(f"  {name}: [\n{items}\n  ]")
        else:
            fields.append(f"  {name}: {json.dumps(value)}")
    return "{\n" + ",\n".join(fields) + "\n}" if fields else "{}"


def _finish(args: argparse.Namespace, report: RunReport) -> int:
    if report.status == "submitted":
        if args.format == "json":
            print(json_report(report.to_json()))
        else:
            print(
                f"run {report.run_id} submitted; follow it with `mlc runs` and "
                f"`mlc logs {report.run_id} STEP` (with the target's store)"
            )
        return EXIT_OK
    if args.format == "json":
        print(json_report(report.to_json()))
    else:
        print_failures(report, sys.stderr)
        print(summary_line(report))
    if report.status == "succeeded":
        return EXIT_OK
    return EXIT_CANCELLED if report.status == "cancelled" else EXIT_FAILED
