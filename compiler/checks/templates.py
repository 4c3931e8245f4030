"""Jinja2 templates in `run` commands and `env` values, checked at compile time.

Every `{{ … }}` reference is parsed with Jinja2 and resolved against the names a step can
see (`params`, `inputs`, `outputs`, `run`, `step` and the `foreach` variable); an unknown
name is a diagnostic pointing at the name inside the string, not a crash at run time.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from mlc.checks.suggest import did_you_mean
from mlc.diagnostics import Diagnostic
from mlc.diagnostics import catalog as codes
from mlc.front import ast
from mlc.source import Span

_EXPRESSION = re.compile(r"\{\{(.*?)\}\}|\{%(.*?)%\}", re.S)


@lru_cache(maxsize=1)
def _environment() -> Any:
    from jinja2.sandbox import SandboxedEnvironment

    return SandboxedEnvironment()


def split_command(command: str) -> list[str]:
    """Splits a command template into argv on whitespace outside quotes and `{{ … }}`.

    Splitting happens on the template, before any value is substituted, so a param value
    with spaces or shell characters always stays one argument.
    """
    args: list[str] = []
    current: list[str] = []
    has_token = False
    index, length = 0, len(command)
    while index < length:
        char = command[index]
        if command.startswith("{{", index) or command.startswith("{%", index):
            close = command.find(
                "}}" if char == "{" and command[index + 1] == "{" else "%}", index + 2
            )
            end = length if close == -1 else close + 2
            current.append(command[index:end])
            has_token = True
            index = end
            continue
        if char in "\"'":
            close = command.find(char, index + 1)
            end = length if close == -1 else close
            current.append(command[index + 1 : end])
            has_token = True
            index = end + 1
            continue
        if char.isspace():
            if has_token:
                args.append("".join(current))
                current, has_token = [], False
            index += 1
            continue
        current.append(char)
        has_token = True
        index += 1
    if has_token:
        args.append("".join(current))
    return args


def _references(node: Any, bound: frozenset[str]) -> Iterator[tuple[str, list[str]]]:
    """Yields (root name, attribute chain) for every name a Jinja2 AST reads."""
    from jinja2 import nodes

    if isinstance(node, nodes.Getattr):
        chain: list[str] = []
        current: Any = node
        while isinstance(current, nodes.Getattr):
            chain.insert(0, current.attr)
            current = current.node
        if isinstance(current, nodes.Name):
            if current.name not in bound:
                yield current.name, chain
            return
        yield from _references(current, bound)
        return
    if isinstance(node, nodes.For):
        yield from _references(node.iter, bound)
        targets = frozenset(n.name for n in node.target.find_all(nodes.Name))
        for child in node.body + node.else_:
            yield from _references(child, bound | targets)
        return
    if isinstance(node, nodes.Name):
        if node.ctx == "load" and node.name not in bound:
            yield node.name, []
        return
    for child in node.iter_child_nodes():
        yield from _references(child, bound)


_PLAIN_REFERENCE = re.compile(r"\{\{\s*([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)\s*\}\}")


def _plain_references(text: str) -> list[tuple[str, list[str], int, int]] | None:
    """Every `{{ a.b.c }}` of a template made only of plain dotted references, with the offsets
    of each reference; None when the template uses anything else (filters, calls, `{% %}`).

    Most templates are plain references; reading them needs no Jinja2, whose import would be
    a tenth of the time of `mlc lint`. Anything else goes through Jinja2's own parser.
    """
    if "{%" in text or "{#" in text:
        return None
    found = list(_PLAIN_REFERENCE.finditer(text))
    if len(found) != text.count("{{"):
        return None
    references = []
    for match in found:
        root, *chain = match.group(1).split(".")
        references.append(
            (
                root,
                chain,
                match.start(1),
                match.start(1) + len(root + "".join(f".{part}" for part in chain[:1])),
            )
        )
    return references


@dataclass
class TemplateReads:
    """What a step's templates read: members of `params`, `inputs` and `outputs` by name, and
    the names read whole (`{{ outputs }}`, `outputs['x']`), whose members cannot be told."""

    members: dict[str, set[str]] = field(default_factory=dict)
    whole: set[str] = field(default_factory=set)

    def of(self, root: str) -> set[str]:
        """The members of `root` read (by name)."""
        return self.members.get(root, set())

    def add(self, other: TemplateReads) -> None:
        """Adds what another template reads."""
        for root, names in other.members.items():
            self.members.setdefault(root, set()).update(names)
        self.whole |= other.whole


def check_template(
    literal: ast.StrLit, names: Mapping[str, object], diagnostics: list[Diagnostic]
) -> TemplateReads:
    """Checks one string's templates; returns what they read."""
    text = literal.value
    if "{{" not in text and "{%" not in text:
        return TemplateReads()
    raw_offset = 3 if literal.raw.startswith('"""') else 1
    exact = literal.raw[raw_offset : len(literal.raw) - raw_offset] == text
    references: list[tuple[str, list[str], Span]] = []
    plain = _plain_references(text)
    if plain is not None:
        for root, chain, start, end in plain:
            span = (
                Span(
                    literal.span.path,
                    literal.span.start + raw_offset + start,
                    literal.span.start + raw_offset + end,
                )
                if exact
                else literal.span
            )
            references.append((root, chain, span))
    else:
        from jinja2 import TemplateSyntaxError

        try:
            tree = _environment().parse(text)
        except TemplateSyntaxError as error:
            diagnostics.append(
                codes.TEMPLATE_SYNTAX.at(
                    literal.span,
                    "in this template",
                    reason=error.message or "syntax error",
                    help="a reference is written `{{ params.name }}`",
                )
            )
            return TemplateReads(whole=set(names))  # what it reads cannot be told
        bound = frozenset(("loop", "range", "true", "false", "none"))
        for root, chain in _references(tree, bound):
            span = _locate(literal, text, root, chain, raw_offset if exact else None)
            references.append((root, chain, span))
    return _check_references(references, names, diagnostics)


def _check_references(
    references: list[tuple[str, list[str], Span]],
    names: Mapping[str, object],
    diagnostics: list[Diagnostic],
) -> TemplateReads:
    """Resolves each reference against the names a step can see; returns what was read."""
    reads = TemplateReads()
    for root, chain, span in references:
        if root not in names:
            diagnostics.append(
                codes.TEMPLATE_UNKNOWN_NAME.at(
                    span,
                    "not defined in this step",
                    name=root,
                    help=did_you_mean(root, names)
                    or "templates can read `params`, `inputs`, `outputs`, `run` and `step`",
                )
            )
            continue
        members = names[root]
        if isinstance(members, Mapping) and chain:
            first = chain[0]
            if first not in members and root == "run":
                diagnostics.append(
                    codes.UNKNOWN_RUN_FIELD.at(
                        span,
                        "not a field of `run`",
                        name=first,
                        help=did_you_mean(first, members, wrap="`run.{}`")
                        or "`run` has " + ", ".join(f"`{m}`" for m in members),
                    )
                )
                continue
            if first not in members:
                diagnostics.append(
                    codes.TEMPLATE_UNKNOWN_NAME.at(
                        span,
                        f"`{root}` has no `{first}`",
                        name=f"{root}.{first}",
                        help=did_you_mean(first, members, wrap=f"`{root}.{{}}`")
                        or _empty_help(root),
                    )
                )
                continue
            if root in _MEMBERS_KEPT:
                reads.members.setdefault(root, set()).add(first)
        elif isinstance(members, Mapping):
            reads.whole.add(root)
    return reads


_MEMBERS_KEPT = ("params", "inputs", "outputs")


def _empty_help(root: str) -> str | None:
    if root in ("inputs", "outputs"):
        return f"declare it in the step's `{root} {{ … }}` block"
    return None


def _locate(
    literal: ast.StrLit, text: str, root: str, chain: list[str], offset: int | None
) -> Span:
    """The span of `root.chain…` inside the string literal, or the whole literal."""
    if offset is None:
        return literal.span
    dotted = r"\s*\.\s*".join(re.escape(p) for p in [root, *chain[:1]])
    for block in _EXPRESSION.finditer(text):
        match = re.search(r"(?<![\w.])" + dotted + r"(?!\w)", block.group(0))
        if match:
            start = literal.span.start + offset + block.start() + match.start()
            return Span(literal.span.path, start, start + len(match.group(0)))
    return literal.span
