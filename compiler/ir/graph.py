"""The IR as a graph: a `networkx.DiGraph` over typed ids, payloads on the nodes.

Nodes are `StepId`s and `DatasetId`s with the frozen model under the `payload` attribute.
An edge `u -> v` means `v` needs `u` first; its `kind` is `data` (an input), `order` (an
`after`), or `gate` (a `when` condition reads `u`'s metrics).
"""

from __future__ import annotations

from collections.abc import Iterator

import networkx as nx
from mlc.ir.model import Condition, IRDocument, MetricRef, Op, Step, StepId


def condition_refs(condition: Condition | None) -> Iterator[MetricRef]:
    """Every metric a condition reads."""
    if condition is None:
        return
    if isinstance(condition, MetricRef):
        yield condition
    elif isinstance(condition, Op):
        for arg in condition.args:
            yield from condition_refs(arg)


def build_graph(document: IRDocument) -> nx.DiGraph:
    """The pipeline DAG of an IR document."""
    graph = nx.DiGraph(pipeline=document.pipeline.name)
    for dataset in document.pipeline.datasets:
        graph.add_node(dataset.id, payload=dataset, kind="dataset")
    for step in document.pipeline.steps:
        graph.add_node(step.id, payload=step, kind="step")
    for step in document.pipeline.steps:
        for port in step.inputs:
            _add_edge(graph, port.source.node, step.id, "data", port.name)
        for before in step.after:
            _add_edge(graph, before, step.id, "order", None)
        for ref in condition_refs(step.when):
            _add_edge(graph, ref.step, step.id, "gate", None)
    finals = [s.id for s in document.pipeline.steps if s.is_finally]
    regular = [s.id for s in document.pipeline.steps if not s.is_finally]
    for final in finals:
        for other in regular:
            if not graph.has_edge(other, final):
                graph.add_edge(other, final, kind="finally", inputs=())
    return graph


def _add_edge(graph: nx.DiGraph, source: str, target: str, kind: str, port: str | None) -> None:
    if graph.has_edge(source, target):
        data = graph.edges[source, target]
        if port:
            data["inputs"] = (*data.get("inputs", ()), port)
        if kind == "data":
            data["kind"] = "data"
        return
    graph.add_edge(source, target, kind=kind, inputs=(port,) if port else ())


def steps_in_order(document: IRDocument) -> list[Step]:
    """Steps in a deterministic topological order (ties broken by declaration order)."""
    graph = build_graph(document)
    position = {step.id: index for index, step in enumerate(document.pipeline.steps)}
    order = nx.lexicographical_topological_sort(graph, key=lambda node: position.get(node, -1))
    by_id: dict[StepId, Step] = {step.id: step for step in document.pipeline.steps}
    return [by_id[StepId(node)] for node in order if node in by_id]
