"""Smoke tests proving the test control plane is a real one.

The Job controller, the scheduler, admission and validation are the real Kubernetes code; only
the kubelet is played by kwok, which ends each pod the way its annotations ask.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING

import pytest

from tests.k8s.cluster import A100_NODE, GPU_PRODUCT_LABEL, T4_NODE, ControlPlane, NodeSpec
from tests.k8s.helpers import (
    job_manifest,
    job_pods,
    pod_annotations,
    wait_for_event,
    wait_for_job,
    wait_for_pod,
)

if TYPE_CHECKING:
    from kubernetes.client import ApiClient, V1Pod

pytestmark = pytest.mark.k8s


def _terminated(pod: V1Pod) -> object:
    statuses = pod.status.container_statuses or []
    assert len(statuses) == 1, statuses
    terminated = statuses[0].state.terminated
    assert terminated is not None, statuses[0].state
    return terminated


def test_cluster_serves_the_pinned_version(
    kube_cluster: ControlPlane, kube_client: ApiClient
) -> None:
    from kubernetes.client import VersionApi

    from tests.k8s.cluster import pinned_versions

    version = VersionApi(kube_client).get_code()
    assert version.git_version == pinned_versions().kubernetes
    assert kube_cluster.kubeconfig.is_file()


@pytest.mark.parametrize("node", [A100_NODE, T4_NODE], ids=lambda node: node.gpu_product)
def test_gpu_job_lands_on_a_node_of_the_requested_model(
    kube_client: ApiClient, kube_namespace: str, node: NodeSpec
) -> None:
    from kubernetes.client import BatchV1Api, CoreV1Api

    assert node.gpu_product is not None
    BatchV1Api(kube_client).create_namespaced_job(
        kube_namespace, job_manifest("train", gpus=1, gpu_product=node.gpu_product)
    )

    condition, job = wait_for_job(kube_client, kube_namespace, "train")

    assert condition == "Complete"
    assert job.status.succeeded == 1
    (pod,) = job_pods(kube_client, kube_namespace, "train")
    assert pod.status.phase == "Succeeded"
    assert pod.spec.node_name == node.name
    placed_on = CoreV1Api(kube_client).read_node(pod.spec.node_name)
    assert placed_on.metadata.labels[GPU_PRODUCT_LABEL] == node.gpu_product
    assert placed_on.status.allocatable["nvidia.com/gpu"] == str(node.gpus)


def test_failing_job_ends_failed_with_the_chosen_exit_code(
    kube_client: ApiClient, kube_namespace: str
) -> None:
    from kubernetes.client import BatchV1Api

    annotations = pod_annotations(outcome="fail", exit_code=3)
    BatchV1Api(kube_client).create_namespaced_job(
        kube_namespace, job_manifest("evaluate", annotations=annotations, backoff_limit=0)
    )

    condition, job = wait_for_job(kube_client, kube_namespace, "evaluate")

    assert condition == "Failed"
    reasons = {c.reason for c in job.status.conditions if c.type == "Failed"}
    assert reasons == {"BackoffLimitExceeded"}
    (pod,) = job_pods(kube_client, kube_namespace, "evaluate")
    assert pod.status.phase == "Failed"
    terminated = _terminated(pod)
    assert terminated.exit_code == 3
    assert terminated.reason == "Error"


def test_job_asking_for_more_gpus_than_any_node_has_stays_pending(
    kube_client: ApiClient, kube_namespace: str
) -> None:
    from kubernetes.client import BatchV1Api

    BatchV1Api(kube_client).create_namespaced_job(kube_namespace, job_manifest("huge", gpus=16))
    pod = wait_for_pod(
        kube_client, kube_namespace, "huge", lambda p: True, what="the Job's pod to exist"
    )

    event = wait_for_event(
        kube_client, kube_namespace, reason="FailedScheduling", object_name=pod.metadata.name
    )

    assert "Insufficient nvidia.com/gpu" in event.message
    (pod,) = job_pods(kube_client, kube_namespace, "huge")
    assert pod.status.phase == "Pending"
    assert pod.spec.node_name is None
    job = BatchV1Api(kube_client).read_namespaced_job("huge", kube_namespace)
    assert not job.status.conditions


def test_server_side_dry_run_rejects_an_invalid_job(
    kube_client: ApiClient, kube_namespace: str
) -> None:
    from kubernetes.client import BatchV1Api
    from kubernetes.client.exceptions import ApiException

    batch = BatchV1Api(kube_client)
    valid = job_manifest("valid")
    batch.create_namespaced_job(kube_namespace, valid, dry_run="All")
    invalid = job_manifest("invalid", restart_policy="Always")

    with pytest.raises(ApiException) as raised:
        batch.create_namespaced_job(kube_namespace, invalid, dry_run="All")

    assert raised.value.status == 422
    status = json.loads(raised.value.body)
    assert status["reason"] == "Invalid"
    assert status["message"].startswith('Job.batch "invalid" is invalid: ')
    assert "spec.template.spec.restartPolicy" in status["message"]
    causes = status["details"]["causes"]
    assert [cause["field"] for cause in causes] == ["spec.template.spec.restartPolicy"]
    assert batch.list_namespaced_job(kube_namespace).items == []


def test_completed_pod_reports_its_termination_message(
    kube_client: ApiClient, kube_namespace: str
) -> None:
    from kubernetes.client import BatchV1Api

    message = json.dumps({"outputs": {"model": "sha256:" + "ab" * 32}})
    annotations = pod_annotations(termination_message=message)
    BatchV1Api(kube_client).create_namespaced_job(
        kube_namespace, job_manifest("register", annotations=annotations)
    )

    condition, _ = wait_for_job(kube_client, kube_namespace, "register")

    assert condition == "Complete"
    (pod,) = job_pods(kube_client, kube_namespace, "register")
    terminated = _terminated(pod)
    assert terminated.exit_code == 0
    assert json.loads(terminated.message) == json.loads(message)


def test_run_for_keeps_a_pod_running_that_long(kube_client: ApiClient, kube_namespace: str) -> None:
    from kubernetes.client import BatchV1Api

    BatchV1Api(kube_client).create_namespaced_job(
        kube_namespace, job_manifest("prepare", annotations=pod_annotations(run_for="3s"))
    )
    wait_for_pod(
        kube_client,
        kube_namespace,
        "prepare",
        lambda pod: pod.status.phase == "Running",
        what="the pod to run",
    )
    running_since = time.monotonic()

    condition, _ = wait_for_job(kube_client, kube_namespace, "prepare")

    assert condition == "Complete"
    assert time.monotonic() - running_since >= 2.5


def test_hanging_pod_is_stopped_by_the_job_deadline(
    kube_client: ApiClient, kube_namespace: str
) -> None:
    from kubernetes.client import BatchV1Api

    BatchV1Api(kube_client).create_namespaced_job(
        kube_namespace,
        job_manifest(
            "stuck", annotations=pod_annotations(outcome="hang"), active_deadline_seconds=2
        ),
    )

    condition, job = wait_for_job(kube_client, kube_namespace, "stuck")

    assert condition == "Failed"
    reasons = {c.reason for c in job.status.conditions if c.type == "Failed"}
    assert reasons == {"DeadlineExceeded"}
