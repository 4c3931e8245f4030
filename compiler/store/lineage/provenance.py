"""Provenance trees: from an output back through the steps and inputs to pinned datasets."""

from __future__ import annotations

from mlc.store.digest import Digest
from mlc.store.lineage.db import LineageDB, LineageError
from mlc.store.lineage.model import ProvenanceNode, Run

MAX_DEPTH = 200


def provenance(db: LineageDB, digest: Digest, *, max_depth: int = MAX_DEPTH) -> ProvenanceNode:
    """The tree of how `digest` was made.

    The producer is the most recent execution that actually ran the step (a cache hit only when
    no run is recorded). Each input of that execution is expanded the same way; a digest that
    no step produced is a dataset if one was declared with it, else `unknown`. A digest already
    expanded on the path is marked `repeated` instead of being expanded again.
    """
    return _node(db, digest, None, frozenset(), max_depth)


def _node(
    db: LineageDB, digest: Digest, kind: str | None, seen: frozenset[Digest], depth: int
) -> ProvenanceNode:
    datasets = tuple(db.datasets_with(digest))
    if datasets and kind is None:
        kind = datasets[0].kind
    producers = db.producers_of(digest)
    if not producers:
        if datasets:
            return ProvenanceNode(digest, "dataset", kind, datasets=datasets)
        return ProvenanceNode(digest, "unknown", kind)
    step, output = producers[0]
    kind = step.outputs[output].kind
    run = _run(db, step.run_id)
    if digest in seen or depth <= 0:
        return ProvenanceNode(digest, "step", kind, step, output, datasets, repeated=True, run=run)
    inner = seen | {digest}
    inputs = tuple(
        (name, _node(db, input_digest, None, inner, depth - 1))
        for name, input_digest in sorted(step.inputs.items())
    )
    return ProvenanceNode(digest, "step", kind, step, output, datasets, inputs, run=run)


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
    """What a step node's execution used: params, code, where it ran, and from which commit."""
    step, run = node.step, node.run
    if step is None or node.repeated:
        return []
    params = ", ".join(f"{k}={v!r}" for k, v in sorted(step.params.items())) or "none"
    code = ", ".join(f"{label} {digest[:19]}" for label, digest in sorted(step.code.items()))
    commit = "-"
    if run is not None and run.git_commit:
        commit = run.git_commit[:10] + ("+dirty" if run.git_dirty else "")
    backend = (run.backend if run else "") or "-"
    return [
        f"params: {params}",
        f"code: {code or '-'}; commit {commit}",
        f"ran on {backend} at {step.host or '-'}; image {step.image or '-'}",
    ]


def _render_children(node: ProvenanceNode, indent: str, lines: list[str]) -> None:
    below = indent + ("│   " if node.inputs else "    ")
    lines.extend(f"{below}  {detail}" for detail in _details(node))
    for index, (name, child) in enumerate(node.inputs):
        last = index == len(node.inputs) - 1
        lines.append(f"{indent}{'└── ' if last else '├── '}{_label(child, name)}")
        _render_children(child, indent + ("    " if last else "│   "), lines)
