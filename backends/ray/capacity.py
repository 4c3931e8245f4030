"""What the Ray cluster can run at once, and what it can never run.

Ray queues what does not fit, but it leaves a request that no node can ever satisfy pending
forever, without a word. So the capacity checks each distinct request against every live node
the first time it sees it: a request that fits no node becomes an `Infeasible` reservation,
which the executor turns into a failed attempt saying what was asked and what the cluster has.
With a `pending_timeout` (`wait_for_nodes`) such a request is granted instead, unaccounted: its
task waits in Ray's queue for a node that can hold it (one an autoscaler adds), and the
executor fails it after that long.
Requests that can fit are accounted against the cluster's totals, so that the coordinator's
"running" means running (or about to), and `foreach` bounds and fail-fast stay meaningful.

Beyond the totals, up to as much again may be granted as *queued* reservations (`queue_ahead`):
their tasks wait in Ray's own queue, so a worker that finishes a task gets the next one at once,
on the lease it holds, instead of idling while the end travels to the coordinator and the next
submission back (and Ray leasing a worker per task). When steps are short, that is not deep
enough: Ray hands a worker back to its raylet whenever its queue runs dry at a task's end, and
leases one again for the next submission (on a 2-CPU cluster with 1,000 no-op steps, the raylet
spent 0.4 s of CPU on that, against 0.06 s with a deeper queue). So the queue may also hold as
much as the cluster finished in the last `QUEUE_AHEAD_SECONDS`: deep while steps take
milliseconds, no deeper than the totals once they take seconds, so that what the run shows as
running is never more than that far ahead of what runs. Not with a `pending_timeout`: a task
queued behind the run's own steps would count that wait against it.

The cluster is joined on the first reservation, i.e. when a step must run: before that (`mlc
plan`, preflight) a request is only checked against the target's declared node pools.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass

from mlc.backends.ray.cluster import RayCluster
from mlc.backends.ray.placement import describe, describe_free, ray_resources
from mlc.ir.model import Resources, Target

SITUATION_SECONDS = 1.0
"""How long what the cluster has free may be reused to say why steps wait."""
QUEUE_AHEAD_SHARE = 1.0
"""How much may be granted beyond the cluster's totals, as a share of them (see the module
docstring)."""
QUEUE_AHEAD_SECONDS = 0.5
"""And beyond that, as much as the cluster finished in this long, lately (module docstring)."""
RATE_WINDOW_SECONDS = 1.0
"""How far back "lately" goes: the resources released in this window, scaled to
`QUEUE_AHEAD_SECONDS`."""


@dataclass(frozen=True, slots=True)
class Reservation:
    """Ray resources held by one attempt."""

    need: Mapping[str, float]
    queued: bool = False
    """Granted beyond the cluster's free resources: the task waits in Ray's queue."""
    accounted: bool = True
    """False for a request no live node can hold, granted to wait for a node: it holds
    nothing of the cluster's totals."""


@dataclass(frozen=True, slots=True)
class Infeasible:
    """A request no node of the cluster can ever satisfy (or a cluster that cannot be
    reached): the attempt fails at once, and is not retried."""

    reason: str


class RayCapacity:
    """Accounts Ray resources against the cluster (see the module docstring)."""

    def __init__(
        self,
        cluster: RayCluster,
        target: Target | None,
        *,
        local_store: str | None,
        queue_ahead: bool = False,
        wait_for_nodes: bool = False,
    ) -> None:
        self.cluster = cluster
        self.target = target
        self.local_store = local_store
        """The store's directory when it is on this machine's disk (None: a shared store)."""
        self.queue_ahead = queue_ahead
        """Whether requests may be granted beyond the free resources (module docstring)."""
        self.wait_for_nodes = wait_for_nodes
        """Whether a request no live node can hold waits for one (module docstring)."""
        self._free: dict[str, float] | None = None
        self._verdicts: dict[tuple[tuple[str, float], ...], str | None] = {}
        self._seen: tuple[float, list[dict[str, float]], dict[str, float]] | None = None
        self._finished: deque[tuple[float, Mapping[str, float]]] = deque()
        """The reservations released within `RATE_WINDOW_SECONDS`, with when."""
        self._finished_sums: dict[str, float] = {}
        self._lock = threading.Lock()

    def never_fits(self, resources: Resources) -> str | None:
        """Checked against the target's declared node pools before anything runs (the
        cluster itself is checked when a step must run: see the module docstring)."""
        pools = self.target.nodes if self.target else ()
        if not pools:
            return None
        need = ray_resources(resources, self.target)
        for pool in pools:
            gpus = pool.gpu.count if pool.gpu else 0
            if (
                need["CPU"] * 1000 <= pool.cpu_millis
                and need.get("memory", 0) <= pool.memory_bytes
                and need.get("GPU", 0) <= gpus
            ):
                return None
        return (
            f"it asks for {describe(need)} and no node pool of target `{self.target.name}` has that"  # type: ignore[union-attr]
        )

    def try_reserve(self, resources: Resources) -> Reservation | Infeasible | None:
        """A reservation, an `Infeasible` verdict, or None when the cluster is busy."""
        problem = self.cluster.connect() or self._unshared_store()
        if problem is not None:
            return Infeasible(problem)
        need = ray_resources(resources, self.target)
        key = tuple(sorted(need.items()))
        with self._lock:
            if key not in self._verdicts:
                self._verdicts[key] = self._never(need)
            verdict = self._verdicts[key]
            if verdict is not None:
                if self.wait_for_nodes:
                    return Reservation(need, queued=True, accounted=False)
                return Infeasible(verdict)
            free = self._totals()
            queued = any(free.get(name, 0.0) < amount - 1e-9 for name, amount in need.items())
            if queued:
                if not self.queue_ahead:
                    return None
                totals = self._sums()
                lately = self._finished_lately()
                room = {
                    n: free.get(n, 0.0)
                    + totals.get(n, 0.0) * QUEUE_AHEAD_SHARE
                    + lately.get(n, 0.0) * (QUEUE_AHEAD_SECONDS / RATE_WINDOW_SECONDS)
                    for n in need
                }
                if any(room[name] < amount - 1e-9 for name, amount in need.items()):
                    return None
            for name, amount in need.items():
                free[name] -= amount
            return Reservation(need, queued)

    def release(self, reservation: object) -> None:
        """Gives a reservation's resources back (an `Infeasible` one held none)."""
        if not isinstance(reservation, Reservation) or not reservation.accounted:
            return
        with self._lock:
            free = self._totals()
            for name, amount in reservation.need.items():
                free[name] = free.get(name, 0.0) + amount
            if self.queue_ahead:
                self._finished.append((time.monotonic(), reservation.need))
                for name, amount in reservation.need.items():
                    self._finished_sums[name] = self._finished_sums.get(name, 0.0) + amount
                self._finished_lately()  # (forgets the older ones: the window stays small)

    def _finished_lately(self) -> dict[str, float]:
        """The resources released within `RATE_WINDOW_SECONDS` (under the lock)."""
        since = time.monotonic() - RATE_WINDOW_SECONDS
        while self._finished and self._finished[0][0] < since:
            _, need = self._finished.popleft()
            for name, amount in need.items():
                self._finished_sums[name] -= amount
        return self._finished_sums

    def _unshared_store(self) -> str | None:
        """A store on this machine's disk with a cluster of several nodes: the others could
        neither read inputs nor write outputs."""
        others = len(self.cluster.nodes) - 1
        if self.local_store is None or others < 1:
            return None
        return (
            f"the store `{self.local_store}` is a directory on this machine, which the other "
            f"{others} node{'s' if others > 1 else ''} of the Ray cluster cannot reach: give the "
            'target a store every node reaches (`store = "s3://…"`, or a shared mount)'
        )

    def _totals(self) -> dict[str, float]:
        """What is free (the cluster's totals less what is reserved; below zero when queued)."""
        if self._free is None:
            self._free = self._sums()
        return self._free

    def _sums(self) -> dict[str, float]:
        sums: dict[str, float] = {}
        for node in self.cluster.nodes:
            for name, amount in node.items():
                sums[name] = sums.get(name, 0.0) + amount
        return sums

    def waiting_reason(self, need: Mapping[str, float]) -> tuple[str, bool]:
        """Why a request waits, from the cluster as it is now (its live nodes and what they
        have free), and whether a live node could hold it at all."""
        try:
            nodes, free = self._situation()
        except Exception as exc:  # the cluster cannot say: say that
            return f"it asks for {describe(need)} (the Ray cluster cannot say why: {exc})", True
        fits = any(
            all(node.get(name, 0.0) >= amount - 1e-9 for name, amount in need.items())
            for node in nodes
        )
        have = "; ".join(describe(node) for node in nodes) or "no live node"
        if not fits:
            return (
                f"it asks for {describe(need)}, which no live node of the Ray cluster at "
                f"`{self.cluster.address}` has (nodes: {have})",
                False,
            )
        short = [name for name, amount in need.items() if free.get(name, 0.0) < amount - 1e-9]
        return (
            f"it asks for {describe(need)}; the Ray cluster at `{self.cluster.address}` has "
            f"{describe_free(free, short or list(need))} free now (nodes: {have})",
            True,
        )

    def _never(self, need: Mapping[str, float]) -> str | None:
        nodes = self.cluster.nodes
        for node in nodes:
            if all(node.get(name, 0.0) >= amount - 1e-9 for name, amount in need.items()):
                return None
        have = "; ".join(describe(_schedulable(node)) for node in nodes) or "no live node"
        return (
            f"it asks for {describe(need)}, which no node of the Ray cluster at "
            f"`{self.cluster.address}` has (nodes: {have})"
        )

    def _situation(self) -> tuple[list[dict[str, float]], dict[str, float]]:
        """The live nodes' resources and what is free in the cluster now, asked of Ray at
        most once a second (many waiting steps may want to say why at once)."""
        import ray

        with self._lock:
            if self._seen is not None and time.monotonic() - self._seen[0] < SITUATION_SECONDS:
                return self._seen[1], self._seen[2]
        nodes = [
            _schedulable({k: float(v) for k, v in node["Resources"].items()})
            for node in ray.nodes()  # type: ignore[no-untyped-call]
            if node.get("Alive")
        ]
        free = _schedulable({k: float(v) for k, v in ray.available_resources().items()})  # type: ignore[no-untyped-call]
        with self._lock:
            self._seen = (time.monotonic(), nodes, free)
        return nodes, free


def _schedulable(node: Mapping[str, float]) -> dict[str, float]:
    """A node's resources less Ray's internal ones (`node:…`, object store memory)."""
    return {
        name: amount
        for name, amount in node.items()
        if not name.startswith("node:") and name != "object_store_memory"
    }
