"""A step's resources in Ray's terms: `num_cpus`, `num_gpus`, `memory`, accelerator type and
custom resources, as one dict of Ray resource names (`CPU`, `GPU`, `memory`,
`accelerator_type:A100-80G`, …) that the capacity accounts and the task options are made of.

The target's `accelerators` block maps a portable accelerator name to Ray's: a string is Ray's
accelerator type (`"a100-80gb" = "A100-80G"`), which Ray turns into a tiny claim on the
`accelerator_type:A100-80G` resource of the nodes that have it; a block may instead name
`accelerator_type` and/or custom `resources` (`{ resources = { "a100_80g" = 1 } }`, for
clusters that label their GPU nodes with a resource of their own). The target's `ray { resources
= { … } }` setting adds custom resources to every task.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mlc.ir.model import Resources, Target

ACCELERATOR_CLAIM = 0.001
"""How much of `accelerator_type:X` a task claims: it selects the node, not the count."""


def accelerator_resources(accelerator: str, target: Target | None) -> dict[str, float]:
    """The Ray resources that select the nodes with a portable accelerator type."""
    mapped: Any = (target.accelerators if target else {}).get(accelerator, accelerator)
    if isinstance(mapped, str):
        return {f"accelerator_type:{mapped}": ACCELERATOR_CLAIM}
    found: dict[str, float] = {}
    if isinstance(mapped, Mapping):
        if isinstance(mapped.get("accelerator_type"), str):
            found[f"accelerator_type:{mapped['accelerator_type']}"] = ACCELERATOR_CLAIM
        for name, amount in (mapped.get("resources") or {}).items():
            found[str(name)] = float(amount)
    return found


def ray_resources(resources: Resources, target: Target | None) -> dict[str, float]:
    """A step's request as Ray resources (see the module docstring)."""
    need: dict[str, float] = {"CPU": resources.cpu_millis / 1000}
    if resources.memory_bytes:
        need["memory"] = float(resources.memory_bytes)
    gpu = resources.gpu
    if gpu is not None and gpu.count:
        need["GPU"] = float(gpu.count)
        if gpu.accelerator:
            need.update(accelerator_resources(gpu.accelerator, target))
    extra = (target.settings.get("resources") if target else None) or {}
    if isinstance(extra, Mapping):
        for name, amount in extra.items():
            need[str(name)] = float(amount)
    return need


def task_options(need: Mapping[str, float], name: str) -> dict[str, Any]:
    """The `.options(…)` of the Ray task for a request: Ray's own retries off (mlc retries,
    with backoff), and a readable name (`train[2]`)."""
    custom = {k: v for k, v in need.items() if k not in ("CPU", "GPU", "memory")}
    options: dict[str, Any] = {
        "num_cpus": need.get("CPU", 0.0),
        "num_gpus": need.get("GPU", 0.0),
        "name": name,
        "max_retries": 0,
        "retry_exceptions": False,
    }
    if "memory" in need:
        options["memory"] = int(need["memory"])
    if custom:
        options["resources"] = custom
    return options


def describe(need: Mapping[str, float]) -> str:
    """A request in words: `2 CPUs, 1 GPU, 4.0 GiB of memory, accelerator_type:T4`."""
    cpus = need.get("CPU", 0)
    parts = [f"{cpus:g} CPU" + ("" if cpus == 1 else "s")]
    if need.get("GPU"):
        parts.append(f"{need['GPU']:g} GPU" + ("" if need["GPU"] == 1 else "s"))
    if need.get("memory"):
        parts.append(f"{need['memory'] / 2**30:.1f} GiB of memory")
    parts += [name for name in need if name not in ("CPU", "GPU", "memory")]
    return ", ".join(parts)


def describe_free(free: Mapping[str, float], names: list[str]) -> str:
    """How much of each named resource is free: `0 CPUs, 1 GPU`."""
    parts = []
    for name in names:
        amount = free.get(name, 0.0)
        if name in ("CPU", "GPU"):
            parts.append(f"{amount:g} {name}" + ("" if amount == 1 else "s"))
        elif name == "memory":
            parts.append(f"{amount / 2**30:.1f} GiB of memory")
        else:
            parts.append(f"{amount:g} of {name}")
    return ", ".join(parts)
