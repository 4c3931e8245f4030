"""`mlc graph SPEC`: print the pipeline DAG as Graphviz DOT (default) or Mermaid.

The spec is compiled first (params bound with `--param`, so `foreach` counts and gate
conditions show their values); a spec with errors prints its diagnostics and exits 1.
Backends are consulted only with `--target`: drawing the graph needs none installed.
`--format svg` draws it as an SVG picture itself (`mlc.ir.render_svg`): no Graphviz needed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mlc.cli.common import add_spec_options, fail, print_diagnostics, spec_options


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("spec", help="the .mlspec file, or a directory holding one")
    parser.add_argument(
        "--format",
        choices=("dot", "mermaid", "svg"),
        default="dot",
        help="Graphviz DOT (default), a Mermaid flowchart, or an SVG picture (drawn by mlc: "
        "no Graphviz needed)",
    )
    add_spec_options(parser)
    parser.add_argument(
        "--output", "-o", metavar="PATH", help="write to this file instead of stdout"
    )


def run(args: argparse.Namespace) -> int:
    from mlc.cli.spec_path import SpecPathError, find_spec
    from mlc.compile import compile_spec
    from mlc.ir.render_graph import to_dot, to_mermaid
    from mlc.ir.render_svg import to_svg

    try:
        spec = find_spec(args.spec)
    except SpecPathError as exc:
        return fail(str(exc))
    options = spec_options(args)
    if isinstance(options, str):
        return fail(options)
    if args.target is None:
        options.describe_backend = None
    result = compile_spec(spec, options=options)
    if result.diagnostics:
        print_diagnostics(
            result.diagnostics, result.sources, "human", 1, summary=result.document is None
        )
    if result.document is None:
        return 1
    renderers = {"dot": to_dot, "mermaid": to_mermaid, "svg": to_svg}
    text = renderers[args.format](result.document)
    if args.output is None:
        sys.stdout.write(text)
        return 0
    try:
        Path(args.output).write_text(text, encoding="utf-8")
    except OSError as error:
        return fail(f"cannot write `{args.output}`: {error.strerror or error}")
    print(f"wrote {args.output}", file=sys.stderr)
    return 0
