"""lark, imported without its optional accelerators.

lark imports `interegular` (needed only to check a grammar for terminal collisions, which the
test suite does by building the grammar with `strict=True`) and `regex` whenever they are
installed. Together they cost about 40 ms, paid by every `mlc lint`, so they are hidden while
lark is imported, and only then.
"""

from __future__ import annotations

import sys


def _import_without_accelerators() -> None:
    hidden = [name for name in ("interegular", "regex") if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # type: ignore[assignment]
    try:
        import lark  # noqa: F401
    finally:
        for name in hidden:
            if sys.modules.get(name) is None:
                del sys.modules[name]


_import_without_accelerators()

from lark import Lark, Token, Transformer, v_args  # noqa: E402
from lark.exceptions import (  # noqa: E402
    UnexpectedCharacters,
    UnexpectedEOF,
    UnexpectedInput,
    UnexpectedToken,
)

__all__ = [
    "Lark",
    "Token",
    "Transformer",
    "UnexpectedCharacters",
    "UnexpectedEOF",
    "UnexpectedInput",
    "UnexpectedToken",
    "v_args",
]
