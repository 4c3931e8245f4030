"""What the Ray backend honours, declared for the compiler's checks.

- `gpu`, `accelerator`: `num_gpus`, and the target's `accelerators` mapping to Ray accelerator
  types or custom resources
- `retries` (by mlc, with backoff), `timeout` (kept by mlc: Ray has none per task)
- `foreach` (with its parallelism bound), `secrets` (from the caller's environment, carried in
  the attempt)

What it cannot: container `image`s (steps run in the cluster's Python environment), MIG
partitions, `shm` and `disk` sizes.
"""

from __future__ import annotations

from mlc.checks.targets import BackendDescription

DESCRIPTION = BackendDescription(
    name="ray",
    capabilities=frozenset({"secrets", "gpu", "accelerator", "retries", "timeout", "foreach"}),
    needs_accelerator_mapping=True,
    settings={
        "runtime_env": "a Ray runtime environment for the run (pip, env_vars, working_dir, …)",
        "namespace": "the Ray namespace jobs run in",
        "resources": "custom Ray resources added to every task",
        "kill_grace": "seconds a stopped step gets between SIGTERM and SIGKILL (default 10)",
        "pending_timeout": "how long a step may wait for a node before it fails (`10m`; "
        "default: no limit)",
    },
)
