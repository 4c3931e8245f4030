"""What this machine offers to steps: CPU, memory and GPU slots.

CPU and memory come from the target's first node pool when it declares one, else from the
machine (the CPUs this process may run on, and the physical memory). GPUs come, in order of
precedence, from `MLC_LOCAL_GPUS` (`t4:2`, `a100-80gb:8`, `t4:1,l4:1`, or a bare count), from
the target's node pool, or from `nvidia-smi -L`.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass

from mlc.ir.model import Target

GPU_ENV = "MLC_LOCAL_GPUS"

# nvidia-smi product names -> portable accelerator names, most specific first.
_PRODUCTS: tuple[tuple[str, str], ...] = (
    (r"H200", "h200"),
    (r"H100", "h100"),
    (r"B200", "b200"),
    (r"A100.*80\s*GB", "a100-80gb"),
    (r"A100", "a100-40gb"),
    (r"A10G", "a10g"),
    (r"L40S", "l40s"),
    (r"\bL4\b", "l4"),
    (r"\bT4\b", "t4"),
    (r"V100.*32\s*GB", "v100-32gb"),
    (r"V100", "v100-16gb"),
    (r"MI300X", "mi300x"),
)


class InventoryError(ValueError):
    """`MLC_LOCAL_GPUS` could not be read."""


@dataclass(frozen=True, slots=True)
class GpuSlot:
    """One GPU: the index CUDA knows it by, and its portable type when known."""

    index: int
    accelerator: str | None


@dataclass(frozen=True, slots=True)
class Machine:
    """The capacity steps are scheduled against, and where each figure came from."""

    cpu_millis: int
    memory_bytes: int
    gpus: tuple[GpuSlot, ...] = ()
    source: str = "this machine"
    """Where CPU and memory figures come from: `this machine` or `node pool `x``."""
    gpu_source: str = ""
    """Where the GPU inventory comes from (`MLC_LOCAL_GPUS`, `nvidia-smi`, the node pool)."""

    def describe(self) -> str:
        """`2 CPUs, 23.4 GiB, 2 x t4 (MLC_LOCAL_GPUS)`."""
        cpus = self.cpu_millis / 1000
        text = f"{cpus:g} CPUs, {self.memory_bytes / 2**30:.1f} GiB"
        if self.gpus:
            kinds: dict[str, int] = {}
            for slot in self.gpus:
                kinds[slot.accelerator or "gpu"] = kinds.get(slot.accelerator or "gpu", 0) + 1
            text += ", " + ", ".join(f"{n} x {kind}" for kind, n in sorted(kinds.items()))
        where = self.source + (f", GPUs from {self.gpu_source}" if self.gpu_source else "")
        return f"{text} ({where})"


def parse_gpu_setting(text: str) -> tuple[GpuSlot, ...]:
    """Slots from an `MLC_LOCAL_GPUS` value, numbered from 0.

    >>> parse_gpu_setting("t4:2")
    (GpuSlot(index=0, accelerator='t4'), GpuSlot(index=1, accelerator='t4'))
    >>> parse_gpu_setting("1")
    (GpuSlot(index=0, accelerator=None),)
    """
    slots: list[GpuSlot] = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        kind, sep, count_text = part.rpartition(":")
        if not sep:
            kind, count_text = "", part
        try:
            count = int(count_text)
        except ValueError:
            raise InventoryError(
                f"{GPU_ENV}={text!r}: write `TYPE:COUNT` (e.g. `t4:2`), a list of them, or a count"
            ) from None
        slots += [GpuSlot(len(slots) + i, kind or None) for i in range(count)]
    return tuple(slots)


def portable_name(product: str) -> str | None:
    """The portable accelerator name of an `nvidia-smi` product name, if known.

    >>> portable_name("NVIDIA A100-SXM4-80GB"), portable_name("Tesla T4")
    ('a100-80gb', 't4')
    """
    for pattern, name in _PRODUCTS:
        if re.search(pattern, product, re.IGNORECASE):
            return name
    return None


def detect_nvidia_gpus() -> tuple[GpuSlot, ...]:
    """GPUs listed by `nvidia-smi -L`; none when it is absent or fails."""
    executable = shutil.which("nvidia-smi")
    if executable is None:
        return ()
    try:
        listing = subprocess.run(
            [executable, "-L"], capture_output=True, text=True, timeout=20, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return ()
    if listing.returncode != 0:
        return ()
    slots: list[GpuSlot] = []
    for line in listing.stdout.splitlines():
        match = re.match(r"GPU (\d+): (.+?)(?: \(UUID: .*\))?$", line.strip())
        if match:
            slots.append(GpuSlot(int(match.group(1)), portable_name(match.group(2))))
    return tuple(slots)


def _machine_cpu_millis() -> int:
    try:
        return len(os.sched_getaffinity(0)) * 1000
    except AttributeError:  # not Linux
        return (os.cpu_count() or 1) * 1000


def _machine_memory_bytes() -> int:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def detect_machine(target: Target | None, environ: Mapping[str, str]) -> Machine:
    """The capacity of this run (see the module docstring)."""
    pool = target.nodes[0] if target is not None and target.nodes else None
    if pool is not None:
        cpu, memory, source = pool.cpu_millis, pool.memory_bytes, f"node pool `{pool.name}`"
        pool_gpus = (
            tuple(GpuSlot(i, pool.gpu.accelerator) for i in range(pool.gpu.count))
            if pool.gpu is not None
            else ()
        )
    else:
        cpu, memory, source = _machine_cpu_millis(), _machine_memory_bytes(), "this machine"
        pool_gpus = ()
    if GPU_ENV in environ:
        gpus, gpu_source = parse_gpu_setting(environ[GPU_ENV]), GPU_ENV
    elif pool is not None:
        gpus, gpu_source = pool_gpus, source
    else:
        gpus, gpu_source = detect_nvidia_gpus(), "nvidia-smi -L"
    return Machine(cpu, memory, gpus, source, gpu_source)
