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

from mlc.runtime.cache_entries import CacheEntry, CacheLookup, find_entry, lookup
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


@dataclass(frozen=True, slots=True)
class PendingDecision:
    """A decision that waits for the store: whether the key has a usable entry and, for a miss
    that only the earlier key's parts can explain, that entry. `ask` reads the store and
    nothing else, so it may run on any thread (the coordinator asks a remote store many keys
    at once); `conclude` turns the answer into the decision."""

    key: str
    parts: CacheKeyParts
    expire_seconds: float | None
    history: list[str] | None
    """The reasons for a miss that the lineage alone gives (the invocation never ran, or ran
    with this very key), or None when they need the earlier key's entry."""
    earlier_key: str | None = None

    def ask(self, store: Store) -> StoreAnswer:
        """The store's answer (one or two reads of records; more for superseded entries)."""
        found = lookup(store, self.key, expire_seconds=self.expire_seconds)
        earlier: CacheEntry | None = None
        if found.entry is None and not found.unusable and self.earlier_key is not None:
            try:
                earlier = find_entry(store, self.earlier_key)
            except StoreError:
                earlier = None
        return StoreAnswer(found, earlier)

    def conclude(self, answer: StoreAnswer) -> Decision:
        """Cached, or run with the reasons."""
        if answer.found.entry is not None:
            return Decision("cached", [], self.key, answer.found.entry)
        reasons = list(answer.found.unusable)
        if not reasons:
            reasons = self._miss_reasons(answer.earlier) or ["no cache entry has this key"]
        return Decision("run", reasons, self.key)

    def _miss_reasons(self, earlier: CacheEntry | None) -> list[str]:
        if self.history is not None:
            return self.history
        if earlier is None:
            return ["its cache key changed (the earlier key's parts are not in the store)"]
        return explain_change(earlier.parts, self.parts.to_json()) or ["its cache key changed"]


@dataclass(frozen=True, slots=True)
class StoreAnswer:
    """What the store knows for a `PendingDecision`."""

    found: CacheLookup
    earlier: CacheEntry | None


def start_decision(
    invocation: Invocation,
    parts: CacheKeyParts,
    *,
    lineage: Lineage | None,
    pipeline: str,
    rerun: Collection[str] = (),
    current_run: str | None = None,
) -> Decision | PendingDecision:
    """The decision when it needs no store (`--rerun`, caching disabled), else what to ask the
    store, with a miss's history read from the lineage (compared with its last success)."""
    key = parts.key
    policy = invocation.step.cache
    if wants_rerun(invocation, rerun):
        return Decision("run", ["--rerun asked for it"], key)
    if not policy.enabled:
        return Decision("run", ["caching is disabled for this step"], key)
    history: list[str] | None = None
    earlier_key: str | None = None
    if lineage is None:
        history = ["no earlier execution is known"]
    else:
        previous = last_success(lineage, pipeline, invocation.lineage_id, before_run=current_run)
        if previous is None:
            history = ["it has not run before"]
        elif previous.cache_key == key:
            history = []
        elif previous.cache_key:
            earlier_key = previous.cache_key
    return PendingDecision(key, parts, policy.expire_seconds, history, earlier_key)


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
    started = start_decision(
        invocation, parts, lineage=lineage, pipeline=pipeline, rerun=rerun, current_run=current_run
    )
    if isinstance(started, Decision):
        return started
    return started.conclude(started.ask(store))
