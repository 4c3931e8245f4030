"""Deciding whether an invocation is cached or must run, and saying why in words.

The same decision serves `mlc plan` (before a run, from what the store already knows) and every
backend at run time (once the inputs' digests are known). A miss is explained against the last
successful execution of the same invocation recorded in lineage: "param `n_estimators`
changed (100 → 200)", "input `data` changed (sha256:ab… → sha256:cd…)", "code `module steps`
changed", "the cache expired", "it has not run before".
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Literal

from mlc.runtime.cache_entries import CacheEntry, find_entry, lookup
from mlc.runtime.cache_key import CacheKeyParts, explain_change
from mlc.runtime.invocation import Invocation
from mlc.store.base import Store
from mlc.store.errors import StoreError
from mlc.store.lineage import Lineage, StepExecution

RERUN_ALL = "all"

Action = Literal["cached", "run", "skip"]


@dataclass(frozen=True, slots=True)
class Decision:
    """What happens to an invocation: `cached` (with its entry), `run` or `skip`, and why."""

    action: Action
    reasons: list[str] = field(default_factory=list)
    cache_key: str | None = None
    entry: CacheEntry | None = None


def wants_rerun(invocation: Invocation, rerun: Collection[str]) -> bool:
    """True when `--rerun` names the step (or one item of it), or `all`."""
    return RERUN_ALL in rerun or invocation.step.name in rerun or invocation.name in rerun


def last_success(
    lineage: Lineage, pipeline: str, lineage_id: str, *, before_run: str | None = None
) -> StepExecution | None:
    """The latest execution of an invocation that ran or was a cache hit."""
    return lineage.last_success(pipeline, lineage_id, exclude_run=before_run)


def explain_miss(
    store: Store,
    lineage: Lineage | None,
    pipeline: str,
    invocation: Invocation,
    parts: CacheKeyParts,
    *,
    current_run: str | None = None,
) -> list[str]:
    """Why an invocation's key has no usable entry, compared with its last success."""
    if lineage is None:
        return ["no earlier execution is known"]
    previous = last_success(lineage, pipeline, invocation.lineage_id, before_run=current_run)
    if previous is None:
        return ["it has not run before"]
    if previous.cache_key == parts.key:
        return []
    try:
        entry = find_entry(store, previous.cache_key) if previous.cache_key else None
    except StoreError:
        entry = None
    if entry is None:
        return ["its cache key changed (the earlier key's parts are not in the store)"]
    return explain_change(entry.parts, parts.to_json()) or ["its cache key changed"]


def decide(
    invocation: Invocation,
    parts: CacheKeyParts,
    *,
    store: Store,
    lineage: Lineage | None,
    pipeline: str,
    rerun: Collection[str] = (),
    current_run: str | None = None,
) -> Decision:
    """Cached or run, with the reasons for running."""
    key = parts.key
    policy = invocation.step.cache
    if wants_rerun(invocation, rerun):
        return Decision("run", ["--rerun asked for it"], key)
    if not policy.enabled:
        return Decision("run", ["caching is disabled for this step"], key)
    found = lookup(store, key, expire_seconds=policy.expire_seconds)
    if found.entry is not None:
        return Decision("cached", [], key, found.entry)
    reasons = list(found.unusable)
    if not reasons:
        reasons = explain_miss(
            store, lineage, pipeline, invocation, parts, current_run=current_run
        ) or ["no cache entry has this key"]
    return Decision("run", reasons, key)
