"""`mlc lineage`: the provenance tree of an output, back to the pinned datasets.

```
mlc lineage sha256:…                 by digest (a unique prefix will do), from the latest run that made it
mlc lineage RUN:STEP.OUTPUT          that run's own: a cache hit there names the run that made it
mlc lineage … --format json          the same tree as one JSON document
mlc lineage … --format openlineage   one OpenLineage run event per step, a line each
```

For each step on the path: the params it read, its code digests and the run's git commit (and
dirty state), where it ran (backend, host) and its image; at the leaves, the datasets with the
digests the runs were pinned to.
"""

from __future__ import annotations

import argparse
import json

from mlc.cli.data import add_store_option, fail, open_store_for, print_json
from mlc.cli.digests import is_digest_prefix
from mlc.cli.step_lookup import step_with_output
from mlc.store import StoreError, is_digest, parse_digest
from mlc.store.lineage import (
    Lineage,
    LineageError,
    ProvenanceNode,
    open_lineage,
    render_tree,
)


def configure(parser: argparse.ArgumentParser) -> None:
    """Sets up `mlc lineage`."""
    parser.add_argument(
        "artifact",
        metavar="DIGEST|RUN:STEP.OUTPUT",
        help="an output: the run, step and output that made or reused it (that run's own "
        "provenance), or its digest (short is fine; from the latest run that made it)",
    )
    add_store_option(parser)
    parser.add_argument(
        "--format",
        choices=("human", "json", "openlineage"),
        default="human",
        help="human: the tree to read (default); json: the same, one document; openlineage: "
        "one OpenLineage run event per step on the tree, one JSON document a line",
    )


def provenance_of(lineage: Lineage, text: str) -> ProvenanceNode:
    """The tree of what the user typed: a digest or a unique prefix of one (with or without
    `sha256:`), from the run that last made it; or `RUN:STEP.OUTPUT`, from that run's own
    execution of the step (a cache hit there names the run that made the output). A digest no
    run made or read is an error (`LineageError`)."""
    if is_digest_prefix(text):
        prefix = text if text.startswith("sha256:") else f"sha256:{text}"
        if not is_digest(prefix):
            return lineage.provenance(lineage.complete_digest(prefix))
        try:
            digest = lineage.complete_digest(parse_digest(prefix))
        except LineageError:
            raise LineageError(
                f"no run made or read {prefix}: it has no lineage (see `mlc runs`; data added "
                "with `mlc data add` has none until a run reads it)"
            ) from None
        return lineage.provenance(digest)
    run_id, sep, rest = text.partition(":")
    step, dot, output = rest.rpartition(".")
    if not sep or not dot or not run_id or not step or not output:
        raise StoreError(f"`{text}` is neither a digest nor of the form RUN:STEP.OUTPUT")
    return lineage.step_provenance(step_with_output(lineage, run_id, step, output), output)


def run(args: argparse.Namespace) -> int:
    """Prints the provenance tree."""
    try:
        store = open_store_for(args)
        try:
            lineage = open_lineage(store)
            try:
                lineage.sync()
                tree = provenance_of(lineage, args.artifact)
            finally:
                lineage.close()
            store_uri = store.uri
        finally:
            store.close()
    except StoreError as exc:
        return fail(str(exc))
    if args.format == "openlineage":
        from mlc import __version__
        from mlc.store.lineage.openlineage import run_events

        for event in run_events(tree, store_uri, __version__):
            print(json.dumps(event, sort_keys=True, ensure_ascii=False))
    elif args.format == "json":
        print_json(tree.to_json())
    else:
        for line in render_tree(tree):
            print(line)
    return 0
