"""`mlc lint PATHS…`: check specs and report every problem with its location.

Directories are searched for `*.mlspec` files. Rules can be selected in `mlc.toml` or in
`[tool.mlc]` of `pyproject.toml` (`select`, `ignore`, `exclude`: see `mlc.cli.config`), and
silenced on one line with a comment `# mlc: ignore[CODE, …]` (or `# mlc: ignore` for every code
on that line).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mlc.cli.common import (
    add_format_option,
    add_spec_options,
    collect_specs,
    fail,
    print_diagnostics,
    print_notes,
    spec_options,
)
from mlc.diagnostics import has_errors
from mlc.diagnostics.suppress import suppressed


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="*", default=["."], help="files or directories (default: .)")
    add_spec_options(parser)
    add_format_option(parser)
    parser.add_argument(
        "--select",
        action="append",
        default=None,
        metavar="CODE",
        help="report only these codes or prefixes (e.g. E03, W)",
    )
    parser.add_argument(
        "--ignore",
        action="append",
        default=None,
        metavar="CODE",
        help="never report these codes or prefixes",
    )
    parser.add_argument("--no-warnings", action="store_true", help="report errors only")


def _matches(code: str, patterns: list[str]) -> bool:
    return any(code.upper().startswith(p.strip().upper()) for p in patterns if p.strip())


def run(args: argparse.Namespace) -> int:
    from mlc.cli.config import load_config
    from mlc.compile import check_paths

    config = load_config(Path.cwd())
    select = args.select if args.select is not None else config.select
    ignore = (args.ignore or []) + config.ignore
    files, missing = collect_specs(args.paths, config.exclude)
    if missing:
        return fail("no such file or directory: " + ", ".join(f"`{m}`" for m in missing))
    if not files:
        return fail("no `.mlspec` files found in " + ", ".join(f"`{p}`" for p in args.paths))
    options = spec_options(args)
    if isinstance(options, str):
        return fail(options)
    result = check_paths(files, options)
    print_notes(result.notes)
    diagnostics = [
        d
        for d in result.diagnostics
        if (not select or _matches(d.code, select))
        and not _matches(d.code, ignore)
        and not (args.no_warnings and d.code.startswith("W"))
        and not suppressed(d, result.sources)
    ]
    print_diagnostics(diagnostics, result.sources, args.format, result.files)
    return 1 if has_errors(diagnostics) else 0
