"""The grammar is LALR(1) without conflicts or terminal collisions, and it is built once."""

from __future__ import annotations

from lark import Lark

from mlc.front import parser


def test_grammar_builds_strictly_without_conflicts_or_collisions() -> None:
    grammar = parser.GRAMMAR_PATH.read_text(encoding="utf-8")
    # strict=True makes lark refuse shift/reduce conflicts and colliding terminals.
    Lark(grammar, parser="lalr", lexer="contextual", strict=True, propagate_positions=True,
         maybe_placeholders=True)


def test_the_parser_is_built_once_per_process() -> None:
    assert parser._lark() is parser._lark()


def test_parsing_does_not_leave_lark_accelerators_hidden() -> None:
    import sys

    parser.parse("mlspec 1\n", "empty.mlspec")
    assert sys.modules.get("regex", "absent") is not None
    assert sys.modules.get("interegular", "absent") is not None
