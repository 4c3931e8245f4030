"""`mlc graph SPEC`: print the pipeline DAG as Graphviz DOT (default) or Mermaid.

The spec is compiled first (params bound with `--param`, so `foreach` counts and gate
conditions show their values); a spec with errors prints its diagnostics and exits 1.
Backends are consulted only with `--target`: drawing the graph needs none installed.
`--format svg` has Graphviz's `dot` draw it (and says so plainly when `dot` is missing).
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
        help="Graphviz DOT (default), a Mermaid flowchart, or an SVG picture (drawn by "
        "Graphviz's `dot`, which must be installed)",
    )
    add_spec_options(parser)
    parser.add_argument(
        "--output", "-o", metavar="PATH", help="write to this file instead of stdout"
    )


def _svg(dot_text: str) -> str | None:
    """The DOT text drawn as SVG by Graphviz, or None when `dot` is not installed."""
    import shutil
    import subprocess

    executable = shutil.which("dot")
    if executable is None:
        return None
    drawn = subprocess.run(
        [executable, "-Tsvg"], input=dot_text, capture_output=True, text=True, check=False
    )
    if drawn.returncode != 0:
        raise RuntimeError(f"Graphviz failed on mlc's DOT output: {drawn.stderr.strip()}")
    return drawn.stdout


def run(args: argparse.Namespace) -> int:
    from mlc.cli.spec_path import SpecPathError, find_spec
    from mlc.compile import compile_spec
    from mlc.ir.render_graph import to_dot, to_mermaid

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
    text = to_mermaid(result.document) if args.format == "mermaid" else to_dot(result.document)
    if args.format == "svg":
        svg = _svg(text)
        if svg is None:
            return fail(
                "`--format svg` draws the graph with Graphviz's `dot`, which is not on PATH: "
                "install Graphviz (`apt install graphviz`, `brew install graphviz`), or use "
                "`--format mermaid`, which GitHub and many editors draw without it"
            )
        text = svg
    if args.output is None:
        sys.stdout.write(text)
        return 0
    try:
        Path(args.output).write_text(text, encoding="utf-8")
    except OSError as error:
        return fail(f"cannot write `{args.output}`: {error.strerror or error}")
    print(f"wrote {args.output}", file=sys.stderr)
    return 0
