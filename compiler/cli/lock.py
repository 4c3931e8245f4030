"""`mlc lock SPEC`: resolve datasets pinned by a tag or `latest` into `mlc.lock` next to the spec.

```
mlc lock SPEC [--check] [--target NAME] [--param K=V ...] [--store URI] [--format human|json]
```

Each such dataset is snapshotted into the store (so the locked version can be used later even
if the data moves on) and written with its uri, version and digest, sorted by name. Datasets
pinned by digest need no lock. `--check` changes nothing and exits 1 if the lock would change
(for CI). One `mlc.lock` belongs to the spec(s) of one directory.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mlc.cli.apply import (
    UserError,
    load_document,
    open_run_store,
    print_error,
    user_errors,
)
from mlc.store.io_errors import describe_os_error

if TYPE_CHECKING:
    from mlc.ir.model import IRDocument
    from mlc.runtime.lockfile import LockedDataset
    from mlc.store.base import Store


def configure(parser: argparse.ArgumentParser) -> None:
    """Sets up `mlc lock`."""
    parser.add_argument("spec", help="the .mlspec file, or a directory holding one")
    parser.add_argument(
        "--check", action="store_true", help="change nothing; exit 1 if mlc.lock is not up to date"
    )
    from mlc.cli.backends import TARGET_HELP
    from mlc.cli.data import STORE_HELP

    parser.add_argument("--target", metavar="NAME", help=TARGET_HELP)
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="bind a pipeline param (repeatable)",
    )
    parser.add_argument("--pipeline", help="the pipeline to use when a file declares several")
    parser.add_argument("--store", metavar="URI", help=STORE_HELP)
    parser.add_argument(
        "--format",
        choices=("human", "json"),
        default="human",
        help="human: text to read (default); json: one document for programs",
    )


def resolve_lock(document: IRDocument, store: Store) -> list[LockedDataset]:
    """Snapshots every dataset pinned by a tag or `latest`; its entries, sorted by name."""
    from mlc.runtime.datasets import snapshot_dataset
    from mlc.runtime.lockfile import LockedDataset, version_label

    entries = []
    for dataset in document.pipeline.datasets:
        if dataset.version.kind == "digest":
            continue
        digest, _ = snapshot_dataset(store, dataset, document.base_dir)
        entries.append(LockedDataset(dataset.name, dataset.uri, version_label(dataset), digest))
    return sorted(entries, key=lambda entry: entry.name)


@dataclass(frozen=True, slots=True)
class LockWrite:
    """What `mlc apply` writes into `mlc.lock` before it runs: the lock as it leaves it, and
    each entry it adds or updates (with the one it replaces)."""

    path: Path
    entries: dict[str, LockedDataset]
    changes: list[tuple[LockedDataset | None, LockedDataset]]

    def notes(self, *, done: bool = True) -> list[str]:
        """One line per change for the user: what apply did (`done`), or what it will do."""
        notes = []
        for before, entry in self.changes:
            if done:
                verb = "added" if before is None else "updated"
            else:
                verb = "`mlc apply` will add" if before is None else "`mlc apply` will update"
            notes.append(
                f"{self.path.name}: {verb} `{entry.name}` ({entry.version}) = {entry.digest}"
                + ("" if before is None else f" (was {before.digest})")
            )
        return notes

    def to_json(self) -> list[dict[str, str | None]]:
        """The changes for `--format json`."""
        return [
            {
                "dataset": entry.name,
                "change": "added" if before is None else "updated",
                "version": entry.version,
                "digest": entry.digest,
                "old": None if before is None else before.digest,
            }
            for before, entry in self.changes
        ]


def lock_write(
    document: IRDocument, store: Store, *, locked: bool = False, update: bool = False
) -> LockWrite:
    """What `mlc apply` writes into `mlc.lock` before it runs, as lock files do elsewhere
    (cargo, npm), without writing it: a dataset pinned by a tag or `latest` that the lock has
    no entry for (or an entry for an older declaration of it) is resolved to its current data
    (snapshotted into the store); an existing entry is used as it is; `update` re-resolves
    every entry (`mlc lock`'s work); `locked` (for CI) refuses to write, raising `UserError`
    (not with `update`). Entries of datasets this spec does not declare are left alone (one
    lock serves the specs of a directory)."""
    from mlc.runtime.lockfile import lock_path, read_lock, version_label

    path = lock_path(document)
    moving = [d for d in document.pipeline.datasets if d.version.kind != "digest"]
    if not moving:
        return LockWrite(path, {}, [])
    old = read_lock(path)
    stale = [
        d
        for d in moving
        if update
        or d.name not in old
        or (old[d.name].uri, old[d.name].version) != (d.uri, version_label(d))
    ]
    if stale and locked:
        names = ", ".join(f"`{d.name}` ({version_label(d)})" for d in stale)
        raise UserError(
            f"{path.name} has no up-to-date entry for {names}, and --locked forbids writing "
            f"{path}\nhelp: run `mlc lock` on the spec and commit {path.name}"
        )
    from mlc.runtime.datasets import snapshot_dataset
    from mlc.runtime.errors import PreflightError
    from mlc.runtime.lockfile import LockedDataset

    entries = dict(old)
    changes: list[tuple[LockedDataset | None, LockedDataset]] = []
    for dataset in stale:
        try:
            digest, _ = snapshot_dataset(store, dataset, document.base_dir)
        except PreflightError:
            continue  # the run's preflight reports it, with every other problem
        entry = LockedDataset(dataset.name, dataset.uri, version_label(dataset), digest)
        before = old.get(dataset.name)
        if before != entry:
            changes.append((before, entry))
            entries[dataset.name] = entry
    return LockWrite(path, entries, changes)


def lock_before_apply(
    document: IRDocument, store: Store, *, locked: bool = False, update: bool = False
) -> list[str]:
    """Writes what `lock_write` finds missing into `mlc.lock`; returns what it did, one line
    per dataset, for the user."""
    from mlc.runtime.lockfile import render_lock, write_lock

    write = lock_write(document, store, locked=locked, update=update)
    if write.changes:
        try:
            write_lock(write.path, render_lock(write.entries.values(), Path(document.spec).name))
        except OSError as exc:
            raise UserError(f"cannot write {write.path}: {describe_os_error(exc)}") from None
    return write.notes()


def describe_changes(
    old: dict[str, LockedDataset], new: list[LockedDataset]
) -> list[dict[str, str | None]]:
    """Per dataset: `added`, `changed`, `unchanged` or `removed`, with old and new digests."""
    changes: list[dict[str, str | None]] = []
    seen = set()
    for entry in new:
        seen.add(entry.name)
        before = old.get(entry.name)
        if before is None:
            change = "added"
        elif (before.digest, before.uri, before.version) != (
            entry.digest,
            entry.uri,
            entry.version,
        ):
            change = "changed"
        else:
            change = "unchanged"
        changes.append(
            {
                "dataset": entry.name,
                "change": change,
                "old": before.digest if before else None,
                "new": entry.digest,
            }
        )
    for name in sorted(set(old) - seen):
        changes.append({"dataset": name, "change": "removed", "old": old[name].digest, "new": None})
    return changes


def run(args: argparse.Namespace) -> int:
    """Writes (or with `--check`, verifies) the lock; 0, or 1."""
    from mlc.runtime.lockfile import lock_path, read_lock, render_lock, write_lock

    try:
        document = load_document(args)
        store = open_run_store(args, document)
    except UserError as exc:
        return print_error(str(exc))
    try:
        with user_errors():
            path = lock_path(document)
            entries = resolve_lock(document, store)
            old = read_lock(path)
    except UserError as exc:
        return print_error(str(exc))
    finally:
        store.close()
    text = render_lock(entries, Path(document.spec).name)
    current = path.read_text(encoding="utf-8") if path.exists() else None
    up_to_date = current == text or (not entries and current is None)
    changes = describe_changes(old, entries)
    if not args.check and not up_to_date:
        try:
            write_lock(path, text)
        except OSError as exc:
            return print_error(f"cannot write {path}: {describe_os_error(exc)}")
    if args.format == "json":
        print(
            json.dumps({"lock": str(path), "up_to_date": up_to_date, "datasets": changes}, indent=2)
        )
    else:
        _print_changes(path, changes, up_to_date, check=args.check)
    return 1 if args.check and not up_to_date else 0


def _print_changes(
    path: Path, changes: list[dict[str, str | None]], up_to_date: bool, *, check: bool
) -> None:
    if not changes:
        print(f"no dataset is pinned by a tag or `latest`; {path} is not needed")
        return
    for change in changes:
        new, old = change["new"] or "", change["old"] or ""
        if change["change"] == "changed":
            detail = f"{old[:19]} → {new[:19]}"
        elif change["change"] == "removed":
            detail = f"(was {old[:19]})"
        else:
            detail = new[:19]
        print(f"  {change['dataset']}: {change['change']} {detail}")
    if up_to_date:
        print(f"{path} is up to date")
    elif check:
        print(f"{path} is out of date; run `mlc lock` to update it")
    else:
        print(f"wrote {path}")
