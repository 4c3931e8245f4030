"""The pipeline DAG of an IR document as Graphviz DOT or Mermaid text: what `mlc graph` prints.

Both renderers draw the same picture from `mlc.ir.graph.build_graph`:

- a dataset is a cylinder labelled with its name and, on a second line, its version (a short
  digest, `tag NAME` or `latest`);
- a step is a rounded box labelled with its name; a `foreach` step adds `\u00d7N` (N items), a
  gated step adds a second line `when <condition>` (params already bound), a `finally` step
  is drawn grey and prefixed `finally`;
- a data edge is solid and labelled with what it carries, `output → input` (`train → data`:
  the producer's output `train` feeds the consumer's input `data`; the input's name alone when
  the producer is a dataset); an `after` (order) edge
  is dashed; a gate edge (a `when` reading an upstream metric through no input) is dashed
  and labelled `when`; a `finally` step gets a dotted edge from each regular step nothing
  else follows (the others reach it through those).

Output is deterministic: nodes in declaration order (datasets, then steps), edges sorted by
the declaration order of their ends.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import networkx as nx
from mlc.ir.graph import build_graph
from mlc.ir.model import Condition, Const, DatasetVersion, IRDocument, MetricRef, Op, Step

_TIMES = "\u00d7"  # the multiplication sign, as in `train ×5`  # noqa: RUF003

_PRECEDENCE = {
    "or": 1,
    "and": 2,
    "not": 3,
    "==": 4,
    "!=": 4,
    "<": 4,
    "<=": 4,
    ">": 4,
    ">=": 4,
    "in": 4,
    "+": 6,
    "-": 6,
    "*": 7,
    "/": 7,
}


@dataclass(frozen=True)
class _Node:
    id: str
    kind: str  # "dataset" | "step" | "finally"
    lines: tuple[str, ...]


@dataclass(frozen=True)
class _Edge:
    source: str
    target: str
    kind: str  # "data" | "order" | "gate" | "finally"
    label: str


def condition_text(condition: Condition, names: dict[str, str] | None = None) -> str:
    """A condition as a spec author would write it: `evaluate.metrics.accuracy >= 0.85`."""
    names = names or {}
    if isinstance(condition, MetricRef):
        step = names.get(condition.step, condition.step.removeprefix("step:"))
        return f"{step}.{condition.output}.{condition.key}"
    if isinstance(condition, Const):
        return json.dumps(condition.value, ensure_ascii=False)
    own = _PRECEDENCE.get(condition.op, 0)
    if condition.op == "not" and len(condition.args) == 1:
        # `not (a == b)`, not `not a == b`: clearer, though precedence does not need it.
        operand = condition.args[0]
        if isinstance(operand, Op) and len(operand.args) == 2:
            return f"not ({condition_text(operand, names)})"
        return "not " + _operand(operand, own, names)
    if len(condition.args) == 2:
        left, right = condition.args
        # Comparisons do not chain, so both of their operands need parentheses at equal rank.
        left_bound = own + 1 if own == _PRECEDENCE["=="] else own
        return (
            f"{_operand(left, left_bound, names)} {condition.op} {_operand(right, own + 1, names)}"
        )
    args = ", ".join(condition_text(arg, names) for arg in condition.args)
    return f"{condition.op}({args})"


def _operand(condition: Condition, bound: int, names: dict[str, str]) -> str:
    text = condition_text(condition, names)
    if isinstance(condition, Op) and _PRECEDENCE.get(condition.op, 0) < bound:
        return f"({text})"
    return text


def picture(document: IRDocument) -> tuple[list[_Node], list[_Edge]]:
    """What every renderer draws: the nodes (id, kind, text lines) and the edges (ends, kind,
    label), in the deterministic order described above."""
    return _nodes_and_edges(document)


def _nodes_and_edges(document: IRDocument) -> tuple[list[_Node], list[_Edge]]:
    pipeline = document.pipeline
    graph: nx.DiGraph = build_graph(document)
    names: dict[str, str] = {step.id: step.name for step in pipeline.steps}
    nodes: list[_Node] = [
        _Node(d.id, "dataset", (d.name, version_text(d.version))) for d in pipeline.datasets
    ]
    carried = _carried(document)
    nodes += [_step_node(step, names) for step in pipeline.steps]
    position = {node.id: index for index, node in enumerate(nodes)}

    edges: list[_Edge] = []
    for source, target, data in graph.edges(data=True):
        kind = str(data.get("kind", "data"))
        if kind == "finally" and any(
            graph.edges[source, successor].get("kind") != "finally"
            for successor in graph.successors(source)
        ):
            continue
        label = ", ".join(carried.get((str(source), str(target)), ())) if kind == "data" else ""
        if kind == "gate":
            label = "when"
        edges.append(_Edge(str(source), str(target), kind, label))
    edges.sort(key=lambda e: (position[e.source], position[e.target]))
    return nodes, edges


def version_text(version: DatasetVersion) -> str:
    """How a dataset's version is shown: `sha256:688deb25d963`, `tag 2026-10`, `latest`."""
    if version.kind == "digest" and version.value:
        return version.value[: len("sha256:") + 12]
    if version.kind == "tag":
        return f"tag {version.value}"
    return "latest"


def _carried(document: IRDocument) -> dict[tuple[str, str], list[str]]:
    """For each (producer, consumer) pair, what flows: `output → input` per input."""
    carried: dict[tuple[str, str], list[str]] = {}
    for step in document.pipeline.steps:
        for port in step.inputs:
            output = port.source.output
            text = port.name if output is None else f"{output} \u2192 {port.name}"
            carried.setdefault((str(port.source.node), str(step.id)), []).append(text)
    return carried


def _step_node(step: Step, names: dict[str, str]) -> _Node:
    title = f"finally {step.name}" if step.is_finally else step.name
    if step.foreach is not None:
        title += f" {_TIMES}{len(step.foreach.items)}"
    lines = [title]
    if step.when is not None:
        lines.append("when " + condition_text(step.when, names))
    return _Node(step.id, "finally" if step.is_finally else "step", tuple(lines))


# -- DOT ------------------------------------------------------------------------------------------

_DOT_NODE_STYLE = {
    "dataset": 'shape=cylinder, style=filled, fillcolor="#e8f0fe"',
    "step": "shape=box, style=rounded",
    "finally": 'shape=box, style="rounded,filled", fillcolor="#e0e0e0", color="#757575"',
}
_DOT_EDGE_STYLE = {
    "data": "",
    "order": "style=dashed",
    "gate": "style=dashed",
    "finally": 'style=dotted, color="#757575"',
}


def _dot_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def to_dot(document: IRDocument) -> str:
    """The pipeline DAG as a Graphviz `digraph`."""
    nodes, edges = _nodes_and_edges(document)
    lines = [
        f"digraph {_dot_string(document.pipeline.name)} {{",
        "  rankdir=LR;",
        '  node [fontname="Helvetica"];',
        '  edge [fontname="Helvetica", fontsize=10];',
    ]
    for node in nodes:
        label = _dot_string("\n".join(node.lines))
        lines.append(f"  {_dot_string(node.id)} [label={label}, {_DOT_NODE_STYLE[node.kind]}];")
    for edge in edges:
        attributes = [a for a in (_DOT_EDGE_STYLE[edge.kind],) if a]
        if edge.label:
            attributes.insert(0, f"label={_dot_string(edge.label)}")
        suffix = f" [{', '.join(attributes)}]" if attributes else ""
        lines.append(f"  {_dot_string(edge.source)} -> {_dot_string(edge.target)}{suffix};")
    lines.append("}")
    return "\n".join(lines) + "\n"


# -- Mermaid --------------------------------------------------------------------------------------

_MERMAID_SHAPE = {"dataset": ('[("', '")]'), "step": ('("', '")'), "finally": ('("', '")')}
_MERMAID_ARROW = {"data": "-->", "order": "-.->", "gate": "-.->", "finally": "-.->"}
_MERMAID_ESCAPES = {"#": "#35;", '"': "#quot;", "<": "#lt;", ">": "#gt;", "|": "#124;"}


def _mermaid_id(node_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", node_id)


def _mermaid_text(text: str) -> str:
    return "".join(_MERMAID_ESCAPES.get(char, char) for char in text)


def to_mermaid(document: IRDocument) -> str:
    """The pipeline DAG as a Mermaid `flowchart`."""
    nodes, edges = _nodes_and_edges(document)
    lines = ["flowchart LR"]
    for node in nodes:
        opening, closing = _MERMAID_SHAPE[node.kind]
        label = "<br/>".join(_mermaid_text(line) for line in node.lines)
        lines.append(f"  {_mermaid_id(node.id)}{opening}{label}{closing}")
    for edge in edges:
        arrow = _MERMAID_ARROW[edge.kind]
        label = f'|"{_mermaid_text(edge.label)}"|' if edge.label else ""
        lines.append(f"  {_mermaid_id(edge.source)} {arrow}{label} {_mermaid_id(edge.target)}")
    finals = [_mermaid_id(n.id) for n in nodes if n.kind == "finally"]
    datasets = [_mermaid_id(n.id) for n in nodes if n.kind == "dataset"]
    if datasets:
        lines.append("  classDef dataset fill:#e8f0fe")
        lines.append(f"  class {','.join(datasets)} dataset")
    if finals:
        lines.append("  classDef finally fill:#e0e0e0,stroke:#757575")
        lines.append(f"  class {','.join(finals)} finally")
    return "\n".join(lines) + "\n"
