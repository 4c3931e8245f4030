"""The coordinator's cache lookups: many at once on a remote store, in order either way.

Deciding whether an invocation is cached takes a read of the store per key (a request of tens
of milliseconds on S3), so a thousand ready steps decided one after another would wait tens of
seconds before the first starts. On a remote store the lookups are made on a pool of threads
while the coordinator goes on; on a local store (a file read) they are made at once, on the
coordinator's thread, where a thread would cost more than it saves. Either way the answers are
handed back in the order the lookups were asked, so steps start in pipeline order, and the
lookups of one step's units are handed back together, so that a `foreach` step's items start
in one pass (one Kubernetes Indexed Job for all of them).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Generic, TypeVar

from mlc.runtime.decisions import PendingDecision, StoreAnswer
from mlc.store.base import Store

LOOKUP_THREADS = 16
"""Lookups in flight at once on a remote store (each mostly waits on the network)."""

T = TypeVar("T")


class CacheLookups(Generic[T]):
    """Lookups asked for `T`s (the coordinator's units), answered in the order asked."""

    def __init__(self, store: Store, on_answer: Callable[[], None]) -> None:
        self.store = store
        self.on_answer = on_answer
        """Called (on a pool thread) when an answer arrives: the coordinator's wake-up."""
        self._asked: deque[_Group[T]] = deque()
        """Lookups asked, in groups handed back whole."""
        self._pool: ThreadPoolExecutor | None = None

    def __len__(self) -> int:
        """Groups of lookups asked and not yet handed back."""
        return len(self._asked)

    def ask(self, owner: T, pending: PendingDecision, *, group: object = None) -> None:
        """Starts the lookup of `pending` for `owner`; lookups asked one after another with
        the same `group` (not None) are handed back together."""
        future: Future[StoreAnswer]
        if self.store.is_remote:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(LOOKUP_THREADS, thread_name_prefix="mlc-lookup")
            future = self._pool.submit(pending.ask, self.store)
            future.add_done_callback(lambda _: self.on_answer())
        else:
            future = Future()
            try:
                future.set_result(pending.ask(self.store))
            except BaseException as exc:  # handed back, and raised, in order like an answer
                future.set_exception(exc)
        last = self._asked[-1] if self._asked else None
        if last is None or group is None or last.key is not group:
            last = _Group(group)
            self._asked.append(last)
        last.lookups.append((owner, pending, future))

    def answered(self) -> list[tuple[T, PendingDecision, StoreAnswer]]:
        """The answers ready now, in the order asked, up to the first group still awaited. A
        lookup that failed raises its error here (the store could not be read)."""
        ready: list[tuple[T, PendingDecision, StoreAnswer]] = []
        while self._asked and self._asked[0].done():
            for owner, pending, future in self._asked.popleft().lookups:
                ready.append((owner, pending, future.result()))
        return ready

    def close(self) -> None:
        """Drops the lookups still awaited (the run ended or was cancelled)."""
        self._asked.clear()
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None


class _Group(Generic[T]):
    """Lookups handed back together, and how many of them are known to be answered."""

    def __init__(self, key: object) -> None:
        self.key = key
        self.lookups: list[tuple[T, PendingDecision, Future[StoreAnswer]]] = []
        self.answered = 0

    def done(self) -> bool:
        """Whether every lookup is answered (each is looked at once it is, not at every call)."""
        while self.answered < len(self.lookups) and self.lookups[self.answered][2].done():
            self.answered += 1
        return self.answered == len(self.lookups)
