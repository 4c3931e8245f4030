"""The Ray backend: what it honours, declared for the compiler's checks.

Running on Ray is not available in this version: `mlc lint --target` and `mlc compile
--target` check specs against this description, and `mlc apply` says so plainly (a
runnable backend also exposes `create(store)`; this one does not yet).
"""

from __future__ import annotations

from mlc.checks.targets import BackendDescription

# Each step a Ray task with `num_cpus`, `num_gpus`, `memory` and `accelerator_type`.
description = BackendDescription(
    name="ray",
    capabilities=frozenset(
        {"image", "secrets", "gpu", "accelerator", "retries", "timeout", "foreach"}
    ),
    needs_accelerator_mapping=True,
    settings={
        "runtime_env": "a Ray runtime environment (pip, env_vars, working_dir, …)",
        "namespace": "the Ray namespace jobs run in",
        "resources": "custom Ray resources added to every task",
    },
)
