"""Helpers for tests that run Jobs on the test control plane: manifests and waits.

``job_manifest`` makes Jobs for the fake nodes (kwok ends their pods as annotations ask);
``python_job_manifest`` makes Jobs whose pods run Python for real on the real node.

Waits use watches with a deadline, never fixed sleeps: a watch started without a resource
version first replays the current state, so nothing that already happened is missed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from tests.k8s.cluster import (
    EXIT_CODE_ANNOTATION,
    GPU_PRODUCT_LABEL,
    GPU_RESOURCE,
    OUTCOME_ANNOTATION,
    RUN_FOR_ANNOTATION,
    TERMINATION_MESSAGE_ANNOTATION,
)
from tests.k8s.node import project_mounts, real_node_placement
from tests.k8s.node_images import STEP_IMAGE

if TYPE_CHECKING:
    from kubernetes.client import ApiClient, CoreV1Event, V1Job, V1Pod

T = TypeVar("T")

DEFAULT_TIMEOUT_S = 30.0


def pod_annotations(
    *,
    outcome: str | None = None,
    exit_code: int | None = None,
    run_for: str | None = None,
    termination_message: str | None = None,
) -> dict[str, str]:
    """The annotations that tell kwok how a pod should end (see ``stages.yaml``)."""
    annotations: dict[str, str] = {}
    if outcome is not None:
        annotations[OUTCOME_ANNOTATION] = outcome
    if exit_code is not None:
        annotations[EXIT_CODE_ANNOTATION] = str(exit_code)
    if run_for is not None:
        annotations[RUN_FOR_ANNOTATION] = run_for
    if termination_message is not None:
        annotations[TERMINATION_MESSAGE_ANNOTATION] = termination_message
    return annotations


def job_manifest(
    name: str,
    *,
    annotations: Mapping[str, str] | None = None,
    gpus: int = 0,
    gpu_product: str | None = None,
    backoff_limit: int = 0,
    active_deadline_seconds: int | None = None,
    restart_policy: str = "Never",
) -> dict[str, Any]:
    """A one-pod batch/v1 Job; with ``gpus`` it requests ``nvidia.com/gpu``."""
    resources: dict[str, Any] = {"requests": {"cpu": "100m", "memory": "64Mi"}}
    if gpus:
        resources["limits"] = {GPU_RESOURCE: str(gpus)}
    pod_spec: dict[str, Any] = {
        "restartPolicy": restart_policy,
        "containers": [
            {
                "name": "main",
                "image": "registry.invalid/mlc/step:test",
                "command": ["python", "-m", "step"],
                "resources": resources,
            }
        ],
    }
    if gpu_product is not None:
        pod_spec["nodeSelector"] = {GPU_PRODUCT_LABEL: gpu_product}
    spec: dict[str, Any] = {
        "backoffLimit": backoff_limit,
        "template": {
            "metadata": {"annotations": dict(annotations or {})},
            "spec": pod_spec,
        },
    }
    if active_deadline_seconds is not None:
        spec["activeDeadlineSeconds"] = active_deadline_seconds
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": spec,
    }


def python_job_manifest(
    name: str,
    code: str,
    *,
    env: Mapping[str, str] | None = None,
    memory_limit: str | None = None,
    volumes: Sequence[Mapping[str, Any]] = (),
    volume_mounts: Sequence[Mapping[str, Any]] = (),
    init_code: str | None = None,
    host_network: bool = False,
    backoff_limit: int = 0,
) -> dict[str, Any]:
    """A one-pod Job for the real node whose container runs ``python3 -c code``.

    The pod runs the step image (Debian's Python 3.11) with the repository and the test
    virtual environment mounted read-only, so ``import mlc`` works. ``init_code`` runs first
    in an init container with the same mounts; ``host_network`` puts the pod on the host's
    network, where services on 127.0.0.1 (the S3 test server, the API server) are reachable.
    """
    project_volumes, project_volume_mounts, project_env = project_mounts()
    environment = [*project_env, *({"name": k, "value": v} for k, v in (env or {}).items())]
    mounts = [*project_volume_mounts, *volume_mounts]
    resources: dict[str, Any] = {"requests": {"cpu": "50m", "memory": "32Mi"}}
    if memory_limit is not None:
        resources["limits"] = {"memory": memory_limit}

    def container(container_name: str, script: str) -> dict[str, Any]:
        return {
            "name": container_name,
            "image": STEP_IMAGE,
            "imagePullPolicy": "Never",
            "command": ["python3", "-c", script],
            "env": environment,
            "volumeMounts": mounts,
            "resources": resources,
        }

    pod_spec: dict[str, Any] = {
        **real_node_placement(),
        "restartPolicy": "Never",
        "hostNetwork": host_network,
        "terminationGracePeriodSeconds": 5,
        "containers": [container("main", code)],
        "volumes": [*project_volumes, *volumes],
    }
    if init_code is not None:
        pod_spec["initContainers"] = [container("init", init_code)]
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {"backoffLimit": backoff_limit, "template": {"spec": pod_spec}},
    }


def watch_until(
    list_function: Callable[..., Any],
    predicate: Callable[[Any], T | None],
    *,
    timeout: float = DEFAULT_TIMEOUT_S,
    what: str = "a condition",
    **list_arguments: Any,
) -> T:
    """Watch ``list_function`` until ``predicate`` returns something other than None.

    Raises ``TimeoutError`` naming ``what`` when the deadline passes first.
    """
    from kubernetes import watch

    deadline = time.monotonic() + timeout
    while (remaining := deadline - time.monotonic()) > 0:
        watcher = watch.Watch()
        try:
            for event in watcher.stream(
                list_function, timeout_seconds=max(1, int(remaining)), **list_arguments
            ):
                result = predicate(event["object"])
                if result is not None:
                    return result
                if time.monotonic() > deadline:
                    break
        finally:
            watcher.stop()
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")


def job_condition(job: V1Job) -> str | None:
    """``Complete`` or ``Failed`` once the Job has finished, else None."""
    for condition in (job.status and job.status.conditions) or []:
        if condition.type in ("Complete", "Failed") and condition.status == "True":
            return str(condition.type)
    return None


def wait_for_job(
    client: ApiClient, namespace: str, name: str, timeout: float = DEFAULT_TIMEOUT_S
) -> tuple[str, V1Job]:
    """Wait until the Job is Complete or Failed; return that condition and the Job."""
    from kubernetes.client import BatchV1Api

    def finished(job: V1Job) -> tuple[str, V1Job] | None:
        condition = job_condition(job)
        return None if condition is None else (condition, job)

    return watch_until(
        BatchV1Api(client).list_namespaced_job,
        finished,
        timeout=timeout,
        what=f"Job {namespace}/{name} to finish",
        namespace=namespace,
        field_selector=f"metadata.name={name}",
    )


def job_pods(client: ApiClient, namespace: str, job_name: str) -> list[V1Pod]:
    """The pods the Job controller made for ``job_name``."""
    from kubernetes.client import CoreV1Api

    pods = CoreV1Api(client).list_namespaced_pod(
        namespace, label_selector=f"batch.kubernetes.io/job-name={job_name}"
    )
    return list(pods.items)


def wait_for_pod(
    client: ApiClient,
    namespace: str,
    job_name: str,
    predicate: Callable[[V1Pod], bool],
    *,
    timeout: float = DEFAULT_TIMEOUT_S,
    what: str = "a pod",
) -> V1Pod:
    """Wait for a pod of the Job that satisfies ``predicate``."""
    from kubernetes.client import CoreV1Api

    def matching(pod: V1Pod) -> V1Pod | None:
        return pod if predicate(pod) else None

    return watch_until(
        CoreV1Api(client).list_namespaced_pod,
        matching,
        timeout=timeout,
        what=what,
        namespace=namespace,
        label_selector=f"batch.kubernetes.io/job-name={job_name}",
    )


def wait_for_event(
    client: ApiClient,
    namespace: str,
    *,
    reason: str,
    object_name: str,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> CoreV1Event:
    """Wait for an event with ``reason`` about the object called ``object_name``."""
    from kubernetes.client import CoreV1Api

    def matching(event: CoreV1Event) -> CoreV1Event | None:
        return event if event.reason == reason else None

    return watch_until(
        CoreV1Api(client).list_namespaced_event,
        matching,
        timeout=timeout,
        what=f"a {reason} event for {object_name}",
        namespace=namespace,
        field_selector=f"involvedObject.name={object_name}",
    )
