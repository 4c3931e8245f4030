"""Rendering command templates: a sandboxed Jinja2 environment with StrictUndefined.

`exec` commands render each argv element on its own; `shell` commands render one string in
which every substituted value is shell-quoted, so a param or a path can never inject shell
syntax. Values render the way a user expects on a command line: `true`/`false` for booleans,
JSON for lists and maps.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping, Sequence
from functools import cache, lru_cache
from typing import TYPE_CHECKING, Any

from mlc.runtime.errors import TemplateFailure

if TYPE_CHECKING:
    from jinja2 import Template
    from jinja2.sandbox import SandboxedEnvironment

# Jinja2 is imported only when a template has something to render: most argv elements and
# many whole commands have no `{`, and the import costs every `mlc apply` about 15 ms.


def format_value(value: Any) -> str:
    """The text of a value substituted into a command.

    >>> format_value(True), format_value(0.25), format_value([1, 2]), format_value(None)
    ('true', '0.25', '[1, 2]', '')
    """
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple | dict):
        return json.dumps(value, sort_keys=True)
    return str(value)


def _shell_quoted(value: Any) -> str:
    return shlex.quote(format_value(value))


@cache
def _environment(shell: bool) -> SandboxedEnvironment:
    from jinja2 import StrictUndefined
    from jinja2.sandbox import SandboxedEnvironment

    return SandboxedEnvironment(
        undefined=StrictUndefined,
        finalize=_shell_quoted if shell else format_value,
        autoescape=False,
        keep_trailing_newline=True,
    )


# Steps of one pipeline (and the items of a `foreach`) share few distinct templates; parsing
# and compiling each once, not once per invocation, matters for pipelines of many steps.
TEMPLATE_CACHE_SIZE = 4096


@lru_cache(maxsize=TEMPLATE_CACHE_SIZE)
def _compiled(template: str, shell: bool) -> Template:
    return _environment(shell).from_string(template)


@lru_cache(maxsize=TEMPLATE_CACHE_SIZE)
def _names_in(template: str) -> frozenset[str]:
    from jinja2 import meta

    return frozenset(meta.find_undeclared_variables(_environment(False).parse(template)))


def render_template(template: str, context: Mapping[str, Any], *, shell: bool = False) -> str:
    """Renders one template; `shell=True` shell-quotes every substituted value.

    >>> render_template("--out {{ outputs.model }}", {"outputs": {"model": "/w/m dir"}})
    '--out /w/m dir'
    >>> render_template("echo {{ p }}", {"p": "a; rm -rf /"}, shell=True)
    "echo 'a; rm -rf /'"
    """
    if "{" not in template:
        return template  # no `{{`, `{%` or `{#`: nothing to render (most argv elements)
    from jinja2 import TemplateError

    try:
        return _compiled(template, shell).render(dict(context))
    except TemplateError as exc:
        raise TemplateFailure(f"cannot render `{template}`: {exc}") from None


def render_argv(templates: Sequence[str], context: Mapping[str, Any]) -> list[str]:
    """Renders the argv of an `exec` command, one element per template."""
    return [render_template(part, context) for part in templates]


def referenced_names(templates: Sequence[str]) -> frozenset[str]:
    """The top-level names the templates read (`params`, `inputs`, `run`, a foreach variable).

    >>> sorted(referenced_names(["{{ run.id }}", "{{ params.n }} {{ lr }}"]))
    ['lr', 'params', 'run']
    """
    templated = [template for template in templates if "{" in template]
    if not templated:
        return frozenset()
    from jinja2 import TemplateError

    names: set[str] = set()
    for template in templated:
        try:
            names |= _names_in(template)
        except TemplateError as exc:
            raise TemplateFailure(f"cannot parse `{template}`: {exc}") from None
    return frozenset(names)
