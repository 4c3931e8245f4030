"""Cache lookups on a remote store are made many at once, and still decide steps in order.

A remote store's read waits on the network, so the coordinator asks a pool of threads for the
cache entries of every ready step instead of reading them one after another; the answers are
handed back in the order asked. A local store is read on the coordinator's own thread.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from mlc.coordinator.lookups import CacheLookups
from mlc.runtime.cache_key import CacheKeyParts
from mlc.runtime.decisions import PendingDecision
from mlc.store.base import Store
from mlc.store.uri import open_store

from tests.coordinator.fake_executor import FakeExecutor
from tests.coordinator.test_coordinator import run
from tests.runtime.builders import document, sh, step

STEPS = 6


class GatedRemoteStore:
    """A local store that says it is remote, whose first `parties` cache reads each wait until
    all of them are being made at once (they fail, rather than hang, when made one by one)."""

    is_remote = True

    def __init__(self, inner: Store, parties: int) -> None:
        self.inner = inner
        self.barrier = threading.Barrier(parties, timeout=30)
        self.gated = parties
        self.lock = threading.Lock()
        self.threads: set[str] = set()

    def get_record(self, kind: str, key: str) -> dict[str, Any]:
        with self.lock:
            gate = kind == "cache" and self.gated > 0
            self.gated -= gate
            self.threads.add(threading.current_thread().name)
        if gate:
            self.barrier.wait()
        return self.inner.get_record(kind, key)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@pytest.fixture
def local_store(tmp_path: Path) -> Iterator[Store]:
    opened = open_store(tmp_path / "store")
    yield opened
    opened.close()


def test_a_remote_store_is_asked_for_every_ready_step_at_once_and_steps_start_in_order(
    local_store: Store, tmp_path: Path
) -> None:
    store = GatedRemoteStore(local_store, STEPS)
    executor = FakeExecutor(store)  # type: ignore[arg-type]
    names = [f"s{i}" for i in range(STEPS)]
    report = run(executor, document(tmp_path, [step(name, sh("true")) for name in names]))
    assert report.status == "succeeded", [s.error for s in report.steps]
    assert [attempt.name for attempt in executor.started] == names
    assert any(name.startswith("mlc-lookup") for name in store.threads)


def test_a_local_store_is_read_on_the_coordinators_thread(local_store: Store) -> None:
    woken: list[None] = []
    lookups: CacheLookups[str] = CacheLookups(local_store, lambda: woken.append(None))
    for name in ("a", "b"):
        lookups.ask(name, pending(name))
    assert [owner for owner, _, _ in lookups.answered()] == ["a", "b"]
    assert len(lookups) == 0
    assert woken == []  # answered at once: nothing to wake


def test_answers_are_handed_back_in_the_order_asked_even_when_a_later_one_comes_first(
    local_store: Store,
) -> None:
    first_may_answer = threading.Event()
    second_answered = threading.Event()

    class OrderedStore(GatedRemoteStore):
        def get_record(self, kind: str, key: str) -> dict[str, Any]:
            if key.startswith(pending("a").key.partition(":")[2]):
                assert first_may_answer.wait(30)
            else:
                second_answered.set()
            return self.inner.get_record(kind, key)

    lookups: CacheLookups[str] = CacheLookups(OrderedStore(local_store, 0), lambda: None)  # type: ignore[arg-type]
    lookups.ask("a", pending("a"))
    lookups.ask("b", pending("b"))
    try:
        assert second_answered.wait(30)
        assert lookups.answered() == []  # `b` is answered, but `a` is asked first
        first_may_answer.set()
        answered: list[str] = []
        while len(answered) < 2:
            answered += [owner for owner, _, _ in lookups.answered()]
        assert answered == ["a", "b"]
    finally:
        first_may_answer.set()
        lookups.close()


def test_the_lookups_of_one_step_are_handed_back_together(local_store: Store) -> None:
    # (A `foreach` step's items then start in one pass: one Kubernetes Indexed Job.)
    last_may_answer = threading.Event()
    read: set[str] = set()
    names = {pending(name).key.partition(":")[2]: name for name in "abcd"}

    class HeldStore(GatedRemoteStore):
        def get_record(self, kind: str, key: str) -> dict[str, Any]:
            name = names[key.partition(".")[0]]
            if name == "c":
                assert last_may_answer.wait(30)
            try:
                return self.inner.get_record(kind, key)
            finally:
                read.add(name)

    woken: list[None] = []  # one per answer, once it is in
    lookups: CacheLookups[str] = CacheLookups(HeldStore(local_store, 0), lambda: woken.append(None))  # type: ignore[arg-type]
    step = object()
    try:
        for name in ("a", "b", "c"):
            lookups.ask(name, pending(name), group=step)
        lookups.ask("d", pending("d"))
        assert wait_for(lambda: read >= {"a", "b", "d"} and len(woken) == 3)
        assert lookups.answered() == []  # `a`, `b` (and `d`) are answered, `c` is not
        last_may_answer.set()
        answered: list[str] = []
        while len(answered) < 4:
            answered += [owner for owner, _, _ in lookups.answered()]
        assert answered == ["a", "b", "c", "d"]
    finally:
        last_may_answer.set()
        lookups.close()


def wait_for(condition: Callable[[], bool]) -> bool:
    deadline = time.monotonic() + 30
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def pending(name: str) -> PendingDecision:
    parts = CacheKeyParts(
        command={"run": name},
        code={},
        env={},
        secrets={},
        image=None,
        image_digest=None,
        inputs={},
        params={},
        item={},
        outputs={},
        run=None,
    )
    return PendingDecision(parts.key, parts, None, ["it has not run before"])
