"""`mlc compile SPEC --target ir`: check a spec and write its canonical IR.

The IR is byte-identical for the same spec and params. `--target NAME` also checks the
spec against that target and records it in the IR; `--output PATH` writes to a file.
`--output DIR` (an existing directory, or a path without a suffix) writes `DIR/pipeline.ir.json`
and what the target's backend adds for people to review or submit by hand (a Ray target:
the job's runtime environment and a `ray job submit` script).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlc.cli.common import (
    add_format_option,
    add_spec_options,
    fail,
    print_diagnostics,
    print_notes,
    spec_options,
)

if TYPE_CHECKING:
    from mlc.compile import CompileResult
    from mlc.ir.model import IRDocument


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "spec",
        nargs="?",
        help="the .mlspec file, or a directory holding one (not with `--emit schema`)",
    )
    add_spec_options(parser)
    parser.add_argument(
        "--emit",
        choices=("ir", "schema"),
        default="ir",
        help="what to write: the IR document (default) or the IR's JSON Schema",
    )
    parser.add_argument(
        "--output",
        "-o",
        metavar="PATH",
        help="write to this file instead of stdout; a directory (or a path without a suffix) "
        "gets DIR/pipeline.ir.json plus what the target's backend writes for review: a Ray "
        "target's runtime environment and `ray job submit` script, a Kubernetes target's RBAC "
        "and Job YAML",
    )
    add_format_option(parser)


def run(args: argparse.Namespace) -> int:
    from mlc.compile import compile_spec
    from mlc.ir.serialize import json_schema, to_json

    if args.emit == "schema":
        if args.spec is not None:
            return fail("`--emit schema` writes the IR's JSON Schema, which needs no spec")
        return _write(json_schema(), args.output)
    if args.spec is None:
        return fail("`mlc compile` needs a spec (or `--emit schema` for the IR's JSON Schema)")
    if args.target == "ir":  # `--target ir` names the output, not a spec target
        args.target = None
    from mlc.cli.spec_path import SpecPathError, find_spec

    try:
        spec = find_spec(args.spec)
    except SpecPathError as exc:
        return fail(str(exc))
    options = spec_options(args)
    if isinstance(options, str):
        return fail(options)
    result = compile_spec(spec, options=options)
    print_notes(result.notes)
    if result.diagnostics:
        print_diagnostics(
            result.diagnostics, result.sources, args.format, 1, summary=result.document is None
        )
    if result.document is None:
        return 1
    if args.output is not None and _is_directory(args.output):
        _fill_ir_cache(str(spec), args, options.params, result)
        return _write_directory(result.document, Path(args.output))
    text = to_json(result.document)
    _fill_ir_cache(str(spec), args, options.params, result, text)
    return _write(text, args.output)


def _fill_ir_cache(
    spec: str,
    args: argparse.Namespace,
    params: Mapping[str, Any],
    result: CompileResult,
    ir_text: str | None = None,
) -> None:
    """Keeps the compilation in the IR cache `mlc apply`, `plan` and `lock` read (see
    `mlc.cli.ir_cache`): applying the spec next with the same target, pipeline and params
    does not compile it again."""
    from mlc.cli import ir_cache

    if ir_cache.enabled():
        key = ir_cache.entry_key(spec, args.target, args.pipeline, params)
        ir_cache.store_compilation(key, result, ir_text)


def _is_directory(output: str) -> bool:
    path = Path(output)
    return path.is_dir() or output.endswith("/") or not path.suffix


def _write_directory(document: IRDocument, output: Path) -> int:
    """The IR, and the backend's own artifacts when it writes any."""
    from mlc.cli import backends
    from mlc.ir.serialize import to_json

    plugin = backends.load(document.target.backend) if document.target else None
    write_artifacts = getattr(plugin, "write_artifacts", None)
    if write_artifacts is None:
        return _write(to_json(document), str(output / "pipeline.ir.json"))
    try:
        written = write_artifacts(document, output)
    except (ValueError, OSError) as error:
        return fail(str(error))
    for path in written:
        print(f"wrote {path}", file=sys.stderr)
    return 0


def _write(text: str, output: str | None) -> int:
    if output is None:
        sys.stdout.write(text)
        return 0
    path = Path(output)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.tmp")
        temporary.write_text(text, encoding="utf-8")
        temporary.replace(path)
    except OSError as error:
        return fail(f"cannot write `{output}`: {error.strerror or error}")
    print(f"wrote {output}", file=sys.stderr)
    return 0
