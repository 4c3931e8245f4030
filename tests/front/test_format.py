"""`mlc fmt`: canonical, idempotent, meaning-preserving, and no comment is ever lost.

The property tests run the formatter on two families of input: specs generated from the
grammar (random layout, redundant parentheses, comments anywhere whitespace may go), whose
tree must be unchanged, and the examples re-laid-out token by token, whose IR must be
unchanged.
"""

from __future__ import annotations

import dataclasses
import io
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from mlc.compile import Options, compile_spec
from mlc.front import ast
from mlc.front.format import format_module
from mlc.front.parser import parse

from tests.requirements import require

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((REPO / "examples").rglob("*.mlspec"))
PIPELINES = [p for p in EXAMPLES if p.name == "pipeline.mlspec"]


def fmt(text: str, path: str = "spec.mlspec") -> str:
    result = parse(text, path)
    assert result.module is not None, result.diagnostics
    return format_module(result.module, text)


def shape(node: Any) -> Any:
    """An AST node without spans, paths or comments: what the spec means, syntactically."""
    if isinstance(node, ast.Module):
        return ("Module", shape(node.version), shape(node.items))
    if dataclasses.is_dataclass(node) and not isinstance(node, type):
        return (
            type(node).__name__,
            *(
                shape(getattr(node, f.name))
                for f in dataclasses.fields(node)
                if f.name not in ("span", "head_span", "op_span")
            ),
        )
    if isinstance(node, tuple | list):
        return tuple(shape(n) for n in node)
    return node


def comment_texts(text: str) -> list[str]:
    result = parse(text, "spec.mlspec")
    assert result.module is not None
    return [c.text.rstrip() for c in result.module.comments]


def assert_formats_well(text: str) -> str:
    """The properties every input must have; returns the formatted text."""
    once = fmt(text)
    assert fmt(once) == once, "not idempotent"
    before, after = parse(text, "spec.mlspec").module, parse(once, "spec.mlspec").module
    assert before is not None and after is not None
    assert shape(after) == shape(before), "the tree changed"
    assert comment_texts(once) == comment_texts(text), "comments lost or reordered"
    assert once.endswith("\n") and not once.endswith("\n\n")
    assert all(line == line.rstrip() for line in once.splitlines())
    return once


# -- the examples are in canonical form ---------------------------------------------------------


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.relative_to(REPO).as_posix())
def test_examples_are_canonical(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert fmt(text, path.as_posix()) == text


CORPUS = sorted((REPO / "specs" / "corpus").rglob("*.mlspec"))


def _parses(path: Path) -> bool:
    result = parse(path.read_text(encoding="utf-8"), path.as_posix())
    return result.module is not None and not result.diagnostics


PARSING = [path for path in CORPUS if _parses(path)]


@pytest.mark.parametrize("path", PARSING, ids=lambda p: p.relative_to(REPO).as_posix())
def test_corpus_specs_format_well(path: Path) -> None:
    """The conformance corpus, invalid specs included: whatever parses formats well."""
    assert_formats_well(path.read_text(encoding="utf-8"))


def test_the_corpus_specs_that_do_not_parse_are_the_syntax_error_cases() -> None:
    # (`fmt` refuses a file that does not parse; these are the cases written to fail there.)
    unparsed = [path for path in CORPUS if path not in PARSING]
    assert unparsed
    for path in unparsed:
        codes = {d.code for d in parse(path.read_text(encoding="utf-8"), str(path)).diagnostics}
        assert codes == {path.name.split("_", 1)[0]}, path.name
        assert codes.pop().startswith("E00"), path.name


# -- the rules, one by one (expected outputs checked by hand) -----------------------------------


def test_header_spacing_and_indentation_are_normalised() -> None:
    messy = (
        'mlspec   1\nimport "a.mlspec"   as  a\ntype t:dataset\nresources r{cpu=1\nmemory=2Gi}\n'
    )
    assert fmt(messy) == (
        "mlspec 1\n"
        "\n"
        'import "a.mlspec" as a\n'
        "\n"
        "type t: dataset\n"
        "\n"
        "resources r {\n"
        "  cpu = 1\n"
        "  memory = 2Gi\n"
        "}\n"
    )


def test_consecutive_imports_and_types_stay_together() -> None:
    text = 'mlspec 1\n\nimport "a.mlspec" as a\nimport "b.mlspec" as b\n\ntype t: dataset\ntype u: model\n'
    assert fmt(text) == text


def test_a_short_one_line_body_stays_on_one_line() -> None:
    assert fmt("mlspec 1\nx {a=1,b:int=2}\n") == "mlspec 1\n\nx { a = 1, b: int = 2 }\n"


def test_a_multi_line_body_stays_expanded_and_loses_its_commas() -> None:
    assert fmt("mlspec 1\nx {\n a = 1, b = 2 }\n") == "mlspec 1\n\nx {\n  a = 1\n  b = 2\n}\n"


def test_a_one_line_body_with_a_block_is_expanded() -> None:
    assert fmt("mlspec 1\nx { a = 1 y { b = 2 } }\n") == (
        "mlspec 1\n\nx {\n  a = 1\n  y { b = 2 }\n}\n"
    )


def test_a_one_line_body_too_long_for_100_columns_is_expanded() -> None:
    fits = '"' + "v" * 81 + '"'
    assert len(f"x {{ a = {fits}, b = 1 }}") == 100
    assert (
        fmt(f"mlspec 1\nx {{ a = {fits}, b = 1 }}\n") == f"mlspec 1\n\nx {{ a = {fits}, b = 1 }}\n"
    )
    too_long = '"' + "v" * 82 + '"'
    text = f"mlspec 1\nx {{ a = {too_long}, b = 1 }}\n"
    assert fmt(text) == f"mlspec 1\n\nx {{\n  a = {too_long}\n  b = 1\n}}\n"


def test_empty_bodies_and_lists() -> None:
    text = "mlspec 1\nx {\n\n}\ny { a = [ ] b = { } }\nz {\n  a = [\n  ]\n}\n"
    assert fmt(text) == "mlspec 1\n\nx {}\n\ny { a = [], b = {} }\n\nz {\n  a = []\n}\n"


def test_pipeline_items_are_separated_by_blank_lines() -> None:
    text = (
        "mlspec 1\npipeline p {\nparams { n: int = 1 }\nstep a { x = 1 }\nstep b {\ny = 2\n}\n}\n"
    )
    assert fmt(text) == (
        "mlspec 1\n\n"
        "pipeline p {\n"
        "  params { n: int = 1 }\n\n"
        "  step a { x = 1 }\n\n"
        "  step b {\n"
        "    y = 2\n"
        "  }\n"
        "}\n"
    )


def test_blank_lines_between_attributes_are_kept_but_collapsed() -> None:
    text = "mlspec 1\nx {\n\n  a = 1\n\n\n\n  b = 2\n  c = 3\n\n}\n"
    assert fmt(text) == "mlspec 1\n\nx {\n  a = 1\n\n  b = 2\n  c = 3\n}\n"


def test_block_heads() -> None:
    text = "mlspec 1\np {\nfinally   step s :t extends base.b foreach v in [1,2] { }\n}\n"
    assert (
        fmt(text)
        == "mlspec 1\n\np {\n  finally step s: t extends base.b foreach v in [1, 2] {}\n}\n"
    )


def test_literals_are_kept_as_written() -> None:
    text = (
        "mlspec 1\n\n"
        'x { a = 007, b = 1.50, c = 1e3, d = 2.5Gi, e = "tab\\t\\"q\\"", "k-1" = true }\n'
        '\ny {\n  s = """two\n  lines"""\n}\n'
    )
    assert fmt(text) == text


def test_parentheses_are_added_for_precedence_and_kept_around_operators() -> None:
    text = "mlspec 1\nx {\na = ((1 + 2)) * (3)\nb = 1 - (2 - 3) - 4\nc = not (a and (b or c))\n"
    text += "d = -(a.b) + (-c)[0]\ne = (a == b) == c\nf = (a + b).c\ng = (1 of 2) of 3\n"
    text += "h = (a * b) + (c)\ni = (a + b)\nj = f((a + b), ((c)))\nk = not a == b\n}\n"
    assert fmt(text) == (
        "mlspec 1\n\nx {\n"
        "  a = (1 + 2) * 3\n"
        "  b = 1 - (2 - 3) - 4\n"
        "  c = not (a and (b or c))\n"
        "  d = -a.b + (-c)[0]\n"
        "  e = (a == b) == c\n"
        "  f = (a + b).c\n"
        "  g = (1 of 2) of 3\n"
        "  h = (a * b) + c\n"
        "  i = a + b\n"
        "  j = f(a + b, c)\n"
        "  k = not a == b\n"
        "}\n"
    )


def test_types() -> None:
    text = "mlspec 1\nx {\na:int(1..10)\nb : float( ..1.0)=0.5\nc: enum('a'\n,'b')\n}\n"
    text = text.replace("'", '"')
    assert fmt(text) == (
        'mlspec 1\n\nx {\n  a: int(1..10)\n  b: float(..1.0) = 0.5\n  c: enum("a", "b")\n}\n'
    )
    record = "mlspec 1\n\nx {\n  m: metrics { a: float, b: list[int] }\n  n: map[str, int]\n}\n"
    assert fmt(record) == record


def test_one_line_list_too_long_gets_one_element_per_line() -> None:
    items = ", ".join(f'"item-{i:02}"' for i in range(12))
    assert fmt(f"mlspec 1\nx {{\n  a = [{items}]\n}}\n") == (
        "mlspec 1\n\nx {\n  a = [\n"
        + "".join(f'    "item-{i:02}",\n' for i in range(12))
        + "  ]\n}\n"
    )


def test_multi_line_list_keeps_its_line_breaks() -> None:
    text = 'mlspec 1\nx {\n  run = ["python", "-m", "t",\n    "--lr", "{{ lr }}"\n  , "--x"]\n}\n'
    assert fmt(text) == (
        "mlspec 1\n\nx {\n"
        "  run = [\n"
        '    "python", "-m", "t",\n'
        '    "--lr", "{{ lr }}",\n'
        '    "--x",\n'
        "  ]\n}\n"
    )


# -- comments -------------------------------------------------------------------------------------


def test_comments_keep_their_places() -> None:
    text = """\
# licence

# about this file
mlspec 1
# before the block
x {   # after the brace
  # before a
  a = 1 # after a
  b = [ # after the bracket
    1, # after one
    # before two
    2
    # before the bracket
  ]

  # detached, before the brace
}    # after the block
# at the end
"""
    assert (
        fmt(text)
        == """\
# licence

# about this file
mlspec 1

# before the block
x {  # after the brace
  # before a
  a = 1  # after a
  b = [  # after the bracket
    1,  # after one
    # before two
    2,
    # before the bracket
  ]

  # detached, before the brace
}  # after the block
# at the end
"""
    )


def test_a_comment_inside_a_one_line_expression_moves_to_the_end_of_its_line() -> None:
    text = "mlspec 1\nx {\n  when = a and # why\n    b\n  c = f(1, # one\n  2) # two\n}\n"
    assert (
        fmt(text) == "mlspec 1\n\nx {\n  when = a and b  # why\n  c = f(1, 2)  # one\n  # two\n}\n"
    )
    assert_formats_well(text)


def test_comments_in_a_block_head_and_an_empty_body() -> None:
    text = "mlspec 1\nstep s # label\n  foreach v in xs # items\n{ # open\n}\n"
    assert fmt(text) == "mlspec 1\n\nstep s foreach v in xs {  # label\n  # items\n  # open\n}\n"
    assert_formats_well(text)


# -- properties: generated specs ------------------------------------------------------------------

names = st.sampled_from(["a", "b", "lr", "step", "train", "x1", "data_set", "params", "_p"])
leaves = st.one_of(
    st.sampled_from(["0", "42", "007", "1.5", "2.50", "1e3", "3E-2", "8Gi", "500m", "1.5h", "30s"]),
    st.sampled_from(['"x"', '""', '"a\\"b"', '"tab\\t"', '"{{ lr }}"', '"""two\nlines"""']),
    st.sampled_from(["true", "false"]),
    names,
)


def wrap(tokens: list[str], parenthesise: bool) -> list[str]:
    """An operand, in parentheses or not; without them the spec may mean something else or
    not parse (`a == b == c`), which is fine: the formatter must keep whatever it means."""
    return ["(", *tokens, ")"] if parenthesise and len(tokens) > 1 else tokens


def joined(entries: list[tuple[list[str], bool]]) -> list[str]:
    """Items one after the other, each followed by a comma or not."""
    return [tok for item, comma in entries for tok in (*item, *([","] if comma else []))]


def compound(sub: st.SearchStrategy[list[str]]) -> st.SearchStrategy[list[str]]:
    """One level of expression syntax over smaller expressions `sub`."""
    binary_ops = st.sampled_from(
        ["+", "-", "*", "/", "%", "==", "!=", "<=", ">", "and", "or", "in", "of"]
    )
    binary = st.tuples(sub, binary_ops, sub, st.booleans(), st.booleans()).map(
        lambda t: [*wrap(t[0], t[3]), t[1], *wrap(t[2], t[4])]
    )
    unary = st.tuples(st.sampled_from(["-", "not"]), sub, st.booleans()).map(
        lambda t: [t[0], *wrap(t[1], t[2])]
    )
    attribute = st.tuples(names, sub).map(lambda t: [t[0], "=", *t[1]])
    block = st.tuples(names, names, st.lists(st.tuples(names, leaves), max_size=2)).map(
        lambda t: [t[0], t[1], "{", *[x for n, v in t[2] for x in (n, "=", v)], "}"]
    )
    obj = st.lists(st.tuples(st.one_of(attribute, attribute, block), st.booleans()), max_size=3)
    return st.one_of(
        binary,
        binary,  # operators are more likely: precedence is where a formatter goes wrong
        unary,
        st.tuples(sub, names).map(lambda t: [*wrap(t[0], True), ".", t[1]]),
        st.tuples(sub, sub).map(lambda t: [*wrap(t[0], True), "[", *t[1], "]"]),
        st.tuples(names, st.lists(sub, max_size=3)).map(
            lambda t: [t[0], "(", *comma_separated(t[1]), ")"]
        ),
        st.lists(sub, max_size=4).map(lambda items: ["[", *comma_separated(items), "]"]),
        obj.map(lambda entries: ["{", *joined(entries), "}"]),
        sub.map(lambda tokens: ["(", *tokens, ")"]),
    )


expressions = st.recursive(leaves.map(lambda leaf: [leaf]), compound, max_leaves=10)


def comma_separated(items: list[list[str]]) -> list[str]:
    tokens: list[str] = []
    for index, item in enumerate(items):
        if index:
            tokens.append(",")
        tokens.extend(item)
    return tokens


def types(depth: int = 2) -> st.SearchStrategy[list[str]]:
    simple = st.sampled_from(
        [
            ["int"],
            ["float"],
            ["model"],
            ["int", "(", "1", "..", "10", ")"],
            ["float", "(", "..", "1.0", ")"],
            ["int", "(", "-", "1", "..", ")"],
            ["enum", "(", '"a"', ",", '"b"', ")"],
        ]
    )
    if depth == 0:
        return simple
    sub = st.deferred(lambda: types(depth - 1))
    return st.one_of(
        simple,
        st.tuples(names, st.lists(sub, min_size=1, max_size=2)).map(
            lambda t: [t[0], "[", *comma_separated(t[1]), "]"]
        ),
        st.lists(st.tuples(names, sub), max_size=3).map(
            lambda fields: [
                "metrics",
                "{",
                *[tok for n, ty in fields for tok in (n, ":", *ty)],
                "}",
            ]
        ),
    )


def items(depth: int) -> st.SearchStrategy[list[str]]:
    expr = expressions
    choices = [
        st.tuples(names, expr).map(lambda t: [t[0], "=", *t[1]]),
        st.tuples(st.sampled_from(['"k-1"', '"a.b"']), expr).map(lambda t: [t[0], "=", *t[1]]),
        st.tuples(names, types(), st.one_of(st.none(), expr)).map(
            lambda t: [t[0], ":", *t[1], *(["=", *t[2]] if t[2] is not None else [])]
        ),
    ]
    if depth > 0:
        choices.append(blocks(depth - 1))
    return st.one_of(*choices)


def bodies(depth: int) -> st.SearchStrategy[list[str]]:
    return st.lists(st.tuples(items(depth), st.booleans()), min_size=1, max_size=4).map(
        lambda entries: [
            tok for item, comma in entries for tok in (*item, *([","] if comma else []))
        ]
    )


def blocks(depth: int = 2) -> st.SearchStrategy[list[str]]:
    head = st.tuples(
        st.booleans(),
        st.sampled_from(["step", "x", "pipeline", "resources"]),
        st.one_of(st.none(), names),
        st.one_of(st.none(), names),
        st.sampled_from([[], ["extends", "base"], ["extends", "p", ".", "medium"]]),
        st.one_of(st.none(), st.tuples(names, expressions)),
    )

    def build(parts: tuple[Any, ...]) -> list[str]:
        (is_finally, kind, label, type_name, extends, foreach), body = parts
        tokens = ["finally"] if is_finally else []
        tokens.append(kind)
        if label is not None:
            tokens.append(label)
            if type_name is not None:
                tokens += [":", type_name]
        tokens += extends
        if foreach is not None:
            tokens += ["foreach", foreach[0], "in", *foreach[1]]
        return [*tokens, "{", *body, "}"]

    return st.tuples(head, bodies(depth)).map(build)


top_items = st.one_of(
    st.tuples(st.sampled_from(['"a.mlspec"', '"../p.mlspec"']), st.one_of(st.none(), names)).map(
        lambda t: ["import", t[0], *(["as", t[1]] if t[1] else [])]
    ),
    st.tuples(names, names).map(lambda t: ["type", t[0], ":", t[1]]),
    blocks(),
)
separators = st.sampled_from(
    [
        " ",
        " ",
        " ",
        "  ",
        "\n",
        "\n",
        "\n\n",
        "\n    ",
        "\t",
        " # note\n",
        "\n# own line\n",
        '\n\n# after a blank { [ ( "\n\n',
        "#\n",
    ]
)


@st.composite
def specs(draw: st.DrawFn) -> str:
    tokens = [
        "mlspec",
        "1",
        *[t for item in draw(st.lists(top_items, min_size=1, max_size=4)) for t in item],
    ]
    gaps = draw(st.lists(separators, min_size=len(tokens) + 1, max_size=len(tokens) + 1))
    return "".join(gap + token for gap, token in zip(gaps, [*tokens, ""], strict=True))


@st.composite
def expression_specs(draw: st.DrawFn) -> str:
    """Specs that are mostly expressions: where precedence and parentheses are tested."""
    big = st.recursive(leaves.map(lambda leaf: [leaf]), compound, max_leaves=25)
    values = draw(st.lists(big, min_size=1, max_size=4))
    tokens = ["mlspec", "1", "x", "{", *[t for v in values for t in ("a", "=", *v)], "}"]
    gaps = draw(st.lists(separators, min_size=len(tokens) + 1, max_size=len(tokens) + 1))
    return "".join(gap + token for gap, token in zip(gaps, [*tokens, ""], strict=True))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(specs(), expression_specs()))
def test_generated_specs_format_idempotently_and_keep_their_tree_and_comments(text: str) -> None:
    result = parse(text, "spec.mlspec")
    assume(result.module is not None)
    assert_formats_well(text)


# -- properties: the examples, re-laid-out ----------------------------------------------------------


TOKEN = re.compile(
    r'"""(?:[^"\\]|\\.|"(?!""))*"""|"(?:[^"\\\n]|\\.)*"|#[^\n]*'
    r"|\d+(?:\.\d+)?(?:[eE][+-]?\d+)?[A-Za-z]*|[A-Za-z_]\w*|\.\.|[=!<>]=|\S"
)


def example_tokens(text: str) -> list[str]:
    """The tokens of a spec, comments included, in order."""
    return TOKEN.findall(text)


@st.composite
def relaid(draw: st.DrawFn, text: str) -> str:
    tokens = example_tokens(text)
    out = io.StringIO()
    for token in tokens:
        if token.startswith("#"):
            out.write(draw(st.sampled_from([" ", "\n", "\n\n"])) + token + "\n")
        else:
            out.write(draw(st.sampled_from([" ", " ", "\n", "\n  ", "\n\n", " # moved\n"])) + token)
    return out.getvalue() + "\n"


@pytest.fixture(scope="module")
def workspace() -> Iterator[Path]:
    """A copy of the examples, so that re-laid-out variants can be compiled next to imports."""
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder) / "examples"
        shutil.copytree(REPO / "examples", root)
        yield root


def ir_without_sources(spec: Path) -> Any:
    result = compile_spec(spec, options=Options())
    assert result.document is not None, result.diagnostics
    return strip_sources(result.document.model_dump(mode="json"))


def strip_sources(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: strip_sources(v)
            for k, v in value.items()
            if k != "source" or not (isinstance(v, dict) and {"line", "column"} <= v.keys())
        }
    if isinstance(value, list):
        return [strip_sources(v) for v in value]
    return value


@pytest.mark.parametrize("name", [p.parent.name for p in PIPELINES])
def test_relaid_examples_format_back_to_the_same_ir(workspace: Path, name: str) -> None:
    spec = workspace / name / "pipeline.mlspec"
    original = (REPO / "examples" / name / "pipeline.mlspec").read_text(encoding="utf-8")
    expected = ir_without_sources(spec)

    @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
    @given(relaid(original))
    def check(text: str) -> None:
        formatted = assert_formats_well(text)
        spec.write_text(text, encoding="utf-8")
        assert ir_without_sources(spec) == expected
        spec.write_text(formatted, encoding="utf-8")
        assert ir_without_sources(spec) == expected

    try:
        check()
    finally:
        spec.write_text(original, encoding="utf-8")


def test_the_examples_keep_their_ir_and_comments(workspace: Path) -> None:
    for path in PIPELINES:
        spec = workspace / path.parent.name / "pipeline.mlspec"
        text = path.read_text(encoding="utf-8")
        expected = ir_without_sources(spec)
        spec.write_text(assert_formats_well(text), encoding="utf-8")
        assert ir_without_sources(spec) == expected
        spec.write_text(text, encoding="utf-8")


# -- properties: generated pipelines that compile ------------------------------------------------

PIPELINE = """\
mlspec 1

pipeline p {{
  params {{
    n: int(1..100) = {n}
    rate: float = 0.5
    names: list[str] = ["a", "b"]
  }}

  step s0 {{
    run = "score --n {{{{ params.n }}}} --out {{{{ outputs.scores }}}}"
    outputs {{ scores: metrics {{ acc: float, loss: float }} }}
    resources {{ cpu = {cpu}, memory = {memory} }}
  }}

  step s1 foreach v in params.names {{
    run = ["echo", "{{{{ v }}}}"]
    inputs {{ m = s0.scores }}
  }}

  step s2 {{
    when = {when}
    call = "m:f"
    args {{ a = {a}, b = [{b}] }}
    after = [s1]
  }}

  finally step f {{ run = "echo done" }}
}}
"""


def arithmetic(leaf: st.SearchStrategy[str], ops: list[str], depth: int = 3) -> Any:
    if depth == 0:
        return leaf.map(lambda token: [token])
    sub = arithmetic(leaf, ops, depth - 1)
    return st.one_of(
        leaf.map(lambda token: [token]),
        st.tuples(sub, st.sampled_from(ops), sub, st.booleans(), st.booleans()).map(
            lambda t: [*wrap(t[0], t[3]), t[1], *wrap(t[2], t[4])]
        ),
    )


def conditions(depth: int = 2) -> Any:
    number = arithmetic(st.sampled_from(["0.5", "1", "params.rate", "2"]), ["+", "-", "*"], 2)
    comparison = st.tuples(
        st.sampled_from(["s0.scores.acc", "s0.scores.loss"]),
        st.sampled_from([">=", "<", "==", "!="]),
        number,
    ).map(lambda t: [t[0], t[1], *t[2]])
    if depth == 0:
        return comparison
    sub = conditions(depth - 1)
    return st.one_of(
        comparison,
        st.tuples(sub, st.sampled_from(["and", "or"]), sub, st.booleans(), st.booleans()).map(
            lambda t: [*wrap(t[0], t[3]), t[1], *wrap(t[2], t[4])]
        ),
        st.tuples(sub, st.booleans()).map(lambda t: ["not", *wrap(t[0], t[1])]),
    )


@st.composite
def pipelines(draw: st.DrawFn) -> str:
    positive = arithmetic(st.sampled_from(["1", "2", "3", "params.n"]), ["+", "*"])
    signed = arithmetic(st.sampled_from(["1", "2", "params.n", "params.rate"]), ["+", "-", "*"])
    gibibytes = arithmetic(st.sampled_from(["1", "2", "params.n"]), ["+", "*"], 1)
    text = PIPELINE.format(
        n=draw(st.integers(1, 100)),
        cpu=" ".join(draw(positive)),
        memory=" ".join([*wrap(draw(gibibytes), True), "*", "1Gi"]),
        when=" ".join(draw(conditions())),
        a=" ".join(draw(signed)),
        b=", ".join(" ".join(e) for e in draw(st.lists(signed, min_size=1, max_size=3))),
    )
    return draw(relaid(text))


def test_the_pipeline_template_compiles(workspace: Path) -> None:
    spec = workspace / "generated.mlspec"
    spec.write_text(
        PIPELINE.format(n=3, cpu="1", memory="1Gi", when="s0.scores.acc > 1", a="1", b="1")
    )
    ir_without_sources(spec)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(pipelines())
def test_generated_pipelines_format_back_to_the_same_ir(workspace: Path, text: str) -> None:
    result = parse(text, "spec.mlspec")
    assume(result.module is not None and not result.diagnostics)
    formatted = assert_formats_well(text)
    spec = workspace / "generated.mlspec"
    spec.write_text(text, encoding="utf-8")
    compiled = compile_spec(spec, options=Options())
    if compiled.document is None:
        return  # the tree comparison above is all there is to check
    expected = strip_sources(compiled.document.model_dump(mode="json"))
    spec.write_text(formatted, encoding="utf-8")
    assert ir_without_sources(spec) == expected


# -- the command ------------------------------------------------------------------------------------


def mlc(*args: str, cwd: Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mlc", *args],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        env={"NO_COLOR": "1", "PATH": "/usr/bin:/bin"},
        check=False,
    )


MESSY = "mlspec 1\nx {a=1}   # note\n"
TIDY = "mlspec 1\n\nx { a = 1 }  # note\n"


def test_fmt_rewrites_files_in_place(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.mlspec").write_text(MESSY)
    (tmp_path / "b.mlspec").write_text(TIDY)
    done = mlc("fmt", ".", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "sub" / "a.mlspec").read_text() == TIDY
    assert (tmp_path / "b.mlspec").read_text() == TIDY
    assert "1 file reformatted, 1 unchanged" in done.stderr
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["a.mlspec", "b.mlspec", "sub"]


def test_fmt_keeps_symbolic_links_and_permissions(tmp_path: Path) -> None:
    (tmp_path / "real.mlspec").write_text(MESSY)
    (tmp_path / "real.mlspec").chmod(0o640)
    (tmp_path / "link.mlspec").symlink_to("real.mlspec")
    assert mlc("fmt", "link.mlspec", cwd=tmp_path).returncode == 0
    assert (tmp_path / "link.mlspec").is_symlink()
    assert (tmp_path / "real.mlspec").read_text() == TIDY
    assert (tmp_path / "real.mlspec").stat().st_mode & 0o777 == 0o640


def test_fmt_check_lists_the_files_that_would_change_and_fails(tmp_path: Path) -> None:
    (tmp_path / "a.mlspec").write_text(MESSY)
    (tmp_path / "b.mlspec").write_text(TIDY)
    done = mlc("fmt", "--check", "a.mlspec", "b.mlspec", cwd=tmp_path)
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.splitlines()[0] == "would reformat a.mlspec"
    assert (tmp_path / "a.mlspec").read_text() == MESSY
    assert mlc("fmt", "--check", "b.mlspec", cwd=tmp_path).returncode == 0


def test_fmt_diff_prints_a_unified_diff_and_writes_nothing(tmp_path: Path) -> None:
    (tmp_path / "a.mlspec").write_text(MESSY)
    done = mlc("fmt", "--diff", "a.mlspec", cwd=tmp_path)
    assert done.returncode == 0
    assert done.stdout == (
        "--- a.mlspec (original)\n+++ a.mlspec (formatted)\n@@ -1,2 +1,3 @@\n"
        " mlspec 1\n-x {a=1}   # note\n+\n+x { a = 1 }  # note\n"
    )
    assert (tmp_path / "a.mlspec").read_text() == MESSY


def test_fmt_refuses_a_file_with_a_syntax_error(tmp_path: Path) -> None:
    broken = "mlspec 1\nx { a = }\n"
    (tmp_path / "bad.mlspec").write_text(broken)
    (tmp_path / "good.mlspec").write_text(MESSY)
    done = mlc("fmt", ".", cwd=tmp_path)
    assert done.returncode == 1
    assert "error[E" in done.stderr and "bad.mlspec:2:9" in done.stderr
    assert (tmp_path / "bad.mlspec").read_text() == broken
    assert (tmp_path / "good.mlspec").read_text() == TIDY


def test_fmt_reads_stdin(tmp_path: Path) -> None:
    done = mlc("fmt", "-", cwd=tmp_path, stdin=MESSY)
    assert (done.returncode, done.stdout) == (0, TIDY)
    assert mlc("fmt", "--check", "-", cwd=tmp_path, stdin=MESSY).returncode == 1


def test_fmt_drops_a_byte_order_mark_and_reports_errors_after_it_where_an_editor_shows_them(
    tmp_path: Path,
) -> None:
    (tmp_path / "bom.mlspec").write_text("\ufeff" + TIDY, encoding="utf-8")
    assert mlc("fmt", "--check", "bom.mlspec", cwd=tmp_path).returncode == 1
    assert mlc("fmt", "bom.mlspec", cwd=tmp_path).returncode == 0
    assert (tmp_path / "bom.mlspec").read_bytes() == TIDY.encode()
    assert mlc("fmt", "-", cwd=tmp_path, stdin="\ufeff" + MESSY).stdout == TIDY
    (tmp_path / "bad.mlspec").write_text("\ufeffmlspec 1\nx { a = }\n", encoding="utf-8")
    done = mlc("fmt", "bad.mlspec", cwd=tmp_path)
    assert done.returncode == 1 and "bad.mlspec:2:9" in done.stderr


def test_the_pre_commit_hooks_run_mlc(tmp_path: Path) -> None:
    yaml = require("yaml", "the pre-commit hooks test")
    hooks = {h["id"]: h for h in yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text())}
    assert set(hooks) == {"mlc-lint", "mlc-fmt"}
    for hook in hooks.values():
        assert hook["language"] == "python"
        assert re.search(hook["files"], "a/b.mlspec") and not re.search(hook["files"], "b.py")
    assert hooks["mlc-fmt"]["entry"] == "mlc fmt --check"
    assert hooks["mlc-lint"]["entry"] == "mlc lint"
    (tmp_path / "a.mlspec").write_text(MESSY)
    command = hooks["mlc-fmt"]["entry"].split()[1:]
    assert mlc(*command, "a.mlspec", cwd=tmp_path).returncode == 1
    (tmp_path / "a.mlspec").write_text(TIDY)
    assert mlc(*command, "a.mlspec", cwd=tmp_path).returncode == 0
