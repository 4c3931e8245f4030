"""Smoke tests of the real test node: pods that really run, with the project's code.

Each test runs one Job on the real node (containerd and a kubelet, see ``node.py``): Python
from the step image, the repository and the virtual environment mounted read-only. What comes
back (exit codes, OOM kills, logs, termination messages) is the kubelet's own report.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.k8s.helpers import job_pods, python_job_manifest, wait_for_job
from tests.k8s.node import REAL_NODE_NAME, REPOSITORY
from tests.store.conftest import S3Server, s3_server

if TYPE_CHECKING:
    from kubernetes.client import ApiClient, V1ContainerStateTerminated, V1Pod

__all__ = ["s3_server"]  # the S3 test server's fixture, used here too

pytestmark = [pytest.mark.k8s, pytest.mark.k8s_real]

#: Real pods take a few seconds; a loaded machine may need more.
JOB_TIMEOUT_S = 90.0


def _run(client: ApiClient, namespace: str, job: dict[str, Any]) -> tuple[str, V1Pod]:
    """Create the Job, wait until it finishes; return its condition and its one pod."""
    from kubernetes.client import BatchV1Api

    name = job["metadata"]["name"]
    BatchV1Api(client).create_namespaced_job(namespace, job)
    condition, _ = wait_for_job(client, namespace, name, timeout=JOB_TIMEOUT_S)
    (pod,) = job_pods(client, namespace, name)
    assert pod.spec.node_name == REAL_NODE_NAME
    return condition, pod


def _terminated(pod: V1Pod, container: str = "main") -> V1ContainerStateTerminated:
    (status,) = [s for s in pod.status.container_statuses or [] if s.name == container]
    terminated = status.state.terminated
    assert terminated is not None, status.state
    return terminated


def test_python_job_succeeds_with_its_log_and_termination_message(
    kube_client: ApiClient, kube_namespace: str
) -> None:
    from kubernetes.client import CoreV1Api

    code = """
import json, platform
import mlc
print("hello from Python", platform.python_version(), flush=True)
with open("/dev/termination-log", "w") as handle:
    json.dump({"outputs": {"model": "sha256:" + "ab" * 32}, "mlc": mlc.__file__}, handle)
"""
    condition, pod = _run(kube_client, kube_namespace, python_job_manifest("hello", code))

    assert condition == "Complete"
    assert pod.status.phase == "Succeeded"
    terminated = _terminated(pod)
    assert (terminated.exit_code, terminated.reason) == (0, "Completed")
    message = json.loads(terminated.message)
    assert message["outputs"] == {"model": "sha256:" + "ab" * 32}
    # mlc was imported from the mounted repository, through the virtual environment.
    assert Path(message["mlc"]).is_relative_to(REPOSITORY)
    log = CoreV1Api(kube_client).read_namespaced_pod_log(pod.metadata.name, kube_namespace)
    assert log.startswith("hello from Python 3.11.")


def test_job_exiting_3_fails_with_that_code_and_its_message(
    kube_client: ApiClient, kube_namespace: str
) -> None:
    code = """
import sys
print("checking the input", flush=True)
with open("/dev/termination-log", "w") as handle:
    handle.write("E0301: the input has no rows")
sys.exit(3)
"""
    condition, pod = _run(kube_client, kube_namespace, python_job_manifest("evaluate", code))

    assert condition == "Failed"
    assert pod.status.phase == "Failed"
    terminated = _terminated(pod)
    assert (terminated.exit_code, terminated.reason) == (3, "Error")
    assert terminated.message == "E0301: the input has no rows"


def test_job_over_its_memory_limit_is_oom_killed(
    kube_client: ApiClient, kube_namespace: str
) -> None:
    code = """
hoard = bytearray(512 * 1024 * 1024)  # zero-filled, so every page is touched
print("still alive")
"""
    job = python_job_manifest("greedy", code, memory_limit="64Mi")

    condition, pod = _run(kube_client, kube_namespace, job)

    assert condition == "Failed"
    terminated = _terminated(pod)
    assert (terminated.exit_code, terminated.reason) == (137, "OOMKilled")


def test_empty_dir_is_shared_and_host_path_reaches_the_host(
    kube_client: ApiClient, kube_namespace: str, tmp_path: Path
) -> None:
    host_dir = tmp_path / "out"
    host_dir.mkdir()
    init_code = "open('/scratch/greeting', 'w').write('written by the init container')"
    code = """
greeting = open("/scratch/greeting").read()
open("/out/result.txt", "w").write(greeting.upper())
"""
    job = python_job_manifest(
        "volumes",
        code,
        init_code=init_code,
        volumes=[
            {"name": "scratch", "emptyDir": {}},
            {"name": "out", "hostPath": {"path": str(host_dir), "type": "Directory"}},
        ],
        volume_mounts=[
            {"name": "scratch", "mountPath": "/scratch"},
            {"name": "out", "mountPath": "/out"},
        ],
    )

    condition, pod = _run(kube_client, kube_namespace, job)

    assert condition == "Complete", _terminated(pod)
    assert (host_dir / "result.txt").read_text() == "WRITTEN BY THE INIT CONTAINER"


def test_pod_reads_and_writes_the_s3_test_server(
    kube_client: ApiClient, kube_namespace: str, s3_server: S3Server, tmp_path: Path
) -> None:
    from mlc.store import open_store

    uri = f"s3://{s3_server.bucket}/real-node-{uuid.uuid4().hex}"
    store = open_store(uri, storage_options=s3_server.storage_options, cache_dir=tmp_path)
    given = store.put_bytes(b"rows from the host")
    code = """
import os, json
from mlc.store import open_store
store = open_store(
    os.environ["STORE"], storage_options=json.loads(os.environ["OPTIONS"]), cache_dir="/tmp/c"
)
data = store.read_bytes(os.environ["GIVEN"])
made = store.put_bytes(data.upper())
open("/dev/termination-log", "w").write(made)
"""
    env = {"STORE": uri, "OPTIONS": json.dumps(s3_server.storage_options), "GIVEN": given}
    # The S3 test server listens on 127.0.0.1 of this machine: the pod uses the host's network.
    job = python_job_manifest("s3", code, env=env, host_network=True)

    condition, pod = _run(kube_client, kube_namespace, job)

    assert condition == "Complete", _terminated(pod)
    made = _terminated(pod).message
    assert store.read_bytes(made) == b"ROWS FROM THE HOST"
