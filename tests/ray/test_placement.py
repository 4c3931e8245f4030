"""How a step's request becomes Ray resources, and how the capacity accounts them: pure
functions over a cluster's node list (no Ray needed; the live cluster is `test_ray_backend`)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from mlc.backends.ray import capacity as capacity_module
from mlc.backends.ray.capacity import Infeasible, RayCapacity, Reservation
from mlc.backends.ray.cluster import RayCluster, address_problem
from mlc.backends.ray.executor import pending_timeout
from mlc.backends.ray.placement import ray_resources, task_options
from mlc.ir.model import GpuRequest, Resources, Target

T4_NODE = {"CPU": 2.0, "GPU": 2.0, "memory": 8.0 * 2**30, "accelerator_type:T4": 1.0}
CPU_NODE = {"CPU": 4.0, "memory": 16.0 * 2**30}


def target(**accelerators: object) -> Target:
    return Target(name="dev", backend="ray", accelerators=accelerators)  # type: ignore[arg-type]


def capacity(
    *nodes: dict[str, float],
    local_store: str | None = None,
    queue_ahead: bool = False,
    wait_for_nodes: bool = False,
) -> RayCapacity:
    """A capacity over a cluster already joined, with these nodes."""
    cluster = RayCluster(target(t4="T4"))
    cluster.nodes = list(nodes)
    cluster._connected = True
    return RayCapacity(
        cluster,
        cluster.target,
        local_store=local_store,
        queue_ahead=queue_ahead,
        wait_for_nodes=wait_for_nodes,
    )


def gpus(count: int, accelerator: str | None = None) -> Resources:
    return Resources(cpu_millis=1000, gpu=GpuRequest(count=count, accelerator=accelerator))


def test_a_request_becomes_ray_resources_with_the_accelerator_mapped() -> None:
    need = ray_resources(
        Resources(cpu_millis=500, memory_bytes=2**30, gpu=GpuRequest(count=1, accelerator="t4")),
        target(t4="T4"),
    )
    assert need == {"CPU": 0.5, "memory": 2.0**30, "GPU": 1.0, "accelerator_type:T4": 0.001}
    options = task_options(need, "train[2]")
    assert options == {
        "num_cpus": 0.5,
        "num_gpus": 1.0,
        "memory": 2**30,
        "resources": {"accelerator_type:T4": 0.001},
        "name": "train[2]",
        "max_retries": 0,
        "retry_exceptions": False,
    }


def test_an_accelerator_may_map_to_custom_resources() -> None:
    mapped = target(**{"a100-80gb": {"resources": {"a100_80g": 1}}})
    need = ray_resources(gpus(2, "a100-80gb"), mapped)
    assert need == {"CPU": 1.0, "GPU": 2.0, "a100_80g": 1.0}


def test_a_request_no_node_has_is_infeasible_and_says_what_the_nodes_have() -> None:
    verdict = capacity(T4_NODE, CPU_NODE).try_reserve(gpus(3, "t4"))
    assert isinstance(verdict, Infeasible)
    assert verdict.reason.startswith("it asks for 1 CPU, 3 GPUs, accelerator_type:T4")
    assert "2 CPUs, 2 GPUs, 8.0 GiB of memory, accelerator_type:T4" in verdict.reason


def test_requests_are_accounted_against_the_cluster_and_given_back() -> None:
    cluster = capacity(T4_NODE)
    first = cluster.try_reserve(gpus(1, "t4"))
    second = cluster.try_reserve(gpus(1, "t4"))
    assert isinstance(first, Reservation) and isinstance(second, Reservation)
    assert cluster.try_reserve(gpus(1, "t4")) is None  # busy, not infeasible
    cluster.release(first)
    assert isinstance(cluster.try_reserve(gpus(1, "t4")), Reservation)


def test_with_queue_ahead_as_much_again_is_granted_as_queued_then_nothing() -> None:
    cluster = capacity(T4_NODE, queue_ahead=True)
    granted = [cluster.try_reserve(gpus(1, "t4")) for _ in range(4)]
    assert all(isinstance(r, Reservation) for r in granted)
    assert [r.queued for r in granted] == [False, False, True, True]  # type: ignore[union-attr]
    assert cluster.try_reserve(gpus(1, "t4")) is None
    cluster.release(granted[0])
    again = cluster.try_reserve(gpus(1, "t4"))
    assert isinstance(again, Reservation) and again.queued
    # Infeasible stays infeasible: nothing is queued that no node can ever run.
    assert isinstance(cluster.try_reserve(gpus(3, "t4")), Infeasible)


def test_while_steps_end_fast_the_queue_holds_what_the_cluster_ends_in_half_a_second(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = SimpleNamespace(now=100.0)
    monkeypatch.setattr(capacity_module, "time", SimpleNamespace(monotonic=lambda: clock.now))
    monkeypatch.setattr(capacity_module, "QUEUE_AHEAD_SECONDS", 0.5)
    monkeypatch.setattr(capacity_module, "RATE_WINDOW_SECONDS", 1.0)
    cluster = capacity(CPU_NODE, queue_ahead=True)
    held: list[Reservation] = []

    def fill() -> int:
        """Reserves 1 CPU after another until the cluster says busy; how many it granted."""
        count = 0
        while isinstance(granted := cluster.try_reserve(Resources(cpu_millis=1000)), Reservation):
            held.append(granted)
            count += 1
        return count

    def end(count: int) -> None:
        for _ in range(count):
            clock.now += 0.1
            cluster.release(held.pop(0))

    assert fill() == 8  # 4 CPUs: 4 run, 4 wait in Ray's queue
    end(8)  # 8 ended within the last second: half a second's worth, 4, may wait too
    assert fill() == 12
    assert [r.queued for r in held] == [False] * 4 + [True] * 8
    clock.now += 2.0
    end(4)  # a second on, only these 4 ended lately: 8 + 2 may be held, 2 more than now
    assert fill() == 2


def test_with_a_pending_timeout_a_request_no_node_has_waits_for_one_holding_nothing() -> None:
    cluster = capacity(T4_NODE, wait_for_nodes=True)
    waiting = cluster.try_reserve(gpus(3, "t4"))
    assert isinstance(waiting, Reservation) and not waiting.accounted
    both = cluster.try_reserve(gpus(2, "t4"))  # the cluster's GPUs are still all free
    assert isinstance(both, Reservation) and not both.queued
    cluster.release(waiting)  # gives back nothing it did not hold
    assert cluster.try_reserve(gpus(1, "t4")) is None


def test_pending_timeout_is_a_positive_duration_in_seconds() -> None:
    def with_setting(value: object) -> Target:
        return Target(name="dev", backend="ray", settings={"pending_timeout": value})

    assert pending_timeout(with_setting(300.0)) == 300.0
    assert pending_timeout(with_setting(45)) == 45.0
    for bad in ("soon", 0, -1.0, True):
        assert pending_timeout(with_setting(bad)) is None
    assert pending_timeout(target()) is None


def test_a_store_on_this_machine_is_refused_with_a_cluster_of_several_nodes() -> None:
    verdict = capacity(T4_NODE, CPU_NODE, local_store="/home/me/.mlc").try_reserve(gpus(0))
    assert isinstance(verdict, Infeasible)
    assert "the other 1 node of the Ray cluster cannot reach" in verdict.reason
    alone = capacity(T4_NODE, local_store="/home/me/.mlc").try_reserve(gpus(0))
    assert isinstance(alone, Reservation)


def test_a_ray_client_address_is_refused_with_what_to_give_instead() -> None:
    client = Target(name="dev", backend="ray", address="ray://head:10001")
    assert "Ray Client addresses" in (address_problem(client) or "")
    assert "http://HEAD:8265" in (address_problem(client) or "")
    for usable in ("head:6379", "auto", "http://head:8265"):
        assert address_problem(Target(name="dev", backend="ray", address=usable)) is None
