"""Run leases: which runs of a store are alive, for `mlc runs` and for `mlc gc`.

A run holds a lease from before it writes anything until after it recorded its end:

- in the store, `leases/<run id>.json` (run id, host, pid, when it started on the store's
  clock), rewritten every `RENEW_SECONDS` so that other machines see it is alive;
- on its own machine, an exclusive `flock` on `<local dir>/leases/<run id>.lock`, which the
  kernel releases the moment the process dies, even by `kill -9`.

A lease is alive when, on the machine that holds it, its lock is held (a host without the
lock file asks whether the process exists), and, seen from another machine, when it was
rewritten less than `EXPIRE_SECONDS` ago. A run that lineage records as `running` without a
live lease is `interrupted`; `mlc gc` keeps every object a live run may be using (see
`gc_cutoff`) and removes dead leases.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import threading
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from mlc.store.base import Store
from mlc.store.errors import StoreError
from mlc.store.io_errors import describe_os_error

if TYPE_CHECKING:  # (the lineage is only read by `as_seen_now`, whose caller has it)
    from mlc.store.lineage.model import Run

RENEW_SECONDS = 30.0
EXPIRE_SECONDS = 180.0
"""A lease not rewritten for this long is dead, seen from another machine."""
REUSE_WINDOW_SECONDS = 3600.0 + 300.0
"""How far before a live run's start `mlc gc` keeps objects: an object the run reuses has its
mtime refreshed only when it is older than the stores' touch interval (one hour), plus a margin
for clocks."""


@dataclass(frozen=True, slots=True)
class Lease:
    """A run's lease as read from the store."""

    run_id: str
    host: str
    pid: int
    started_at: float
    """When the run took it, on the store's clock."""
    renewed_at: float
    """When it was last written, on the store's clock."""


def _lock_path(store: Store, run_id: str) -> str:
    return os.path.join(store.local_dir, "leases", f"{run_id}.lock")


class RunLease:
    """The lease of the run in this process: `acquire`, then `release` when the run ended."""

    def __init__(self, store: Store, run_id: str) -> None:
        self.store = store
        self.run_id = run_id
        self._fd: int | None = None
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None
        self._document: dict[str, Any] = {}

    def acquire(self) -> None:
        """Takes the lock and writes the lease; a `StoreError` if the store refuses it."""
        path = _lock_path(self.store, self.run_id)
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            fcntl.flock(self._fd, fcntl.LOCK_EX)
        except OSError as exc:
            raise StoreError(f"cannot lock the run at {path}: {describe_os_error(exc)}") from None
        self._document = {
            "run_id": self.run_id,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "started_at": self.store.now(),
        }
        try:
            self.store.put_lease(self.run_id, self._document)
        except StoreError:
            self._unlock()
            raise
        self._renewer = threading.Thread(
            target=self._renew, name=f"lease-{self.run_id}", daemon=True
        )
        self._renewer.start()

    def _renew(self) -> None:
        while not self._stop.wait(RENEW_SECONDS):
            # A lease that cannot be rewritten (a full disk) only looks older to other
            # machines; on this one the lock says the run is alive.
            with contextlib.suppress(StoreError, OSError):
                self.store.put_lease(self.run_id, self._document)

    def release(self) -> None:
        """Removes the lease and the lock (what cannot be removed dies with the lock)."""
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join()
        with contextlib.suppress(StoreError, OSError):
            self.store.delete_lease(self.run_id)
        self._unlock()

    def _unlock(self) -> None:
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            os.unlink(_lock_path(self.store, self.run_id))
        os.close(self._fd)
        self._fd = None


def read_leases(store: Store) -> list[Lease]:
    """Every lease in the store, alive or not."""
    leases: list[Lease] = []
    for document, renewed_at in store.list_leases():
        try:
            leases.append(
                Lease(
                    run_id=str(document["run_id"]),
                    host=str(document.get("host", "")),
                    pid=int(document.get("pid", 0)),
                    started_at=float(document["started_at"]),
                    renewed_at=renewed_at,
                )
            )
        except (KeyError, TypeError, ValueError):
            continue
    return leases


def lease_alive(store: Store, lease: Lease, now: float) -> bool:
    """Whether the lease's run is alive (see the module docstring)."""
    if lease.host == socket.gethostname():
        path = _lock_path(store, lease.run_id)
        if os.path.exists(path):
            return _locked(path)
        return _process_exists(lease.pid)
    return now - lease.renewed_at < EXPIRE_SECONDS


def _locked(path: str) -> bool:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)
    return False


def _process_exists(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def live_leases(store: Store, *, remove_dead: bool = False) -> list[Lease]:
    """The leases of the runs alive now; `remove_dead` removes the others' leases."""
    leases = read_leases(store)
    if not leases:
        return []
    now = store.now()
    alive: list[Lease] = []
    for lease in leases:
        if lease_alive(store, lease, now):
            alive.append(lease)
        elif remove_dead:
            with contextlib.suppress(StoreError, OSError):
                store.delete_lease(lease.run_id)
            if lease.host == socket.gethostname():  # its lock file, which nobody holds
                with contextlib.suppress(OSError):
                    os.unlink(_lock_path(store, lease.run_id))
    return alive


def live_run_ids(store: Store) -> set[str]:
    """The ids of the runs alive now."""
    return {lease.run_id for lease in live_leases(store)}


def as_seen_now(store: Store, runs: list[Run]) -> list[Run]:
    """The runs with `running` replaced by `interrupted` for those whose lease is not alive
    (their coordinator was killed, or its machine went away)."""
    if not any(run.status == "running" for run in runs):
        return runs
    alive = live_run_ids(store)
    return [
        replace(run, status="interrupted")
        if run.status == "running" and run.run_id not in alive
        else run
        for run in runs
    ]


def gc_cutoff(cutoff: float, leases: list[Lease]) -> float:
    """The time before which `mlc gc` may remove an unreachable object, given live runs: none
    that a live run wrote, or reused (which refreshed its mtime unless it was under an hour
    old), whatever the grace period.

    >>> gc_cutoff(10_000.0, [])
    10000.0
    >>> gc_cutoff(10_000.0, [Lease("r", "h", 1, 9_000.0, 9_000.0)])
    5100.0
    """
    if not leases:
        return cutoff
    return min(cutoff, min(lease.started_at for lease in leases) - REUSE_WINDOW_SECONDS)
