"""Garbage collection: remove objects that no root reaches and that are older than a grace
period.

Mark: every root digest, and for directory manifests every entry, is reachable. Sweep: every
other object whose mtime is older than `start - grace` is deleted, where `start` is the store's
clock when the collection began. The deletion re-checks the mtime at the last moment, so an
object written, or reused and touched, during the collection is never removed. Abandoned
temporary files older than the grace period (at least an hour) go too.

While runs are alive (`mlc.store.leases`), the cutoff moves back to before the oldest of them
started, whatever the grace: what they wrote and reused is kept although no lineage names it yet.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from mlc.store.base import Store
from mlc.store.digest import Digest, parse_digest
from mlc.store.errors import ManifestError, ObjectNotFoundError, StoreError
from mlc.store.leases import gc_cutoff, live_leases

_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
MIN_TMP_AGE = 3600.0


def parse_duration(text: str) -> float:
    """Seconds in a duration such as `7d`, `12h`, `30m`, `45s`, `2w`, or `1d12h`.

    >>> parse_duration("1d12h")
    129600.0
    """
    position, total = 0, 0.0
    text = text.strip()
    for match in _DURATION_RE.finditer(text):
        if match.start() != position:
            break
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        position = match.end()
    if not text or position != len(text):
        raise StoreError(
            f"invalid duration `{text}`: use a number and a unit s, m, h, d or w (e.g. `7d`)"
        )
    return total


@dataclass(frozen=True, slots=True)
class GCReport:
    """What a collection kept and removed."""

    kept: int
    removed: int
    bytes_freed: int
    dry_run: bool
    removed_digests: tuple[Digest, ...] = ()
    missing_roots: tuple[Digest, ...] = ()
    """Roots that are not in the store (nothing to keep; reported for information)."""
    too_young: int = 0
    """Unreachable objects kept because they are newer than the grace period."""
    tmp_removed: int = 0
    errors: dict[Digest, str] = field(default_factory=dict)
    live_runs: tuple[str, ...] = ()
    """Runs alive during the collection: nothing they wrote or reused was removed."""


def reachable(store: Store, roots: Iterable[Digest]) -> tuple[set[Digest], set[Digest]]:
    """(reachable digests, missing roots): the roots plus the entries of root manifests.

    Manifests list regular files only, so their entries need no further lookup: one request
    per root, not per file, on a remote store.
    """
    seen: set[Digest] = set()
    missing: set[Digest] = set()
    for root in {parse_digest(r) for r in roots}:
        seen.add(root)
        try:
            if store.kind(root) == "dir":
                seen.update(entry.digest for entry in store.read_manifest(root))
        except ObjectNotFoundError:
            missing.add(root)
        except ManifestError:
            continue  # a corrupt manifest keeps itself; verify reports it
    return seen, missing


def gc(store: Store, roots: Iterable[Digest], grace: float, *, dry_run: bool = False) -> GCReport:
    """Deletes every object not reachable from `roots` and older than `grace` seconds."""
    if grace < 0:
        raise StoreError("the grace period cannot be negative")
    start = store.now()
    # A live run's objects are kept whatever the grace: the lineage does not name them yet.
    running = live_leases(store, remove_dead=not dry_run)
    cutoff = gc_cutoff(start - grace, running)
    live, missing = reachable(store, roots)
    kept = removed = freed = too_young = 0
    removed_digests: list[Digest] = []
    for obj in store.iter_objects():
        if obj.digest in live:
            kept += 1
            continue
        if obj.mtime >= cutoff:
            kept += 1
            too_young += 1
            continue
        if dry_run or store.delete_object(obj.digest, unless_modified_since=cutoff):
            removed += 1
            freed += obj.size
            removed_digests.append(obj.digest)
        else:
            kept += 1
    if not dry_run:
        store.compact(unless_modified_since=cutoff)
    tmp_cutoff = min(start - max(grace, MIN_TMP_AGE), cutoff)
    tmp_removed = 0 if dry_run else store.clean_tmp(tmp_cutoff)
    return GCReport(
        kept=kept,
        removed=removed,
        bytes_freed=freed,
        dry_run=dry_run,
        removed_digests=tuple(removed_digests),
        missing_roots=tuple(sorted(missing)),
        too_young=too_young,
        tmp_removed=tmp_removed,
        live_runs=tuple(sorted(lease.run_id for lease in running)),
    )
