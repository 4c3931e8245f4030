"""Rendering command templates: a sandboxed Jinja2 environment with StrictUndefined.

`exec` commands render each argv element on its own; `shell` commands render one string in
which every substituted value is shell-quoted, so a param or a path can never inject shell
syntax. Values render the way a user expects on a command line: `true`/`false` for booleans,
JSON for maps. A list (a fan-in input's paths, a list param) is as many arguments as it has
elements: an argv element that is nothing but the reference (`"{{ inputs.parts }}"`) becomes
one argument per element, and in a shell command it becomes that many shell-quoted words. Its
JSON text is asked for explicitly, with `| tojson`; a list inside a longer argv element (or an
`env` value) must say which text it wants (`| join(",")`, `| tojson`).
"""

from __future__ import annotations

import json
import re
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


class _ListInText(Exception):
    """A list was substituted into text that must be one string."""


def _is_list(value: Any) -> bool:
    return isinstance(value, list | tuple)


def _shell_quoted(value: Any) -> str:
    if _is_list(value):
        return " ".join(shlex.quote(format_value(v)) for v in value)
    return shlex.quote(format_value(value))


def _one_string(value: Any) -> str:
    if _is_list(value):
        raise _ListInText
    return format_value(value)


def to_json(value: Any) -> str:
    """The `tojson` filter: a value's JSON text (not HTML-escaped, unlike Jinja2's own).

    >>> to_json(["a b", 1])
    '["a b", 1]'
    """
    return json.dumps(list(value) if isinstance(value, tuple) else value, sort_keys=True)


@cache
def _environment(shell: bool) -> SandboxedEnvironment:
    from jinja2 import StrictUndefined
    from jinja2.sandbox import SandboxedEnvironment

    environment = SandboxedEnvironment(
        undefined=StrictUndefined,
        finalize=_shell_quoted if shell else _one_string,
        autoescape=False,
        keep_trailing_newline=True,
    )
    environment.filters["tojson"] = to_json
    return environment


_ALONE = re.compile(r"\A\s*\{\{(?P<expression>(?:(?!\}\}|\{\{).)*)\}\}\s*\Z", re.S)
"""An argv element that is one `{{ … }}` and nothing else."""


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
    except _ListInText:
        raise TemplateFailure(
            f"cannot render `{template}`: a list is substituted into a longer string; "
            "give it an argument of its own (one argument per element), or say which text "
            'you want: `| join(",")`, `| tojson`'
        ) from None


@lru_cache(maxsize=TEMPLATE_CACHE_SIZE)
def _expression(source: str) -> Any:
    return _environment(False).compile_expression(source, undefined_to_none=False)


def _render_element(template: str, context: Mapping[str, Any]) -> list[str]:
    """One argv element: a list standing alone is one argument per element."""
    alone = _ALONE.match(template) if "{" in template else None
    if alone is None:
        return [render_template(template, context)]
    from jinja2 import TemplateError

    try:
        value = _expression(alone["expression"])(**context)
    except TemplateError as exc:
        raise TemplateFailure(f"cannot render `{template}`: {exc}") from None
    if _is_list(value):
        return [format_value(v) for v in value]
    return [render_template(template, context)]


def render_argv(templates: Sequence[str], context: Mapping[str, Any]) -> list[str]:
    """Renders the argv of an `exec` command, one element per template, except that an element
    that is only a list (`"{{ inputs.parts }}"`) is one argument per element of the list.

    >>> render_argv(["cat", "{{ inputs.parts }}"], {"inputs": {"parts": ["/a", "/b c"]}})
    ['cat', '/a', '/b c']
    >>> render_argv(["echo", "{{ p | tojson }}"], {"p": ["x", 1]})
    ['echo', '["x", 1]']
    """
    argv: list[str] = []
    for part in templates:
        argv.extend(_render_element(part, context))
    return argv


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
