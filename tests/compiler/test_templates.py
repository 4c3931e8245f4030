"""Template references are checked alike whether Jinja2 parses them or the plain-reference path
reads them."""

from __future__ import annotations

import pytest
from mlc.checks.templates import check_template
from mlc.diagnostics import Diagnostic
from mlc.front import ast
from mlc.source import Span

NAMES = {
    "params": {"epochs": None, "lr": None},
    "inputs": {"data": None},
    "outputs": {"model": None},
    "run": {"id": None, "status": None},
    "step": {"name": None},
}


def literal(text: str) -> ast.StrLit:
    raw = f'"{text}"'
    return ast.StrLit(text, raw, Span("spec.mlspec", 100, 100 + len(raw)))


def check(text: str) -> tuple[set[str], list[tuple[str, int, int]]]:
    diagnostics: list[Diagnostic] = []
    reads = check_template(literal(text), NAMES, diagnostics)
    return reads.of("params"), [(d.code, d.span.start, d.span.end) for d in diagnostics]


@pytest.mark.parametrize(
    ("plain", "through_jinja"),
    [
        ("train --epochs {{ params.epochs }}", "train --epochs {{ params.epochs | int }}"),
        ("train {{ inputs.dta }}", "train {{ inputs.dta | string }}"),
        ("{{ run.name }}", "{{ run.name | upper }}"),
        ("{{ prams.lr }}", "{{ prams.lr | float }}"),
    ],
)
def test_both_paths_read_the_same_references_at_the_same_place(
    plain: str, through_jinja: str
) -> None:
    assert check(plain) == check(through_jinja)


def test_the_inputs_and_outputs_a_template_reads_are_reported_and_whole_reads_kept_apart() -> None:
    reads = check_template(literal("--in {{ inputs.data }} --out {{ outputs.model }}"), NAMES, [])
    assert (reads.of("inputs"), reads.of("outputs"), reads.whole) == ({"data"}, {"model"}, set())
    # Read whole, its members cannot be told apart: nothing may be concluded about them.
    reads = check_template(literal("{{ outputs | tojson }} {{ outputs['model'] }}"), NAMES, [])
    assert (reads.of("outputs"), reads.whole) == (set(), {"outputs"})


def test_params_read_by_a_template_are_reported() -> None:
    assert check("{{ params.lr }} and {{ params.epochs }}")[0] == {"lr", "epochs"}
    assert check("{% for x in params.lr %}{{ x }}{% endfor %}")[0] == {"lr"}


def test_a_template_syntax_error_is_a_diagnostic() -> None:
    assert [code for code, *_ in check("{{ params.lr ")[1]] == ["E0306"]
