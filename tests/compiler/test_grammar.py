"""The grammar is LALR(1) without conflicts or terminal collisions, and it is built once."""

from __future__ import annotations

import subprocess
import sys

from mlc.front import parser


def test_grammar_builds_strictly_without_conflicts_or_collisions() -> None:
    # strict=True makes lark refuse shift/reduce conflicts and colliding terminals. It needs
    # lark imported with interegular, so it runs in a process of its own.
    script = (
        "import sys, lark; "
        "lark.Lark(open(sys.argv[1]).read(), parser='lalr', lexer='contextual', strict=True, "
        "propagate_positions=True, maybe_placeholders=True)"
    )
    completed = subprocess.run(
        [sys.executable, "-c", script, str(parser.GRAMMAR_PATH)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr


def test_the_parser_is_built_once_per_process() -> None:
    assert parser._lark() is parser._lark()


def test_parsing_does_not_leave_lark_accelerators_hidden() -> None:
    parser.parse("mlspec 1\n", "empty.mlspec")
    assert sys.modules.get("regex", "absent") is not None
    assert sys.modules.get("interegular", "absent") is not None
