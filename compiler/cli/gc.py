"""`mlc gc`: remove store objects that no root refers to and that are older than a grace period.

Roots: every digest written in `mlc.lock` (if present), the outputs, inputs and stored logs of
the most recent `--keep-runs` runs of each pipeline in the lineage database, and `--keep DIGEST`.
"""

from __future__ import annotations

import argparse
import os

from mlc.cli.data import add_format_option, add_store_option, fail, open_store_for, print_json
from mlc.cli.digests import resolve_digest
from mlc.store import Digest, StoreError, find_digests, gc, parse_digest, parse_duration
from mlc.store.base import Store
from mlc.store.display import format_bytes, plural
from mlc.store.lineage import open_lineage

SAFE_GRACE = 3600.0


def configure(parser: argparse.ArgumentParser) -> None:
    """Sets up `mlc gc`."""
    add_store_option(parser)
    add_format_option(parser)
    parser.add_argument(
        "--grace", default="7d", help="keep unreachable objects younger than this (default 7d)"
    )
    parser.add_argument("--dry-run", action="store_true", help="report, delete nothing")
    parser.add_argument(
        "--keep", action="append", default=[], metavar="DIGEST", help="an extra root (repeat)"
    )
    parser.add_argument(
        "--keep-runs",
        type=int,
        default=10,
        metavar="N",
        help="keep what the N latest runs of each pipeline used and made (default 10)",
    )
    parser.add_argument("--lock", default="mlc.lock", help="lock file whose digests are roots")


def collect_roots(
    args: argparse.Namespace, lineage_digests: set[Digest], store: Store | None = None
) -> set[Digest]:
    """Roots from the lock file, the lineage database and `--keep` (short digests are
    completed against `store`)."""
    roots = set(lineage_digests)
    roots.update(resolve_digest(store, d) if store else parse_digest(d) for d in args.keep)
    if os.path.isfile(args.lock):
        with open(args.lock, encoding="utf-8") as handle:
            roots.update(find_digests(handle.read()))
    return roots


def run(args: argparse.Namespace) -> int:
    """Collects garbage and prints what was (or would be) removed."""
    try:
        grace = parse_duration(args.grace)
        if args.keep_runs < 0:
            return fail("--keep-runs cannot be negative")
        store = open_store_for(args)
        try:
            lineage = open_lineage(store)
            try:
                lineage.sync()
                roots = collect_roots(args, lineage.recent_digests(args.keep_runs), store)
            finally:
                lineage.close()
            report = gc(store, roots, grace, dry_run=args.dry_run)
        finally:
            store.close()
    except StoreError as exc:
        return fail(str(exc))
    except OSError as exc:
        return fail(f"cannot read {exc.filename}: {exc.strerror}")
    if args.format == "json":
        print_json(
            {
                "dry_run": report.dry_run,
                "kept": report.kept,
                "removed": report.removed,
                "bytes_freed": report.bytes_freed,
                "removed_digests": list(report.removed_digests),
                "missing_roots": list(report.missing_roots),
                "too_young": report.too_young,
                "roots": len(roots),
                "live_runs": list(report.live_runs),
            }
        )
        return 0
    if report.live_runs:
        shown = ", ".join(report.live_runs)
        print(
            f"note: kept what {plural(len(report.live_runs), 'running run')} use, whatever the "
            f"grace: {shown}"
        )
    if grace < SAFE_GRACE and not args.dry_run:
        print(
            "warning: a grace period under 1h may remove objects that a run starting during the "
            "collection reuses (runs already going are protected)"
        )
    verb = "would remove" if report.dry_run else "removed"
    print(
        f"{verb} {plural(report.removed, 'object')} ({format_bytes(report.bytes_freed)}); kept "
        f"{report.kept} ({report.too_young} unreachable but younger than {args.grace}); "
        f"{plural(len(roots), 'root')}"
    )
    for digest in report.missing_roots:
        print(f"note: root {digest} is not in the store")
    return 0
