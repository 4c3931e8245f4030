"""`mlc apply SPEC`: compile a spec (or read a compiled IR document) and run it on a target.

```
mlc apply SPEC [--target NAME] [--param K=V ...] [--rerun STEP|all ...] [--keep-going]
               [--store URI] [--format human|json]
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
import os
import signal
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from mlc.ir.model import IRDocument
    from mlc.runtime.report import RunReport, UnitUpdate
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
    parser.add_argument("spec", help="the .mlspec file, or an IR document from `mlc compile`")
    parser.add_argument("--target", help="the target to run on (its backend and settings)")
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
    parser.add_argument(
        "--store",
        metavar="URI",
        help="store path or URI (default: the target's store, $MLC_STORE, or .mlc)",
    )
    parser.add_argument("--format", choices=("human", "json"), default="human")


def load_document(args: argparse.Namespace) -> IRDocument:
    """The IR document to run: compiled from the spec, or read from an IR file.

    Diagnostics are printed to stderr; errors raise `UserError`.
    """
    path = Path(args.spec)
    if not path.is_file():
        raise UserError(f"no such file: `{args.spec}`")
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
            return cached
    from mlc.cli.common import print_diagnostics, spec_options
    from mlc.compile import compile_spec

    options = spec_options(args)
    if isinstance(options, str):
        raise UserError(options)
    result = compile_spec(path, options=options)
    if result.diagnostics:
        print_diagnostics(
            result.diagnostics, result.sources, "human", 1, summary=result.document is None
        )
    if result.document is None:
        raise UserError(f"`{args.spec}` has errors; nothing was run")
    if key is not None and not result.diagnostics:
        ir_cache.store(key, result.document, result.sources)
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
    """The store: `--store`, else the target's, else `$MLC_STORE`, else `.mlc`."""
    from mlc.cli.data import ENV_STORE, open_store_for
    from mlc.store.errors import StoreError

    uri = args.store or (document.target.store if document and document.target else None)
    uri = uri or os.environ.get(ENV_STORE) or ".mlc"
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


# ---------------------------------------------------------------------- progress


def format_seconds(seconds: float | None) -> str:
    """`0.4s`, `12.3s`, `4m05s`, `1h02m`."""
    if seconds is None:
        return ""
    if seconds < 60:
        return f"{seconds:.1f}s"
    if seconds < 3600:
        return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"
    return f"{int(seconds // 3600)}h{int(seconds % 3600 // 60):02d}m"


_SYMBOLS = {
    "pending": "·",
    "waiting": "…",
    "running": "▸",
    "ran": "✓",
    "cached": "≡",
    "failed": "✗",
    "skipped": "-",
    "cancelled": "✗",
}
_COLOURS = {
    "ran": "32",
    "cached": "36",
    "failed": "31",
    "cancelled": "31",
    "running": "33",
    "skipped": "2",
    "pending": "2",
    "waiting": "2",
}


class PlainProgress:
    """One line per change, for logs and CI."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def run_started(self, run_id: str, pipeline: str, units: Sequence[str]) -> None:
        """Prints the run's id."""
        self._print(f"run {run_id}: pipeline {pipeline}, {len(units)} steps")

    def unit_changed(self, update: UnitUpdate) -> None:
        """Prints the change (pending and waiting are shown only with a reason)."""
        status, detail = update.status, update.detail
        if status == "pending":
            return
        if status == "waiting":
            if detail:
                self._print(f"{update.name}: will run because {detail}")
            return
        text = f"{update.name}: {status}"
        if status in ("ran", "failed", "cancelled") and update.elapsed_s is not None:
            text += f" in {format_seconds(update.elapsed_s)}"
        if detail:
            text += f" ({detail})"
        self._print(text)

    def warning(self, text: str) -> None:
        """Prints a warning."""
        self._print(f"warning: {text}")

    def tick(self) -> None:
        """Nothing to redraw."""

    def close(self) -> None:
        """Nothing to tidy."""

    def _print(self, text: str) -> None:
        print(text, file=self.stream, flush=True)


class LiveProgress:
    """A table of the run's invocations, redrawn in place on a terminal (compact when there
    are more invocations than the terminal has lines)."""

    def __init__(self, stream: TextIO, *, colour: bool) -> None:
        self.stream = stream
        self.colour = colour
        self.order: list[str] = []
        self.state: dict[str, UnitUpdate] = {}
        self.started: dict[str, float] = {}
        self.drawn = 0
        self.last_draw = 0.0
        self.header = ""

    def run_started(self, run_id: str, pipeline: str, units: Sequence[str]) -> None:
        """Shows every invocation as pending."""
        from mlc.runtime.report import UnitUpdate

        self.header = f"run {run_id}: pipeline {pipeline}"
        self.order = list(units)
        self.state = {name: UnitUpdate(name, "pending") for name in units}
        self._draw(force=True)

    def unit_changed(self, update: UnitUpdate) -> None:
        """Updates one row."""
        if update.status == "running" and update.name not in self.started:
            self.started[update.name] = time.monotonic() - (update.elapsed_s or 0.0)
        self.state[update.name] = update
        self._draw(force=True)

    def warning(self, text: str) -> None:
        """Prints a warning above the table."""
        self._erase()
        print(f"warning: {text}", file=self.stream)
        self._draw(force=True)

    def tick(self) -> None:
        """Refreshes elapsed times."""
        self._draw(force=False)

    def close(self) -> None:
        """Leaves the final table on screen."""
        self._draw(force=True)

    def _rows(self) -> list[str]:
        rows = [self.header]
        width = max((len(name) for name in self.order), default=4)
        try:
            height = os.get_terminal_size(self.stream.fileno()).lines
        except (OSError, ValueError):
            height = 40
        if len(self.order) + 3 > height:
            return [*rows, self._compact()]
        for name in self.order:
            update = self.state[name]
            rows.append(self._row(update, width))
        return rows

    def _row(self, update: UnitUpdate, width: int) -> str:
        status = update.status
        elapsed = update.elapsed_s
        if status == "running" and update.name in self.started:
            elapsed = time.monotonic() - self.started[update.name]
        text = f"  {_SYMBOLS.get(status, '?')} {update.name:<{width}}  {status:<9}"
        if status in ("running", "ran", "failed", "cancelled"):
            text += f" {format_seconds(elapsed):>7}"
        if update.detail and status not in ("pending", "ran", "cached"):
            text += f"  {update.detail}"
        try:
            columns = os.get_terminal_size(self.stream.fileno()).columns
        except (OSError, ValueError):
            columns = 120
        text = text[: max(20, columns - 1)]
        return f"\x1b[{_COLOURS.get(status, '0')}m{text}\x1b[0m" if self.colour else text

    def _compact(self) -> str:
        counts: dict[str, int] = {}
        for update in self.state.values():
            counts[update.status] = counts.get(update.status, 0) + 1
        running = [n for n in self.order if self.state[n].status == "running"]
        text = ", ".join(f"{counts[s]} {s}" for s in _SYMBOLS if counts.get(s))
        if running:
            text += " — running: " + ", ".join(running[:4]) + (" …" if len(running) > 4 else "")
        return f"  {text}"

    def _erase(self) -> None:
        if self.drawn:
            self.stream.write(f"\x1b[{self.drawn}F\x1b[J")
            self.drawn = 0

    def _draw(self, *, force: bool) -> None:
        now = time.monotonic()
        if not force and now - self.last_draw < 0.1:
            return
        self.last_draw = now
        rows = self._rows()
        self._erase()
        self.stream.write("\n".join(rows) + "\n")
        self.stream.flush()
        self.drawn = len(rows)


class QuietProgress:
    """Shows nothing (for `--format json`); warnings still go to stderr."""

    def run_started(self, run_id: str, pipeline: str, units: Sequence[str]) -> None:
        """Nothing."""

    def unit_changed(self, update: UnitUpdate) -> None:
        """Nothing."""

    def warning(self, text: str) -> None:
        """Warnings go to stderr."""
        print(f"warning: {text}", file=sys.stderr)

    def tick(self) -> None:
        """Nothing."""

    def close(self) -> None:
        """Nothing."""


def make_progress(
    output_format: str, stream: TextIO
) -> PlainProgress | LiveProgress | QuietProgress:
    """The display for the format and the stream (live on a terminal)."""
    if output_format == "json":
        return QuietProgress()
    from mlc.cli.common import use_colour

    isatty = getattr(stream, "isatty", None)
    if isatty is not None and isatty() and os.environ.get("TERM") != "dumb":
        return LiveProgress(stream, colour=use_colour(stream))
    return PlainProgress(stream)


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
                f"  last lines of its log (all of it: mlc logs {report.run_id} step:{step.name}):",
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
    try:
        document = load_document(args)
        check_rerun(document, args.rerun)
        store = open_run_store(args, document)
    except UserError as exc:
        return _fail(args, str(exc))
    try:
        backend = load_backend(document, store)
        progress = make_progress(args.format, sys.stdout)
        with sigterm_as_interrupt(), user_errors():
            try:
                report = backend.apply(
                    document,
                    rerun=args.rerun,
                    keep_going=args.keep_going,
                    observer=progress,
                )
            finally:
                progress.close()
    except UserError as exc:
        return _fail(args, str(exc))
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
    if args.format == "json":
        print(json_report(report.to_json()))
    else:
        print_failures(report, sys.stderr)
        print(summary_line(report))
    if report.status == "succeeded":
        return EXIT_OK
    return EXIT_CANCELLED if report.status == "cancelled" else EXIT_FAILED
