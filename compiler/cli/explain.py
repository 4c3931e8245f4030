"""`mlc explain CODE`: the long explanation of a diagnostic code, with a bad and a good example.

Explanations are Markdown files shipped with the package, one per code, in
`mlc/diagnostics/explanations/<CODE>.md`. `mlc explain --list` prints every code of the
catalog with its one-line message template.
"""

from __future__ import annotations

import argparse
import sys
from importlib import resources

from mlc.diagnostics.catalog import CATALOG, Code, lookup

EXIT_OK = 0
EXIT_USER_ERROR = 1


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("code", nargs="?", help="a diagnostic code, such as E0301")
    parser.add_argument(
        "--list", action="store_true", help="list every code with its one-line message"
    )


def explanation(code: str) -> str | None:
    """The Markdown explanation of a code, or None when none is shipped."""
    path = resources.files("mlc.diagnostics").joinpath("explanations", f"{code}.md")
    try:
        return path.read_text(encoding="utf-8")
    except (FileNotFoundError, NotADirectoryError):
        return None


def shown_template(entry: Code) -> str:
    """The message template as users read it: `{name}` fields kept, `{{` shown as `{`."""
    template: str = entry.template
    return template.replace("{{", "{").replace("}}", "}")


def _heading(entry: Code) -> str:
    return f"{entry.severity.value}[{entry.code}]: {shown_template(entry)}"


def run(args: argparse.Namespace) -> int:
    if args.list:
        width = max(len(code) for code in CATALOG)
        for code, listed in CATALOG.items():
            print(f"{code:<{width}}  {listed.severity.value:<7}  {shown_template(listed)}")
        return EXIT_OK
    if not args.code:
        print("error: give a code, such as `mlc explain E0301`, or use --list", file=sys.stderr)
        return EXIT_USER_ERROR
    entry = lookup(args.code.strip())
    if entry is None:
        print(f"error: unknown diagnostic code `{args.code}`", file=sys.stderr)
        suggestion = _closest_code(args.code.strip().upper())
        if suggestion:
            print(f"help: did you mean `{suggestion}`?", file=sys.stderr)
        print("help: `mlc explain --list` lists every code", file=sys.stderr)
        return EXIT_USER_ERROR
    print(_heading(entry))
    print()
    text = explanation(entry.code)
    print(text.rstrip() if text else "No long explanation is written for this code yet.")
    return EXIT_OK


def _closest_code(code: str) -> str | None:
    """The catalog code a typo most likely meant: same letter and most digits in place."""
    from mlc.checks.suggest import closest

    found: str | None = closest(code, CATALOG)
    if found is not None:
        return found
    digits = "".join(c for c in code if c.isdigit())
    if not digits:
        return None
    for letter in ("E", "W"):
        padded = f"{letter}{digits.zfill(4)}"
        if padded in CATALOG:
            return padded
    return None
