"""How the front-end tests run a spec: the `# command: mlc …` header and known gaps.

A spec in the corpus or in an explanation may start with a comment that gives the command
line reproducing it, `# command: mlc lint --target prod --param epochs=5` or
`# command: mlc compile`; without one, it is checked as `mlc lint FILE` checks it.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

from mlc.cli import backends
from mlc.compile import Options, check_paths, compile_spec
from mlc.diagnostics import Diagnostic
from mlc.source import SourceMap

COMMAND = re.compile(r"^#\s*command:\s*(?P<command>.*)$", re.MULTILINE)

# Codes the checker cannot produce yet, with the reason. Their corpus files and explanation
# examples state what the language wants and run as strict expected failures, so they turn
# red the day the checker produces the code and the entry must be removed.
KNOWN_GAPS: dict[str, str] = {}


@dataclass
class Invocation:
    """How a spec is checked: as `mlc lint` or as `mlc compile`, with these options."""

    compile: bool
    options: Options


def invocation(text: str) -> Invocation:
    """The `# command: mlc …` header of a spec, as compilation options."""
    options = Options(describe_backend=backends.describe, known_backends=backends.installed)
    match = COMMAND.search(text)
    if match is None:
        return Invocation(compile=False, options=options)
    words = shlex.split(match["command"])
    assert words[:1] == ["mlc"] and words[1:2] in (["lint"], ["compile"]), match["command"]
    arguments = iter(words[2:])
    params: dict[str, str] = {}
    for word in arguments:
        if word == "--target":
            options.target = next(arguments)
        elif word == "--pipeline":
            options.pipeline = next(arguments)
        elif word == "--param":
            name, _, value = next(arguments).partition("=")
            params[name] = value
        else:
            raise AssertionError(f"unsupported option in `# command:` header: {word}")
    options.params = params
    return Invocation(compile=words[1] == "compile", options=options)


def check(path: Path) -> tuple[list[Diagnostic], SourceMap]:
    """Runs a spec the way its `# command:` header says; returns diagnostics and sources."""
    call = invocation(path.read_text(encoding="utf-8"))
    if call.compile:
        result = compile_spec(path, options=call.options)
        return result.diagnostics, result.sources
    checked = check_paths([path], call.options)
    return checked.diagnostics, checked.sources
