"""The Kubernetes backend: what it honours, declared for the compiler's checks.

Submitting Jobs is not available in this version: `mlc lint --target` and `mlc compile
--target` check specs against this description, and `mlc apply` says so plainly (a
runnable backend also exposes `create(store)`; this one does not yet).
"""

from __future__ import annotations

from mlc.checks.targets import BackendDescription

# One Job per step, Indexed Jobs for `foreach`, accelerators through node selectors.
description = BackendDescription(
    name="kubernetes",
    capabilities=frozenset(
        {
            "image",
            "secrets",
            "gpu",
            "accelerator",
            "mig",
            "shm",
            "disk",
            "retries",
            "timeout",
            "foreach",
        }
    ),
    requires=frozenset({"image"}),
    needs_accelerator_mapping=True,
    settings={
        "service_account": "the ServiceAccount pods run as",
        "image_pull_secrets": "names of image pull secrets",
        "tolerations": "tolerations added to every pod",
        "node_selector": "labels every pod must match",
        "labels": "extra labels on every object",
        "annotations": "extra annotations on every object",
        "priority_class": "the PriorityClass of every pod",
        "ttl_seconds_after_finished": "how long finished Jobs are kept",
    },
)
