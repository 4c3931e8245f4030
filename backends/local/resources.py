"""The resource ledger: CPU millis, memory bytes and GPU slots held by running steps.

A step starts only when its whole request fits in what is free; it releases everything when
it ends. A request larger than the machine can ever offer is reported before the run starts.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import cast

from mlc.backends.local.inventory import Machine
from mlc.ir.model import Resources
from mlc.runtime.report import gib


@dataclass(frozen=True, slots=True)
class Grant:
    """What one running step holds."""

    cpu_millis: int
    memory_bytes: int
    gpus: tuple[int, ...] = ()

    @property
    def cuda_visible_devices(self) -> str:
        """`0,1` for the GPU slots held (empty when none)."""
        return ",".join(str(index) for index in self.gpus)


class ResourceLedger:
    """Accounts requests against a `Machine`; safe to use from several threads. The local
    executor's capacity (`mlc.coordinator.executor.Capacity`): a reservation is a `Grant`."""

    def __init__(self, machine: Machine) -> None:
        self.machine = machine
        self._lock = threading.Lock()
        self._free_cpu = machine.cpu_millis
        self._free_memory = machine.memory_bytes
        self._free_gpus: list[int] = [slot.index for slot in machine.gpus]
        self._types = {slot.index: slot.accelerator for slot in machine.gpus}

    def _matching(self, accelerator: str | None, free: list[int]) -> list[int]:
        return [i for i in free if accelerator is None or self._types[i] == accelerator]

    def never_fits(self, resources: Resources) -> str | None:
        """Why a request can never be granted here, or None if it can."""
        machine = self.machine
        if resources.cpu_millis > machine.cpu_millis:
            return (
                f"it asks for {resources.cpu_millis / 1000:g} CPUs and {machine.source} has "
                f"{machine.cpu_millis / 1000:g}"
            )
        memory = resources.memory_bytes or 0
        if memory > machine.memory_bytes:
            return (
                f"it asks for {gib(memory)} of memory and {machine.source} has "
                f"{gib(machine.memory_bytes)}"
            )
        gpu = resources.gpu
        if gpu is None or gpu.count == 0:
            return None
        if gpu.mig is not None:
            return f"it asks for MIG partition `{gpu.mig}`, which local runs cannot provide"
        matching = self._matching(gpu.accelerator, [slot.index for slot in machine.gpus])
        if gpu.count > len(matching):
            kind = f"`{gpu.accelerator}` GPU" if gpu.accelerator else "GPU"
            plural = "" if gpu.count == 1 else "s"
            return (
                f"it asks for {gpu.count} {kind}{plural} and {machine.source} has "
                f"{len(matching)} (GPUs from {machine.gpu_source}; set MLC_LOCAL_GPUS, "
                "e.g. `t4:2`, to declare them)"
            )
        return None

    def try_reserve(self, resources: Resources) -> Grant | None:
        """Takes the request from what is free, or returns None when it does not fit now."""
        memory = resources.memory_bytes or 0
        gpu = resources.gpu
        with self._lock:
            if resources.cpu_millis > self._free_cpu or memory > self._free_memory:
                return None
            slots: tuple[int, ...] = ()
            if gpu is not None and gpu.count > 0:
                matching = self._matching(gpu.accelerator, self._free_gpus)
                if len(matching) < gpu.count:
                    return None
                slots = tuple(matching[: gpu.count])
                self._free_gpus = [i for i in self._free_gpus if i not in slots]
            self._free_cpu -= resources.cpu_millis
            self._free_memory -= memory
            return Grant(resources.cpu_millis, memory, slots)

    def why_waiting(self, resources: Resources) -> str | None:
        """What a request that does not fit now waits for, with what is in use: `waiting for
        2 CPUs (2 of 2 in use)`; None when it fits."""
        machine = self.machine
        memory = resources.memory_bytes or 0
        gpu = resources.gpu
        short = []
        with self._lock:
            if resources.cpu_millis > self._free_cpu:
                used = (machine.cpu_millis - self._free_cpu) / 1000
                short.append(
                    f"{resources.cpu_millis / 1000:g} CPU{'s' if resources.cpu_millis != 1000 else ''}"
                    f" ({used:g} of {machine.cpu_millis / 1000:g} in use)"
                )
            if memory > self._free_memory:
                used_memory = machine.memory_bytes - self._free_memory
                short.append(
                    f"{gib(memory)} of memory ({gib(used_memory)} of {gib(machine.memory_bytes)} "
                    "in use)"
                )
            if gpu is not None and gpu.count > 0:
                free = self._matching(gpu.accelerator, self._free_gpus)
                if len(free) < gpu.count:
                    every = self._matching(gpu.accelerator, list(self._types))
                    kind = f"`{gpu.accelerator}` GPU" if gpu.accelerator else "GPU"
                    short.append(
                        f"{gpu.count} {kind}{'s' if gpu.count != 1 else ''} "
                        f"({len(every) - len(free)} of {len(every)} in use)"
                    )
        return "waiting for " + " and ".join(short) if short else None

    def release(self, reservation: object) -> None:
        """Gives a grant back."""
        grant = cast(Grant, reservation)
        with self._lock:
            self._free_cpu += grant.cpu_millis
            self._free_memory += grant.memory_bytes
            self._free_gpus = sorted({*self._free_gpus, *grant.gpus})
