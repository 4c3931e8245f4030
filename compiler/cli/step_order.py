"""The order `mlc runs show` lists a run's steps in: the DAG's, rebuilt from what lineage
recorded, so that it is the same every time whatever the timing of the run.

A step comes after every step whose output it read (an input digest equal to an output
digest). Among the steps whose predecessors are all listed, the next is the first by name,
items of a `foreach` in item order (`train[2]` before `train[10]`); a step that read nothing
and made nothing (a `finally` step that reports, say) waits until nothing else is left.
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Sequence

from mlc.store.lineage import StepExecution

_ITEM = re.compile(r"^(.*)\[(\d+)\]$")


def _natural(name: str) -> tuple[str, int]:
    match = _ITEM.match(name)
    return (match.group(1), int(match.group(2))) if match else (name, -1)


def dag_order(steps: Sequence[StepExecution]) -> list[StepExecution]:
    """`steps` in dependency order, ties broken as the module docstring says."""
    producer: dict[str, int] = {}
    for index, step in enumerate(steps):
        for output in step.outputs.values():
            producer.setdefault(output.digest, index)
    after: list[set[int]] = [set() for _ in steps]
    for index, step in enumerate(steps):
        for digest in step.inputs.values():
            source = producer.get(digest)
            if source is not None and source != index:
                after[index].add(source)
    followers: list[list[int]] = [[] for _ in steps]
    for index, sources in enumerate(after):
        for source in sources:
            followers[source].append(index)

    def key(index: int) -> tuple[bool, tuple[str, int], str]:
        step = steps[index]
        isolated = not step.inputs and not step.outputs and not followers[index]
        return (isolated, _natural(step.name), step.step_id)

    waiting = [len(sources) for sources in after]
    ready = [(key(i), i) for i, n in enumerate(waiting) if n == 0]
    heapq.heapify(ready)
    ordered: list[StepExecution] = []
    while ready:
        _, index = heapq.heappop(ready)
        ordered.append(steps[index])
        for follower in followers[index]:
            waiting[follower] -= 1
            if waiting[follower] == 0:
                heapq.heappush(ready, (key(follower), follower))
    if len(ordered) < len(steps):  # a cycle cannot be recorded; keep anything left, by name
        listed = {id(s) for s in ordered}
        ordered += sorted((s for s in steps if id(s) not in listed), key=lambda s: s.step_id)
    return ordered
