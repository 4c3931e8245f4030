"""The language reference, `docs/language.md`, agrees with the compiler.

Every complete example in it (a ```mlspec block that starts with `mlspec 1`, or with a
`# command:` header) lints clean, and its table of diagnostic codes is the catalog's.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from mlc.cli.explain import shown_template
from mlc.diagnostics.catalog import CATALOG

from tests.front import invocation

DOC = Path(__file__).resolve().parents[2] / "docs" / "language.md"
TEXT = DOC.read_text(encoding="utf-8")
BLOCKS = [m.group(1) for m in re.finditer(r"^```mlspec\n(.*?)^```$", TEXT, re.M | re.S)]
COMPLETE = [b for b in BLOCKS if b.startswith(("mlspec 1\n", "# command:"))]


def _line_of(block: str) -> int:
    return TEXT[: TEXT.index(block)].count("\n") + 1


def test_the_reference_has_complete_examples() -> None:
    assert len(COMPLETE) >= 15


@pytest.mark.parametrize("example", COMPLETE, ids=[f"line{_line_of(b)}" for b in COMPLETE])
def test_complete_example_lints_clean(example: str, tmp_path: Path) -> None:
    spec = tmp_path / "example.mlspec"
    spec.write_text(example, encoding="utf-8")
    diagnostics, sources = invocation.check(spec)
    assert [f"{d.code} {sources.position(d.span)}: {d.message}" for d in diagnostics] == []


def test_code_table_is_the_catalog() -> None:
    rows = re.findall(r"^\| ([EW]\d{4}) \| (.*) \| `mlc explain \1` \|$", TEXT, re.M)
    assert rows == [(code, shown_template(entry)) for code, entry in CATALOG.items()]
