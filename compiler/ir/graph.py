"""The IR as a graph: a `networkx.DiGraph` over typed ids, payloads on the nodes.

Nodes are `StepId`s and `DatasetId`s with the frozen model under the `payload` attribute.
An edge `u -> v` means `v` needs `u` first; its `kind` is `data` (an input), `order` (an
`after`), `gate` (a `when` condition reads `u`'s metrics) or `finally` (a `finally` step
runs after every regular step).

`dependencies` and `steps_in_order` read the same edges (`edges_of`) without building the
graph: what runs a pipeline needs only those, and importing networkx costs a CLI command
about 60 ms.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from typing import TYPE_CHECKING

from mlc.ir.model import Condition, IRDocument, MetricRef, Op, Step, StepId

if TYPE_CHECKING:
    import networkx as nx


def condition_refs(condition: Condition | None) -> Iterator[MetricRef]:
    """Every metric a condition reads."""
    if condition is None:
        return
    if isinstance(condition, MetricRef):
        yield condition
    elif isinstance(condition, Op):
        for arg in condition.args:
            yield from condition_refs(arg)


def edges_of(document: IRDocument) -> Iterator[tuple[str, StepId, str, str | None]]:
    """Every dependency as (source node, step, kind, input port or None), in declaration
    order; a pair may come more than once (two inputs from one step, an input and a gate)."""
    for step in document.pipeline.steps:
        for port in step.inputs:
            yield port.source.node, step.id, "data", port.name
        for before in step.after:
            yield before, step.id, "order", None
        for ref in condition_refs(step.when):
            yield ref.step, step.id, "gate", None
    finals = [s.id for s in document.pipeline.steps if s.is_finally]
    regular = [s.id for s in document.pipeline.steps if not s.is_finally]
    for final in finals:
        for other in regular:
            yield other, final, "finally", None


def build_graph(document: IRDocument) -> nx.DiGraph:
    """The pipeline DAG of an IR document."""
    import networkx as nx

    graph = nx.DiGraph(pipeline=document.pipeline.name)
    for dataset in document.pipeline.datasets:
        graph.add_node(dataset.id, payload=dataset, kind="dataset")
    for step in document.pipeline.steps:
        graph.add_node(step.id, payload=step, kind="step")
    for source, target, kind, port in edges_of(document):
        _add_edge(graph, source, target, kind, port)
    return graph


def dependencies(document: IRDocument) -> dict[StepId, list[StepId]]:
    """For each step, the steps it waits for (each once, in declaration order)."""
    steps = {step.id for step in document.pipeline.steps}
    needs: dict[StepId, dict[StepId, None]] = {step.id: {} for step in document.pipeline.steps}
    for source, target, _kind, _port in edges_of(document):
        if source in steps:
            needs[target][StepId(source)] = None
    return {step: list(sources) for step, sources in needs.items()}


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
    steps = document.pipeline.steps
    needs = dependencies(document)
    position = {step.id: index for index, step in enumerate(steps)}
    waiting = {step_id: len(sources) for step_id, sources in needs.items()}
    followers: dict[StepId, list[StepId]] = {step.id: [] for step in steps}
    for step_id, sources in needs.items():
        for source in sources:
            followers[source].append(step_id)
    ready = [position[step_id] for step_id, count in waiting.items() if count == 0]
    heapq.heapify(ready)
    order: list[Step] = []
    while ready:
        step = steps[heapq.heappop(ready)]
        order.append(step)
        for follower in followers[step.id]:
            waiting[follower] -= 1
            if waiting[follower] == 0:
                heapq.heappush(ready, position[follower])
    if len(order) != len(steps):
        raise ValueError("the pipeline's steps depend on each other in a cycle")
    return order
