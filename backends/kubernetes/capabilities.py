"""What the Kubernetes backend honours, declared for the compiler's checks.

One Job per attempt, accelerators through node selectors, MIG in both of NVIDIA's strategies,
`shm` as a memory-backed volume, `disk` as ephemeral storage, secrets as `secretKeyRef`s, and
mlc's own retries and timeouts. Every step needs an `image` (with mlc in it: see
`docs/kubernetes.md`).
"""

from __future__ import annotations

from mlc.checks.targets import BackendDescription

DESCRIPTION = BackendDescription(
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
        "image": "the image of every step that sets none (with mlc in it)",
        "service_account": "the ServiceAccount pods run as",
        "image_pull_secrets": "names of image pull secrets",
        "tolerations": "tolerations added to every pod",
        "node_selector": "labels every pod must match",
        "labels": "extra labels on every object",
        "annotations": "extra annotations on every object",
        "priority_class": "the PriorityClass of every pod",
        "ttl_seconds_after_finished": "how long finished Jobs are kept (default 86400)",
        "queue": "a Kueue LocalQueue: Jobs are created suspended, for Kueue to admit",
        "pending_timeout": "how long a step may wait unschedulable before it fails (default 15m)",
        "image_pull_timeout": "how long image pull and container errors are waited out (2m)",
        "env_from_secrets": "Secrets whose keys become every pod's environment (store access)",
        "pod_template": "a YAML file with pod spec fields merged into every pod",
        "python": "the interpreter in the image that runs mlc's step runtime (default python3)",
        "run_as_user": "the user id pods run as (default 1000; the security context is restricted)",
        "mig_strategy": "`single` or `mixed` (default), as the GPU operator is configured",
        "qps": "the client's rate limit for API writes (default 50 per second)",
        "kubeconfig": "the kubeconfig file (default: KUBECONFIG, ~/.kube/config, in-cluster)",
        "context": "the kubeconfig context (default: its current one)",
        "kill_grace": "seconds a stopped step gets between SIGTERM and SIGKILL (default 10)",
    },
)
