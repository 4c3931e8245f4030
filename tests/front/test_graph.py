"""`mlc graph`: the pipeline DAG as DOT and Mermaid, deterministic and well-formed.

The golden files under `golden/` were checked by hand against the specs (edges against the
`inputs` blocks, foreach counts against the params, gate text against `when`); `--update-golden`
rewrites them.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from mlc.compile import Options, compile_spec
from mlc.ir.model import Const, IRDocument, MetricRef, Op, StepId
from mlc.ir.render_graph import condition_text, to_dot, to_mermaid

REPO = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).with_name("golden")
PIPELINES = sorted(p.parent.name for p in (REPO / "examples").glob("*/pipeline.mlspec"))


def document(spec: Path, **params: str) -> IRDocument:
    result = compile_spec(spec, options=Options(params=params))
    assert result.document is not None, result.diagnostics
    return result.document


def example(name: str) -> IRDocument:
    return document(REPO / "examples" / name / "pipeline.mlspec")


# -- a small DOT reader: enough of the grammar to reject what Graphviz would -----------------------

_DOT_TOKEN = re.compile(r'\s+|"(?:[^"\\]|\\.)*"|->|[{}\[\];,=]|[A-Za-z_]\w*|-?\d+(?:\.\d+)?')


def read_dot(text: str) -> tuple[list[str], list[tuple[str, str]]]:
    """The node ids and edges of a `digraph`; fails on anything it does not understand."""
    tokens: list[str] = []
    position = 0
    while position < len(text):
        match = _DOT_TOKEN.match(text, position)
        assert match, f"not DOT at {position}: {text[position : position + 20]!r}"
        if not match.group().isspace():
            tokens.append(match.group())
        position = match.end()
    depth = 0
    for token in tokens:
        depth += {"{": 1, "}": -1}.get(token, 0)
        assert depth >= 0
    assert depth == 0, "unbalanced braces"

    def is_id(token: str) -> bool:
        return token[0] == '"' or token[0].isalnum() or token[0] in "_-"

    def attributes(index: int) -> int:
        if tokens[index] != "[":
            return index
        index += 1
        while tokens[index] != "]":
            assert is_id(tokens[index]) and tokens[index + 1] == "=" and is_id(tokens[index + 2])
            index += 3
            if tokens[index] == ",":
                index += 1
        return index + 1

    assert tokens[0] == "digraph" and is_id(tokens[1]) and tokens[2] == "{" and tokens[-1] == "}"
    nodes: list[str] = []
    edges: list[tuple[str, str]] = []
    index = 3
    while index < len(tokens) - 1:
        head = tokens[index]
        if head in ("node", "edge", "graph"):
            index = attributes(index + 1)
        elif tokens[index + 1] == "=":
            assert is_id(tokens[index + 2])
            index += 3
        elif tokens[index + 1] == "->":
            assert is_id(head) and is_id(tokens[index + 2])
            edges.append((head, tokens[index + 2]))
            index = attributes(index + 3)
        else:
            assert is_id(head), head
            nodes.append(head)
            index = attributes(index + 1)
        assert tokens[index] == ";", tokens[index]
        index += 1
    return nodes, edges


_MERMAID_NODE = re.compile(r'  (\w+)(\[\(|\()"[^"]*"(\)\]|\))')
_MERMAID_EDGE = re.compile(r'  (\w+) (-->|-\.->)(\|"[^"|]*"\|)? (\w+)')
_MERMAID_CLASS = re.compile(r"  classDef \w+ [\w:#,]+|  class [\w,]+ \w+")


def read_mermaid(text: str) -> tuple[list[str], list[tuple[str, str]]]:
    lines = text.splitlines()
    assert lines[0] == "flowchart LR"
    nodes: list[str] = []
    edges: list[tuple[str, str]] = []
    for line in lines[1:]:
        if node := _MERMAID_NODE.fullmatch(line):
            nodes.append(node.group(1))
        elif edge := _MERMAID_EDGE.fullmatch(line):
            edges.append((edge.group(1), edge.group(4)))
        else:
            assert _MERMAID_CLASS.fullmatch(line), line
    return nodes, edges


# -- golden outputs ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["quickstart", "sweep"])
@pytest.mark.parametrize(("render", "suffix"), [(to_dot, "dot"), (to_mermaid, "mmd")])
def test_golden(name: str, render: object, suffix: str, update_golden: bool) -> None:
    assert callable(render)
    text = render(example(name))
    golden = GOLDEN / f"{name}.{suffix}"
    if update_golden:
        golden.parent.mkdir(exist_ok=True)
        golden.write_text(text, encoding="utf-8")
    assert text == golden.read_text(encoding="utf-8")


@pytest.mark.parametrize("name", PIPELINES)
def test_dot_is_well_formed_and_every_edge_end_is_declared(name: str) -> None:
    doc = example(name)
    text = to_dot(doc)
    nodes, edges = read_dot(text)
    assert len(nodes) == len(set(nodes)) == len(doc.pipeline.steps) + len(doc.pipeline.datasets)
    assert edges and {end for edge in edges for end in edge} <= set(nodes)
    assert to_dot(example(name)) == text


@pytest.mark.parametrize("name", PIPELINES)
def test_mermaid_is_well_formed_and_every_edge_end_is_declared(name: str) -> None:
    doc = example(name)
    text = to_mermaid(doc)
    nodes, edges = read_mermaid(text)
    assert len(nodes) == len(set(nodes)) == len(doc.pipeline.steps) + len(doc.pipeline.datasets)
    assert edges and {end for edge in edges for end in edge} <= set(nodes)
    assert to_mermaid(example(name)) == text


def test_the_dot_reader_rejects_broken_dot() -> None:
    good = 'digraph "g" {\n  "a" [label="a"];\n  "a" -> "a";\n}\n'
    assert read_dot(good) == (['"a"'], [('"a"', '"a"')])
    for broken in (good[:-2], good.replace(";\n}", "\n}"), good.replace("label=", "label")):
        with pytest.raises(AssertionError):
            read_dot(broken)


# -- what the picture says ------------------------------------------------------------------------

EDGES_SPEC = """\
mlspec 1

pipeline p {
  params {
    items: list[int] = [1, 2, 3]
    label: str = "say \\"hi\\""
  }

  dataset raw {
    uri = "data/raw"
    version = latest
  }

  step score {
    run = "python score.py --out {{ outputs.scores }}"
    inputs { data = raw }
    outputs { scores: metrics { value: float, name: str } }
  }

  step fan foreach item in params.items {
    run = "python fan.py {{ item }}"
  }

  step gated {
    when = score.scores.value > 0.5 and (score.scores.name == params.label or not (score.scores.value < 0.1))
    after = [fan]
    run = "python gated.py"
  }

  finally step cleanup {
    run = "python cleanup.py"
  }
}
"""


@pytest.fixture
def edges_document(tmp_path: Path) -> IRDocument:
    spec = tmp_path / "edges.mlspec"
    spec.write_text(EDGES_SPEC, encoding="utf-8")
    return document(spec)


def test_dot_draws_every_kind_of_node_and_edge(edges_document: IRDocument) -> None:
    text = to_dot(edges_document)
    condition = (
        'when score.scores.value > 0.5 and (score.scores.name == \\"say \\\\\\"hi\\\\\\"\\"'
        " or not (score.scores.value < 0.1))"
    )
    assert text.splitlines()[4:] == [
        '  "dataset:raw" [label="raw\\nlatest", shape=cylinder, style=filled, fillcolor="#e8f0fe"];',
        '  "step:score" [label="score", shape=box, style=rounded];',
        '  "step:fan" [label="fan \u00d73", shape=box, style=rounded];',
        f'  "step:gated" [label="gated\\n{condition}", shape=box, style=rounded];',
        '  "step:cleanup" [label="finally cleanup", shape=box, style="rounded,filled",'
        ' fillcolor="#e0e0e0", color="#757575"];',
        '  "dataset:raw" -> "step:score" [label="data"];',
        '  "step:score" -> "step:gated" [label="when", style=dashed];',
        '  "step:fan" -> "step:gated" [style=dashed];',
        '  "step:gated" -> "step:cleanup" [style=dotted, color="#757575"];',
        "}",
    ]
    read_dot(text)


def test_an_edge_names_the_output_it_carries_and_the_input_it_feeds(tmp_path: Path) -> None:
    spec = tmp_path / "two.mlspec"
    spec.write_text(
        "mlspec 1\n\npipeline p {\n"
        '  dataset raw {\n    uri = "d"\n    version = "sha256:' + "ab" * 32 + '"\n  }\n'
        '  step prepare {\n    call = "s:prepare"\n    inputs { source = raw }\n'
        "    outputs { train: dataset, test: dataset }\n  }\n"
        '  step fit {\n    call = "s:fit"\n'
        "    inputs { data = prepare.train, holdout = prepare.test }\n  }\n}\n",
        encoding="utf-8",
    )
    text = to_mermaid(document(spec))
    assert '  dataset_raw[("raw<br/>sha256:abababababab")]' in text.splitlines()
    assert '  dataset_raw -->|"source"| step_prepare' in text.splitlines()
    assert (
        '  step_prepare -->|"train \u2192 data, test \u2192 holdout"| step_fit' in text.splitlines()
    )


def test_svg_is_drawn_without_graphviz(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import xml.etree.ElementTree as ElementTree

    from mlc.cli.main import main

    monkeypatch.setenv("PATH", str(tmp_path))  # no `dot`, nor anything else
    output = tmp_path / "sweep.svg"
    spec = str(REPO / "examples" / "sweep" / "pipeline.mlspec")
    assert main(["graph", spec, "--format", "svg", "-o", str(output)]) == 0
    assert capsys.readouterr().err == f"wrote {output}\n"
    root = ElementTree.fromstring(output.read_text(encoding="utf-8"))
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    texts = [t.text for t in root.iter("{http://www.w3.org/2000/svg}text")]
    for label in ("housing", "latest", "featurize", "train \u00d75", "pick_best", "finally report"):
        assert label in texts
    assert "model \u2192 models, scores \u2192 scores" in texts
    boxes = {t.text: float(t.get("x", "0")) for t in root.iter("{http://www.w3.org/2000/svg}text")}
    # Columns run left to right along the edges.
    assert boxes["housing"] < boxes["featurize"] < boxes["train \u00d75"] < boxes["pick_best"]
    assert len(list(root.iter("{http://www.w3.org/2000/svg}line"))) == 4
    # A label's white halo is drawn first and its dark text over it (no `paint-order`, which
    # SVG 1.1 renderers ignore and would leave the text white).
    label = "model \u2192 models, scores \u2192 scores"
    drawn = [
        t.get("fill") for t in root.iter("{http://www.w3.org/2000/svg}text") if t.text == label
    ]
    assert drawn == ["#ffffff", "#333333"]
    assert "paint-order" not in output.read_text(encoding="utf-8")


def test_mermaid_escapes_what_it_must(edges_document: IRDocument) -> None:
    text = to_mermaid(edges_document)
    assert (
        '  step_gated("gated<br/>when score.scores.value #gt; 0.5 and (score.scores.name =='
        ' #quot;say \\#quot;hi\\#quot;#quot; or not (score.scores.value #lt; 0.1))")'
    ) in text.splitlines()
    assert "  step_fan -.-> step_gated" in text
    assert '  step_score -.->|"when"| step_gated' in text
    assert "  class step_cleanup finally" in text
    read_mermaid(text)


def test_condition_text_puts_parentheses_where_they_matter() -> None:
    metric = MetricRef(step=StepId("step:s"), output="m", key="k")
    one = Const(value=1)
    minus = Op(op="-", args=(metric, Op(op="-", args=(one, one))))
    assert condition_text(Op(op=">", args=(minus, one))) == "s.m.k - (1 - 1) > 1"
    both = Op(op="and", args=(Op(op="or", args=(metric, metric)), Op(op="not", args=(metric,))))
    assert condition_text(both) == "(s.m.k or s.m.k) and not s.m.k"
    assert condition_text(Op(op="in", args=(metric, Const(value=["a", 2])))) == 's.m.k in ["a", 2]'


# -- the command ------------------------------------------------------------------------------------


def mlc(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mlc", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={"NO_COLOR": "1", "PATH": "/usr/bin:/bin"},
        check=False,
    )


def test_mlc_graph_prints_dot_by_default_and_binds_params() -> None:
    done = mlc("graph", "examples/sweep/pipeline.mlspec")
    assert done.returncode == 0, done.stderr
    assert done.stdout == (GOLDEN / "sweep.dot").read_text(encoding="utf-8")
    done = mlc(
        "graph",
        "examples/sweep/pipeline.mlspec",
        "--format",
        "mermaid",
        "--param",
        "learning_rates=[0.1, 0.2]",
    )
    assert done.returncode == 0, done.stderr
    assert '  step_train("train \u00d72")' in done.stdout.splitlines()


def test_mlc_graph_writes_a_file(tmp_path: Path) -> None:
    output = tmp_path / "q.mmd"
    done = mlc(
        "graph", "examples/quickstart/pipeline.mlspec", "--format", "mermaid", "-o", str(output)
    )
    assert done.returncode == 0, done.stderr
    assert output.read_text(encoding="utf-8") == (GOLDEN / "quickstart.mmd").read_text()


def test_mlc_graph_reports_errors_and_exits_1(tmp_path: Path) -> None:
    spec = tmp_path / "bad.mlspec"
    spec.write_text('mlspec 1\n\npipeline p {\n  step a { run = "x", inputs { d = nowhere } }\n}\n')
    done = mlc("graph", str(spec))
    assert done.returncode == 1
    assert done.stdout == ""
    assert "error[" in done.stderr and "nowhere" in done.stderr
    assert mlc("graph", "missing.mlspec").returncode == 1


def test_the_mermaid_example_in_the_docs_is_current() -> None:
    docs = (REPO / "docs" / "commands.md").read_text(encoding="utf-8")
    block = docs.split("```mermaid\n", 1)[1].split("```", 1)[0]
    assert block == (GOLDEN / "sweep.mmd").read_text(encoding="utf-8")
