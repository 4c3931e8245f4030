"""Job manifests, as plain dicts: what the API receives and what `mlc compile` writes as YAML.

One Job per attempt: `backoffLimit: 0` (mlc retries, so each attempt keeps its exit code and
log and `backoff` is honoured), a `podFailurePolicy` that ignores disruptions (a preempted or
evicted pod is replaced without using up a retry), the step's timeout as the pod's deadline
(running time, not time spent pending), and a restricted-PodSecurity security context.

The container runs mlc's step runtime (`python3 -m mlc.backends.kubernetes.pod`), which reads
the attempt from its environment. Secrets are `secretKeyRef`s, never values.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mlc.backends.kubernetes import names
from mlc.backends.kubernetes.settings import KubeSettings
from mlc.ir.model import Step

CONTAINER = "main"
ENTRY_MODULE = "mlc.backends.kubernetes.pod"
DEADLINE_MARGIN_SECONDS = 30
"""How long past its timeout and grace a pod may run before Kubernetes stops it (the runtime
in the pod stops the step at its timeout itself; this is the backstop)."""
LOG_STORE_SECONDS = 5
"""What a stopped pod needs beyond the step's grace period to store its log."""
GPU = "nvidia.com/gpu"
GPU_PRODUCT = "nvidia.com/gpu.product"
SCRATCH_MOUNT = "/tmp"


@dataclass(frozen=True)
class JobIdentity:
    """Who a Job is: its run, pipeline, invocation and attempt."""

    run_id: str
    pipeline: str
    invocation: str
    cache_key: str | None
    number: int
    owner: Mapping[str, str] | None = None
    """The run's ConfigMap (`name`, `uid`), which owns the Job."""

    @property
    def name(self) -> str:
        return names.job_name(self.run_id, self.invocation, self.cache_key, self.number)


@dataclass(frozen=True)
class PodEnvironment:
    """What the step runtime in the pod reads: the attempt and the store (plain text)."""

    values: Mapping[str, str] = field(default_factory=dict)


def job_manifest(
    step: Step,
    identity: JobIdentity,
    settings: KubeSettings,
    environment: PodEnvironment,
    *,
    kill_grace_seconds: float,
    indexed: int = 0,
) -> dict[str, Any]:
    """The Job of one attempt (see the module docstring), or with `indexed=N` an Indexed Job
    of N attempts (items of a `foreach` step), each index failing on its own."""
    labels = {
        **settings.labels,
        names.MANAGED_BY: names.MANAGER,
        names.PART_OF: names.label_value(identity.pipeline),
        names.COMPONENT: names.label_value(step.name),
        names.RUN: names.label_value(identity.run_id),
        names.ATTEMPT: str(identity.number),
    }
    if settings.queue:
        labels["kueue.x-k8s.io/queue-name"] = settings.queue
    annotations = {
        **settings.annotations,
        names.INVOCATION: identity.invocation,
        names.PIPELINE: identity.pipeline,
        names.CACHE_KEY: identity.cache_key or "",
    }
    pod = pod_spec(step, settings, environment, kill_grace_seconds=kill_grace_seconds)
    spec: dict[str, Any] = {
        "backoffLimit": 0,
        "ttlSecondsAfterFinished": settings.ttl_seconds_after_finished,
        "podFailurePolicy": {
            "rules": [{"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]}]
        },
        "template": {
            "metadata": {"labels": dict(labels), "annotations": dict(annotations)},
            "spec": pod,
        },
    }
    if indexed:
        del spec["backoffLimit"]
        spec.update(
            completionMode="Indexed",
            completions=indexed,
            parallelism=indexed,
            backoffLimitPerIndex=0,
            maxFailedIndexes=indexed,
        )
    if settings.queue:
        spec["suspend"] = True
    annotations[names.SPEC_HASH] = spec_hash(spec)
    metadata: dict[str, Any] = {
        "name": identity.name,
        "namespace": settings.namespace,
        "labels": labels,
        "annotations": annotations,
    }
    if identity.owner is not None:
        metadata["ownerReferences"] = [
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "name": identity.owner["name"],
                "uid": identity.owner["uid"],
            }
        ]
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": metadata, "spec": spec}


def spec_hash(spec: Mapping[str, Any]) -> str:
    """What identifies a Job's spec: a Job found under an attempt's name is that attempt's
    only when its spec hash matches."""
    text = json.dumps(spec, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def pod_spec(
    step: Step,
    settings: KubeSettings,
    environment: PodEnvironment,
    *,
    kill_grace_seconds: float,
) -> dict[str, Any]:
    """The pod of one attempt: placement, resources, security, the runtime's command."""
    requests, limits, node_selector, tolerations = placement(step, settings)
    env: list[dict[str, Any]] = [{"name": k, "value": v} for k, v in environment.values.items()]
    env += [
        {"name": variable, "valueFrom": {"secretKeyRef": {"name": ref.name, "key": ref.key}}}
        for variable, ref in sorted(step.secrets.items())
    ]
    if GPU not in limits and not any(k.startswith("nvidia.com/mig-") for k in limits):
        env.append({"name": "NVIDIA_VISIBLE_DEVICES", "value": "void"})
    scratch: dict[str, Any] = {}
    if step.resources.disk_bytes:
        scratch["sizeLimit"] = str(step.resources.disk_bytes)
    volumes: list[dict[str, Any]] = [{"name": "scratch", "emptyDir": scratch}]
    mounts: list[dict[str, Any]] = [{"name": "scratch", "mountPath": SCRATCH_MOUNT}]
    if step.resources.shm_bytes:
        volumes.append(
            {
                "name": "dshm",
                "emptyDir": {"medium": "Memory", "sizeLimit": str(step.resources.shm_bytes)},
            }
        )
        mounts.append({"name": "dshm", "mountPath": "/dev/shm"})
    container: dict[str, Any] = {
        "name": CONTAINER,
        "image": step.image or settings.image or "",
        "command": [settings.python, "-m", ENTRY_MODULE],
        "env": env,
        "resources": {"requests": requests, **({"limits": limits} if limits else {})},
        "volumeMounts": mounts,
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "runAsNonRoot": True,
        },
    }
    if settings.env_from_secrets:
        container["envFrom"] = [{"secretRef": {"name": s}} for s in settings.env_from_secrets]
    grace = int(kill_grace_seconds) + LOG_STORE_SECONDS
    pod: dict[str, Any] = {
        "restartPolicy": "Never",
        "terminationGracePeriodSeconds": grace,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": settings.run_as_user,
            "runAsGroup": settings.run_as_user,
            "fsGroup": settings.run_as_user,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [container],
        "volumes": volumes,
    }
    if step.timeout_seconds:
        pod["activeDeadlineSeconds"] = int(step.timeout_seconds) + grace + DEADLINE_MARGIN_SECONDS
    if node_selector:
        pod["nodeSelector"] = node_selector
    if tolerations:
        pod["tolerations"] = tolerations
    if settings.service_account:
        pod["serviceAccountName"] = settings.service_account
    if settings.priority_class:
        pod["priorityClassName"] = settings.priority_class
    if settings.image_pull_secrets:
        pod["imagePullSecrets"] = [{"name": s} for s in settings.image_pull_secrets]
    return merge_pod_template(pod, settings.pod_template)


def placement(
    step: Step, settings: KubeSettings
) -> tuple[dict[str, str], dict[str, str], dict[str, str], list[dict[str, Any]]]:
    """Requests, limits, node selector and tolerations of a step on this target."""
    resources = step.resources
    requests = {"cpu": f"{resources.cpu_millis}m"}
    limits: dict[str, str] = {}
    if resources.memory_bytes:
        requests["memory"] = limits["memory"] = str(resources.memory_bytes)
    if resources.disk_bytes:
        requests["ephemeral-storage"] = limits["ephemeral-storage"] = str(resources.disk_bytes)
    node_selector = dict(settings.node_selector)
    tolerations = [dict(t) for t in settings.tolerations]
    gpu = resources.gpu
    if gpu is not None and gpu.count:
        accelerator = settings.accelerators.get(gpu.accelerator or "")
        if accelerator is not None:
            node_selector.update(accelerator.node_selector)
            tolerations += [dict(t) for t in accelerator.tolerations]
        count = str(gpu.count)
        if gpu.mig and settings.mig_strategy == "mixed":
            limits[f"nvidia.com/mig-{gpu.mig}"] = count
        else:
            limits[GPU] = count
            if gpu.mig and GPU_PRODUCT in node_selector:
                node_selector[GPU_PRODUCT] = f"{node_selector[GPU_PRODUCT]}-MIG-{gpu.mig}"
    return requests, limits, node_selector, tolerations


def describe_request(step: Step, settings: KubeSettings) -> str:
    """What a step's pod asks the scheduler for, in one line: `cpu 2, memory 4Gi…, nvidia.com/gpu
    2 on nvidia.com/gpu.product=NVIDIA-A100-SXM4-80GB`."""
    requests, limits, node_selector, _ = placement(step, settings)
    asked = {**requests, **limits}
    text = ", ".join(f"{name} {value}" for name, value in asked.items())
    if node_selector:
        text += " on " + ", ".join(f"{k}={v}" for k, v in node_selector.items())
    return text


def merge_pod_template(pod: dict[str, Any], template: Mapping[str, Any]) -> dict[str, Any]:
    """The target's `pod_template` merged into a pod spec: tables merge key by key, lists of
    named things (containers by name, the rest appended) add to mlc's, scalars replace."""
    if not template:
        return pod
    merged = copy.deepcopy(pod)
    _merge(merged, template)
    return merged


def _merge(into: dict[str, Any], extra: Mapping[str, Any]) -> None:
    for key, value in extra.items():
        current = into.get(key)
        if isinstance(current, dict) and isinstance(value, Mapping):
            _merge(current, value)
        elif isinstance(current, list) and isinstance(value, Sequence):
            _merge_list(current, value)
        else:
            into[key] = copy.deepcopy(value)


def _merge_list(into: list[Any], extra: Sequence[Any]) -> None:
    by_name = {item.get("name"): item for item in into if isinstance(item, dict)}
    for item in extra:
        name = item.get("name") if isinstance(item, Mapping) else None
        if name is not None and name in by_name and isinstance(by_name[name], dict):
            _merge(by_name[name], item)
        else:
            into.append(copy.deepcopy(item))
