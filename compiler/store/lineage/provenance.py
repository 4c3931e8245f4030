"""Provenance trees: from an output back through the steps and inputs to pinned datasets."""

from __future__ import annotations

import dataclasses

from mlc.store.digest import Digest
from mlc.store.lineage.db import LineageDB, LineageError
from mlc.store.lineage.model import ProvenanceNode, Run, StepExecution

MAX_DEPTH = 200


def provenance(db: LineageDB, digest: Digest, *, max_depth: int = MAX_DEPTH) -> ProvenanceNode:
    """The tree of how `digest` was made.

    The producer is the most recent execution that actually ran the step (a cache hit only when
    no run is recorded); from there the tree is that run's, as `step_provenance` builds it. A
    digest that no step produced is a dataset if one was declared with it, else `unknown`.
    """
    return _node(db, digest, None, frozenset(), max_depth)


def step_provenance(
    db: LineageDB, step: StepExecution, output: str, *, max_depth: int = MAX_DEPTH
) -> ProvenanceNode:
    """The tree of how one step execution came by its `output`, as its run saw it.

    Each input is expanded through the execution of the same run that output it (another run's
    only when this one recorded none), so the tree is that run's own. A cache hit names the
    execution of an earlier run that made the output (`cached_from`). A digest already expanded
    on the path is marked `repeated` instead of being expanded again.
    """
    return _step_node(db, step, output, frozenset(), max_depth)


def _node(
    db: LineageDB,
    digest: Digest,
    run_id: str | None,
    seen: frozenset[Digest],
    depth: int,
) -> ProvenanceNode:
    producers = db.producers_of(digest)
    if not producers:
        datasets = tuple(db.datasets_with(digest))
        if datasets:
            return ProvenanceNode(digest, "dataset", datasets[0].kind, datasets=datasets)
        return ProvenanceNode(digest, "unknown")
    step, output = next(((s, o) for s, o in producers if s.run_id == run_id), producers[0])
    return _step_node(db, step, output, seen, depth)


def _step_node(
    db: LineageDB, step: StepExecution, output: str, seen: frozenset[Digest], depth: int
) -> ProvenanceNode:
    digest = step.outputs[output].digest
    datasets = tuple(db.datasets_with(digest))
    kind = step.outputs[output].kind
    run = _run(db, step.run_id)
    cached_from = db.maker_of(step, output) if step.status == "cached" else None
    cached_from_run = _run(db, cached_from.run_id) if cached_from is not None else None
    found = ProvenanceNode(
        digest,
        "step",
        kind,
        step,
        output,
        datasets,
        run=run,
        cached_from=cached_from,
        cached_from_run=cached_from_run,
    )
    if digest in seen or depth <= 0:
        return dataclasses.replace(found, repeated=True)
    inner = seen | {digest}
    inputs = tuple(
        (name, _node(db, input_digest, step.run_id, inner, depth - 1))
        for name, input_digest in sorted(step.inputs.items())
    )
    return dataclasses.replace(found, inputs=inputs)


def _run(db: LineageDB, run_id: str) -> Run | None:
    try:
        return db.find_run(run_id)
    except LineageError:
        return None  # a step record imported before its run's


def render_tree(node: ProvenanceNode) -> list[str]:
    """Human-readable lines of a provenance tree (what `mlc lineage` prints)."""
    lines = [_label(node)]
    _render_children(node, "", lines)
    return lines


def _label(node: ProvenanceNode, name: str | None = None) -> str:
    prefix = f"{name}: " if name else ""
    short = node.digest[: len("sha256:") + 12]
    kind = f" ({node.kind})" if node.kind else ""
    if node.step is not None:
        step = node.step
        where = f"{step.run_id} {step.name}.{node.output}"
        status = "" if step.status == "ran" else f" [{step.status}]"
        text = f"{prefix}{short}{kind}  <- step {where}{status}"
        if node.repeated:
            text += "  (shown above)"
        return text
    if node.datasets:
        # A leaf: the version a run was pinned to is shown whole.
        names = ", ".join(f"{d.name}" + (f" <{d.uri}>" if d.uri else "") for d in node.datasets)
        return f"{prefix}{node.digest}{kind}  <- dataset {names}"
    return f"{prefix}{short}{kind}  <- unknown origin"


def _details(node: ProvenanceNode) -> list[str]:
    """What a step node's execution used: params, code, where it ran, and from which commit.
    For a cache hit, first which run made the output; the rest is that run's."""
    if node.step is None or node.repeated:
        return []
    lines = []
    maker, run = node.maker
    step, host = (node.step, "-") if maker is None else (maker, maker.host or "-")
    if node.step.status == "cached":
        if maker is None:
            # Its params and code are the cache key's, so the maker's too; not where it ran.
            lines.append("cached from a run lineage has no record of")
        else:
            lines.append(
                f"cached from run {maker.run_id} "
                f"(`mlc lineage {maker.run_id}:{maker.name}.{node.output}`)"
            )
    params = ", ".join(f"{k}={v!r}" for k, v in sorted(step.params.items())) or "none"
    code = ", ".join(f"{label} {digest[:19]}" for label, digest in sorted(step.code.items()))
    commit = "-"
    if run is not None and run.git_commit:
        commit = run.git_commit[:10] + ("+dirty" if run.git_dirty else "")
    backend = (run.backend if run else "") or "-"
    image = step.image or "-"
    return [
        *lines,
        f"params: {params}",
        f"code: {code or '-'}; commit {commit}",
        f"ran on {backend} at {host}; image {image}",
    ]


def _render_children(node: ProvenanceNode, indent: str, lines: list[str]) -> None:
    below = indent + ("│   " if node.inputs else "    ")
    lines.extend(f"{below}  {detail}" for detail in _details(node))
    for index, (name, child) in enumerate(node.inputs):
        last = index == len(node.inputs) - 1
        lines.append(f"{indent}{'└── ' if last else '├── '}{_label(child, name)}")
        _render_children(child, indent + ("    " if last else "│   "), lines)
