"""What the local backend honours, declared for the compiler's checks.

- `gpu`, `accelerator`: GPU slots from `MLC_LOCAL_GPUS`, the target's node pool or
  `nvidia-smi -L`, handed to steps through `CUDA_VISIBLE_DEVICES`
- `retries` (exponential backoff), `timeout` (the step's process group is killed)
- `foreach` (with its parallelism bound)
- `secrets`: read from the caller's environment, `MLC_SECRET_<NAME>_<KEY>`

What it cannot: container `image`s (steps run in the current Python environment), MIG
partitions, and enforcing `shm` or `disk` sizes. CPU and memory are accounted, not enforced.
"""

from __future__ import annotations

from mlc.checks.targets import BackendDescription

DESCRIPTION = BackendDescription(
    name="local",
    capabilities=frozenset({"secrets", "gpu", "accelerator", "retries", "timeout", "foreach"}),
    settings={
        "kill_grace": "seconds a stopped step gets between SIGTERM and SIGKILL (default 10)",
    },
)
