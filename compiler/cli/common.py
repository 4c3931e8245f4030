"""Options and output shared by the commands that read specs."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from mlc.cli.params import parse_params
from mlc.diagnostics import Diagnostic
from mlc.diagnostics.render import (
    render_github,
    render_human,
    render_json,
    render_sarif,
    summary_line,
)
from mlc.source import SourceMap

if TYPE_CHECKING:
    from mlc.compile import Options


def add_spec_options(parser: argparse.ArgumentParser) -> None:
    """`--target`, `--param`, `--pipeline`."""
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


def add_format_option(parser: argparse.ArgumentParser, *, extra: Sequence[str] = ()) -> None:
    """`--format human|json|github|sarif`."""
    parser.add_argument(
        "--format",
        choices=("human", "json", "github", "sarif", *extra),
        default="human",
        help="how to print diagnostics",
    )


def spec_options(args: argparse.Namespace) -> Options | str:
    """Compilation options from the command line, or an error message."""
    from mlc.cli import backends
    from mlc.compile import Options

    params = parse_params(args.param)
    if isinstance(params, str):
        return params
    return Options(
        target=args.target,
        params=params,
        pipeline=args.pipeline,
        describe_backend=backends.describe,
        known_backends=backends.installed,
    )


def use_colour(stream: object = sys.stdout) -> bool:
    """Colour only on a terminal, and never with NO_COLOR set."""
    if os.environ.get("NO_COLOR"):
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def print_diagnostics(
    diagnostics: Sequence[Diagnostic],
    sources: SourceMap,
    output_format: str,
    files: int,
    *,
    summary: bool = True,
) -> None:
    """Prints diagnostics in the chosen format (human output goes to stderr)."""
    if output_format == "json":
        print(render_json(diagnostics, sources, files))
    elif output_format == "github":
        sys.stdout.write(render_github(diagnostics, sources))
    elif output_format == "sarif":
        print(render_sarif(diagnostics, sources))
    else:
        text = render_human(diagnostics, sources, colour=use_colour(sys.stderr))
        sys.stderr.write(text)
        if summary:
            print(summary_line(diagnostics, files), file=sys.stderr)


def worth_repeating(diagnostics: Sequence[Diagnostic]) -> list[Diagnostic]:
    """What `plan`, `apply` and `lock` print of a compilation's diagnostics: all but the
    features a target was told to ignore (W0601), which the target's author asked for and
    `mlc lint --target NAME` still lists."""
    from mlc.diagnostics import catalog as codes

    return [d for d in diagnostics if d.code != codes.IGNORED_FEATURE.code]


def print_notes(notes: Sequence[str]) -> None:
    """Plain remarks (`note: …`) on stderr, one per line."""
    for note in notes:
        print(note, file=sys.stderr)


def fail(message: str) -> int:
    """Prints a usage error (each further line indented) and returns exit code 1."""
    first, *rest = message.splitlines() or [message]
    print(f"error: {first}", file=sys.stderr)
    for line in rest:
        print(f"  {line}", file=sys.stderr)
    return 1


def collect_specs(paths: Sequence[str], exclude: Sequence[str]) -> tuple[list[Path], list[str]]:
    """The spec files named by `paths` (directories searched for `*.mlspec`, skipping hidden
    folders and the project's `exclude` patterns; a file named itself is never skipped), and
    the paths that do not exist."""
    files: list[Path] = []
    missing: list[str] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            from mlc.cli.config import is_excluded

            for found in sorted(path.rglob("*.mlspec")):
                hidden = any(
                    part.startswith(".") for part in found.parts[:-1] if part not in (".", "..")
                )
                if not hidden and not is_excluded(found, list(exclude)):
                    files.append(found)
        elif path.is_file():
            files.append(path)
        else:
            missing.append(raw)
    return files, missing
