"""Entry point of the `mlc` command: parses arguments and dispatches to one subcommand.

Each subcommand lives in its own module under `mlc.cli` and exposes `configure(parser)` and
`run(args) -> int`. Only the module of the chosen command is imported, so `mlc --version` and
`mlc lint` never pay for the backends, the store or pydantic.
"""

from __future__ import annotations

import argparse
import difflib
import gc
import importlib
import re
import sys
from collections.abc import Sequence
from typing import NoReturn, Protocol

from mlc import __version__

EXIT_OK = 0
EXIT_USER_ERROR = 1
EXIT_INTERNAL_ERROR = 2
EXIT_USAGE = EXIT_USER_ERROR
"""Bad arguments are the user's to fix, like a bad spec: never the internal-error code."""

# name -> (module under mlc.cli, one-line help). Order is the order shown in `mlc --help`.
COMMANDS: dict[str, tuple[str, str]] = {
    "lint": ("lint", "check specs and report every problem with its location"),
    "compile": ("compile", "compile a spec to the IR or to a target's artifacts"),
    "graph": ("graph", "print the pipeline DAG as DOT, Mermaid or SVG"),
    "fmt": ("fmt", "format specs canonically"),
    "explain": ("explain", "explain a diagnostic code with a bad and a good example"),
    "plan": ("plan", "show which steps are cached and why the others will run"),
    "apply": ("apply", "run a pipeline on a target"),
    "runs": ("runs", "list runs, or show one"),
    "logs": ("logs", "print the log of a step of a run"),
    "lineage": ("lineage", "show the provenance tree of an output"),
    "data": ("data", "snapshot data into the store"),
    "lock": ("lock", "resolve moving dataset references into mlc.lock"),
    "gc": ("gc", "remove store objects no root refers to"),
}


class Command(Protocol):
    """What a subcommand module provides."""

    def configure(self, parser: argparse.ArgumentParser) -> None: ...

    def run(self, args: argparse.Namespace) -> int: ...


def _load(name: str) -> Command:
    module, _ = COMMANDS[name]
    loaded: Command = importlib.import_module(f"mlc.cli.{module}")
    return loaded


class UsageParser(argparse.ArgumentParser):
    """An argument parser whose errors exit with `EXIT_USAGE` and point at `--help`."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        typo = re.search(r"invalid choice: '([^']*)'", message)
        if typo and self.prog == "mlc":
            match = difflib.get_close_matches(typo.group(1), list(COMMANDS), n=1)
            if match:
                message += f"; did you mean `{match[0]}`?"
        self.exit(
            EXIT_USAGE,
            f"{self.prog}: error: {message}\n(`{self.prog} --help` lists every option)\n",
        )


def build_parser(argv: Sequence[str]) -> argparse.ArgumentParser:
    """The top-level parser; only the subcommand named in `argv` is configured in full."""
    parser = UsageParser(prog="mlc", description="Compile and run typed ML-pipeline specs.")
    parser.add_argument("--version", action="version", version=f"mlc {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    chosen = _command_position(argv)
    for name, (_, help_text) in COMMANDS.items():
        command_parser = sub.add_parser(name, help=help_text, description=help_text)
        if chosen is not None and name == argv[chosen]:
            _load(name).configure(command_parser)
    return parser


def _command_position(argv: Sequence[str]) -> int | None:
    """Where the command's name is: the first argument that names one."""
    return next((i for i, a in enumerate(argv) if a in COMMANDS), None)


def parse_arguments(argv: Sequence[str]) -> argparse.Namespace:
    """The parsed command line. Options may come anywhere: before the command's name, between
    its positionals, or after them (`mlc --store S runs show RUN`, `mlc runs show --store S
    RUN`); argparse alone stops at the first option after an optional positional."""
    parser = build_parser(argv)
    position = _command_position(argv)
    before = list(argv[:position]) if position is not None else []
    if position is None or any(a in ("-h", "--help", "--version") for a in before):
        return parser.parse_args(argv)
    name = argv[position]
    command_parser = UsageParser(prog=f"mlc {name}", description=COMMANDS[name][1])
    _load(name).configure(command_parser)
    rest = [*before, *argv[position + 1 :]]
    actions = _actions_of(command_parser)
    if actions:  # a command with actions of its own (`mlc data add`): options follow the action
        at = next((i for i, a in enumerate(rest) if a in actions), None)
        if at is not None:
            rest = [rest[at], *rest[:at], *rest[at + 1 :]]
        args = command_parser.parse_args(rest)
    else:
        args = command_parser.parse_intermixed_args(rest)
    args.command = name
    return args


def _actions_of(parser: argparse.ArgumentParser) -> set[str]:
    """The names of a command's own sub-commands (`add`, `verify` of `mlc data`)."""
    return {
        name
        for action in parser._actions
        if isinstance(action, argparse._SubParsersAction)
        for name in action.choices
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Runs one command and returns its exit code; internal errors become exit code 2."""
    # Compiling a large spec allocates millions of small objects that live until the end. With
    # the default thresholds the collector rescans all of them again and again, which made a
    # 10,000-step spec take 21 s instead of 9 s. mlc creates few reference cycles, so full
    # collections can be rare.
    gc.set_threshold(200_000, 30, 30)
    arguments = list(sys.argv[1:] if argv is None else argv)
    args = parse_arguments(arguments)
    if args.command is None:
        build_parser(arguments).print_help()
        return EXIT_USAGE
    try:
        return _load(args.command).run(args)
    except KeyboardInterrupt:
        print("mlc: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_OK
    except Exception as exc:
        from mlc.cli.crash import report_internal_error

        return report_internal_error(exc)


def entry() -> None:
    """Console-script entry point."""
    sys.exit(main())
