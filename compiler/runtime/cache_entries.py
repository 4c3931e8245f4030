"""Cache entries: which outputs a cache key produced, kept as records in the store.

An entry is the record `records/cache/<hex of key>.json`, created exactly once and only after
every output is in the store, so a failed or killed step never leaves an entry behind. Its
`parts` are the cache key parts, so a later miss can be explained. Because records are never
rewritten, an entry whose outputs were garbage-collected (or that expired) is superseded by a
new generation, `<hex>.1`, `<hex>.2`, …; a lookup takes the newest usable one. An entry a power
loss left empty or cut short (records are not flushed one by one) is unusable too, and said to
be. Records live in the store itself, so every machine and backend that shares the store
shares the cache.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from mlc.store.base import Store
from mlc.store.digest import Digest
from mlc.store.errors import (
    RecordExistsError,
    RecordNotFoundError,
    StoreError,
    UnreadableRecordError,
)

RECORD_KIND = "cache"
MAX_GENERATIONS = 64


@dataclass(frozen=True, slots=True)
class CachedOutput:
    """One output of a cache entry: its digest and kind (`file` or `dir`)."""

    digest: Digest
    kind: str


@dataclass(frozen=True, slots=True)
class CacheEntry:
    """The outputs one cache key produced, and where and when."""

    key: str
    parts: dict[str, Any]
    outputs: dict[str, CachedOutput]
    created_at: float
    run_id: str
    invocation: str

    def to_json(self) -> dict[str, Any]:
        """The record document."""
        return {
            "key": self.key,
            "parts": self.parts,
            "outputs": {n: {"digest": o.digest, "kind": o.kind} for n, o in self.outputs.items()},
            "created_at": self.created_at,
            "run_id": self.run_id,
            "invocation": self.invocation,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CacheEntry:
        """The entry a record holds."""
        return cls(
            key=data["key"],
            parts=data["parts"],
            outputs={
                name: CachedOutput(Digest(o["digest"]), o["kind"])
                for name, o in data["outputs"].items()
            },
            created_at=float(data["created_at"]),
            run_id=data["run_id"],
            invocation=data["invocation"],
        )


@dataclass(frozen=True, slots=True)
class CacheLookup:
    """What the store knows about a key: a usable entry, and why older entries were not."""

    entry: CacheEntry | None
    unusable: list[str] = field(default_factory=list)
    """Reasons the key's other entries cannot be used (missing outputs, expired)."""


def _record_key(key: str, generation: int) -> str:
    hexpart = key.partition(":")[2]
    return hexpart if generation == 0 else f"{hexpart}.{generation}"


@dataclass(frozen=True, slots=True)
class _Generations:
    """The entries a key's records hold, oldest first, and why the others cannot be read."""

    entries: list[CacheEntry]
    unreadable: list[str]

    @property
    def count(self) -> int:
        """How many generations exist (the next one's number)."""
        return len(self.entries) + len(self.unreadable)


def _entries(store: Store, key: str) -> _Generations:
    entries: list[CacheEntry] = []
    unreadable: list[str] = []
    for generation in range(MAX_GENERATIONS):
        try:
            data = store.get_record(RECORD_KIND, _record_key(key, generation))
            entries.append(CacheEntry.from_json(data))
        except RecordNotFoundError:
            break
        except UnreadableRecordError as exc:  # torn by a power loss: an entry we cannot use
            unreadable.append(f"a cache entry could not be read ({exc})")
        except (KeyError, TypeError, ValueError):
            unreadable.append("a cache entry could not be read (it is not one mlc writes)")
    return _Generations(entries, unreadable)


def _missing_outputs(store: Store, entry: CacheEntry) -> list[str]:
    return sorted(name for name, output in entry.outputs.items() if not store.has(output.digest))


def lookup(
    store: Store, key: str, *, expire_seconds: float | None = None, now: float | None = None
) -> CacheLookup:
    """The newest usable entry of a key; usable means every output is still in the store and,
    with `expire_seconds`, the entry is no older than that."""
    return _newest_usable(store, _entries(store, key), expire_seconds, now)


def _newest_usable(
    store: Store, generations: _Generations, expire_seconds: float | None, now: float | None
) -> CacheLookup:
    moment = time.time() if now is None else now
    unusable = list(generations.unreadable)
    for entry in reversed(generations.entries):
        missing = _missing_outputs(store, entry)
        if missing:
            names = ", ".join(f"`{n}`" for n in missing)
            unusable.append(f"the cached outputs ({names}) are no longer in the store")
            continue
        age = moment - entry.created_at
        if expire_seconds is not None and age > expire_seconds:
            unusable.append(
                f"the cache expired (cached {format_age(age)} ago, kept for "
                f"{format_age(expire_seconds)})"
            )
            continue
        return CacheLookup(entry, unusable)
    return CacheLookup(None, unusable)


def remember(store: Store, entry: CacheEntry, *, expire_seconds: float | None = None) -> bool:
    """Writes an entry as the next generation of its key, unless a usable entry exists (a
    rerun, or a concurrent run that cached the same key first). True if this entry was
    written. Looking first costs one failed read for a new key and saves writing (and then
    removing) a record that cannot be created for an existing one."""
    generations = _entries(store, entry.key)
    generation = generations.count
    while generation < MAX_GENERATIONS:
        if generations.entries and _newest_usable(store, generations, expire_seconds, None).entry:
            return False
        try:
            store.put_record(RECORD_KIND, _record_key(entry.key, generation), entry.to_json())
            return True
        except RecordExistsError:  # another writer took it: read what is there now
            generations = _entries(store, entry.key)
            generation = max(generation + 1, generations.count)
    raise StoreError(f"cache key {entry.key} has {MAX_GENERATIONS} unusable generations")


def find_entry(store: Store, key: str) -> CacheEntry | None:
    """The newest entry of a key, usable or not (to explain a miss by its parts)."""
    entries = _entries(store, key).entries
    return entries[-1] if entries else None


def format_age(seconds: float) -> str:
    """A duration for humans: `42s`, `5m`, `3h`, `2d`.

    >>> format_age(42), format_age(300), format_age(3 * 3600), format_age(2 * 86400)
    ('42s', '5m', '3h', '2d')
    """
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit}"
    return f"{seconds:.0f}s"
