"""Run leases: a live run's lease is seen alive, on its machine through its lock and from
elsewhere through its age; a killed run's is dead; `gc` keeps what live runs use and removes
dead leases."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest
from mlc.store import Store, gc, open_store
from mlc.store.leases import (
    EXPIRE_SECONDS,
    Lease,
    RunLease,
    lease_alive,
    live_leases,
    live_run_ids,
    read_leases,
)
from mlc.store.lineage import current_host

RUN = "20261204T000000.000Z-aaaaaa"


def test_a_held_lease_is_alive_and_gone_once_released(store: Store) -> None:
    lease = RunLease(store, RUN)
    lease.acquire()
    try:
        assert live_run_ids(store) == {RUN}
    finally:
        lease.release()
    assert read_leases(store) == []
    assert live_run_ids(store) == set()


def test_the_lease_of_a_killed_process_is_dead_at_once(tmp_path: Path) -> None:
    # On its own machine a lease is judged by its holder's lock, whatever the store: a local
    # store, which the holder opens by path, is enough.
    address = str(tmp_path / "store")
    store = open_store(address)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from mlc.store import open_store\n"
            "from mlc.store.leases import RunLease\n"
            f"RunLease(open_store({address!r}), {RUN!r}).acquire()\n"
            "print('held', flush=True)\n"
            "time.sleep(600)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        assert live_run_ids(store) == {RUN}
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert [lease.run_id for lease in read_leases(store)] == [RUN]  # left behind by kill -9
    assert live_run_ids(store) == set()
    gc(store, [], grace=3600.0)  # removes it, and its lock file
    assert read_leases(store) == []
    assert list((Path(store.local_dir) / "leases").iterdir()) == []


def test_seen_from_another_machine_a_lease_lives_while_it_is_renewed(store: Store) -> None:
    renewed = store.put_lease(
        RUN, {"run_id": RUN, "host": "elsewhere", "pid": 1, "started_at": store.now()}
    )
    (lease,) = read_leases(store)
    assert lease == Lease(RUN, "elsewhere", 1, lease.started_at, renewed)
    assert lease_alive(store, lease, now=renewed + EXPIRE_SECONDS - 1)
    assert not lease_alive(store, lease, now=renewed + EXPIRE_SECONDS + 1)


@pytest.fixture
def later(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """The store's clock runs 5 s ahead, so objects just written are past a grace of 0 even on
    stores whose timestamps have a resolution of one second (S3)."""
    now = store.now
    monkeypatch.setattr(store, "now", lambda: now() + 5)


@pytest.mark.usefixtures("later")
def test_gc_keeps_what_a_live_run_wrote_whatever_the_grace(store: Store) -> None:
    lease = RunLease(store, RUN)
    lease.acquire()
    try:
        written = store.put_bytes(b"an output no lineage names yet")
        during = gc(store, [], grace=0.0)
        assert store.has(written)
        assert during.live_runs == (RUN,)
    finally:
        lease.release()
    after = gc(store, [], grace=0.0)
    assert written in after.removed_digests
    assert after.live_runs == ()


def test_gc_removes_the_leases_of_dead_runs(store: Store) -> None:
    gone = subprocess.Popen(["true"])
    gone.wait()
    # This machine, no lock file, its process gone: as a run killed before it could lock.
    store.put_lease(
        RUN, {"run_id": RUN, "host": current_host(), "pid": gone.pid, "started_at": store.now()}
    )
    assert live_leases(store) == []
    report = gc(store, [], grace=0.0, dry_run=True)
    assert read_leases(store) != []  # a dry run changes nothing
    report = gc(store, [], grace=0.0)
    assert report.live_runs == ()
    assert read_leases(store) == []
