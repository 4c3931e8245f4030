"""`mlc fmt PATHS…`: rewrite specs in canonical form (the rules are in `mlc.front.format`).

Directories are searched for `*.mlspec` files (hidden directories and `[tool.mlc] exclude`
patterns are skipped). Files are rewritten atomically: the new text goes to a temporary file
in the same directory, which then replaces the original. `--check` rewrites nothing and
exits 1 listing the files that would change on stderr (for CI and pre-commit); `--diff` prints a
unified diff instead of rewriting. A file with a syntax error is never touched: its
diagnostics are printed as `mlc lint` prints them, and the exit code is 1. `-` formats
standard input to standard output.
"""

from __future__ import annotations

import argparse
import difflib
import os
import sys
import tempfile
from pathlib import Path

from mlc.cli.common import add_format_option, collect_specs, fail, print_diagnostics
from mlc.diagnostics import Diagnostic, has_errors
from mlc.source import SourceMap, spec_text


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "paths", nargs="*", default=["."], help="files or directories, or - for stdin (default: .)"
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="rewrite nothing; list the files that would change and exit 1 if any would",
    )
    parser.add_argument(
        "--diff", action="store_true", help="rewrite nothing; print a unified diff of the changes"
    )
    add_format_option(parser)


def format_text(text: str, path: str) -> tuple[str | None, list[Diagnostic]]:
    """The canonical text, or None and the syntax diagnostics when the text does not parse.
    A byte-order mark is dropped: the canonical text has none."""
    from mlc.front.format import format_module
    from mlc.front.parser import parse

    text = spec_text(text)
    result = parse(text, path)
    diagnostics = list(result.diagnostics)
    if result.module is None or has_errors(diagnostics):
        return None, diagnostics
    return format_module(result.module, text), diagnostics


def write_atomically(path: Path, text: str) -> None:
    """Replaces `path` with `text` through a temporary file in the same directory (that of
    the file a symbolic link points to, which stays a link)."""
    path = path.resolve()
    mode = path.stat().st_mode & 0o7777
    descriptor, temporary = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"
    )
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8", newline="") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _diff(before: str, after: str, path: str) -> str:
    return "".join(
        difflib.unified_diff(
            before.splitlines(keepends=True),
            after.splitlines(keepends=True),
            fromfile=f"{path} (original)",
            tofile=f"{path} (formatted)",
        )
    )


def _read(path: Path) -> str:
    with path.open(encoding="utf-8", newline="") as stream:
        return stream.read()


def run(args: argparse.Namespace) -> int:
    if args.paths == ["-"]:
        return _run_stdin(args)
    from mlc.cli.config import load_config

    files, missing = collect_specs(args.paths, load_config(Path.cwd()).exclude)
    if missing:
        return fail("no such file or directory: " + ", ".join(f"`{m}`" for m in missing))
    if not files:
        return fail("no `.mlspec` files found in " + ", ".join(f"`{p}`" for p in args.paths))
    sources = SourceMap()
    broken: list[Diagnostic] = []
    changed: list[Path] = []
    for path in files:
        display = path.as_posix()
        try:
            text = _read(path)
        except (OSError, UnicodeDecodeError) as error:
            return fail(f"cannot read `{display}`: {error}")
        sources.add(display, spec_text(text))
        formatted, diagnostics = format_text(text, display)
        if formatted is None:
            broken.extend(diagnostics)
            continue
        if formatted == text:
            continue
        changed.append(path)
        if args.diff:
            sys.stdout.write(_diff(text, formatted, display))
        elif args.check:
            print(f"would reformat {display}", file=sys.stderr)
        else:
            try:
                write_atomically(path, formatted)
            except OSError as error:
                return fail(f"cannot write `{display}`: {error.strerror or error}")
    if broken:
        print_diagnostics(broken, sources, args.format, len(files))
    _summary(len(files), len(changed), len({d.span.path for d in broken}), args)
    if broken or (args.check and changed):
        return 1
    return 0


def _summary(files: int, changed: int, broken: int, args: argparse.Namespace) -> None:
    verb = "would be reformatted" if args.check or args.diff else "reformatted"
    parts = [f"{changed} file{'s' if changed != 1 else ''} {verb}"]
    parts.append(f"{files - changed - broken} unchanged")
    if broken:
        parts.append(f"{broken} not formatted (syntax errors)")
    print(", ".join(parts), file=sys.stderr)


def _run_stdin(args: argparse.Namespace) -> int:
    text = sys.stdin.read()
    formatted, diagnostics = format_text(text, "<stdin>")
    if formatted is None:
        sources = SourceMap()
        sources.add("<stdin>", spec_text(text))
        print_diagnostics(diagnostics, sources, args.format, 1)
        return 1
    if args.diff:
        sys.stdout.write(_diff(text, formatted, "<stdin>"))
    elif not args.check:
        sys.stdout.write(formatted)
    return 1 if args.check and formatted != text else 0
