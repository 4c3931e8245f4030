"""`--param NAME=VALUE` as given on the command line (a module of its own: `mlc apply` reads
params before it knows whether it needs the compiler at all)."""

from __future__ import annotations

from collections.abc import Sequence


def parse_params(pairs: Sequence[str]) -> dict[str, str] | str:
    """`NAME=VALUE` pairs as a dict, or an error message.

    >>> parse_params(["lr=0.1", "name=a=b"])
    {'lr': '0.1', 'name': 'a=b'}
    >>> parse_params(["lr"])
    '`--param lr` must be NAME=VALUE'
    """
    params: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            return f"`--param {pair}` must be NAME=VALUE"
        params[name.strip()] = value
    return params
