"""A Kubernetes target whose pods run for real on the real test node, against the S3 server.

What a platform team would put in its target file, for this test cluster: the step image made
from this machine's files (`node_images.py`), a `pod_template` that sends pods to the real node
on the host's network (where the S3 test server listens on 127.0.0.1) and mounts the
repository, the virtual environment and the test's own directory (so `call` steps import the
spec's module and leave notes there, as on a laptop), and the S3 credentials from a Secret.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from tests.k8s.node import project_mounts, real_node_placement
from tests.k8s.node_images import STEP_IMAGE
from tests.store.conftest import S3Server

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

CREDENTIALS_SECRET = "mlc-store-credentials"
POD_TEMPLATE = "pod-template.yaml"


def create_store_secret(client: ApiClient, namespace: str) -> None:
    """The S3 credentials every pod of the target reads (`env_from_secrets`)."""
    from kubernetes.client import CoreV1Api

    values = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    CoreV1Api(client).create_namespaced_secret(
        namespace,
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": CREDENTIALS_SECRET},
            "data": {k: base64.b64encode(v.encode()).decode() for k, v in values.items()},
        },
    )


def pod_template(writable: Path) -> dict[str, Any]:
    """Pod spec fields for the real node: placement, host network, the project's code, and
    `writable` mounted read-write at its own path; pods run as root (pytest's directories are
    private to their owner)."""
    volumes, mounts, env = project_mounts()
    volumes.append({"name": "mlc-test-dir", "hostPath": {"path": str(writable)}})
    mounts.append({"name": "mlc-test-dir", "mountPath": str(writable)})
    return {
        **real_node_placement(),
        "hostNetwork": True,
        # Host PIDs: the conformance cases check by process id that a stopped step leaves
        # nothing running.
        "hostPID": True,
        "dnsPolicy": "ClusterFirstWithHostNet",
        "securityContext": {"runAsNonRoot": False, "runAsUser": 0, "runAsGroup": 0},
        "containers": [
            {
                "name": "main",
                "env": env,
                "volumeMounts": mounts,
                "securityContext": {"runAsNonRoot": False},
            }
        ],
        "volumes": volumes,
    }


def write_pod_template(directory: Path, writable: Path) -> Path:
    path = directory / POD_TEMPLATE
    path.write_text(yaml.safe_dump(pod_template(writable)))
    return path


def real_target(name: str, namespace: str, pod_template_file: Path, extra: str = "") -> str:
    """The target declaration (`pod_template` is a path relative to the spec, or absolute)."""
    return (
        f'target {name} {{\n  backend = kubernetes\n  namespace = "{namespace}"\n'
        f'  kubernetes {{\n    image = "{STEP_IMAGE}"\n'
        f'    pod_template = "{pod_template_file}"\n'
        f'    env_from_secrets = ["{CREDENTIALS_SECRET}"]\n{extra}  }}\n}}\n'
    )


def client_environ(kubeconfig: Path, s3: S3Server) -> dict[str, str]:
    """What `mlc apply` on this machine needs for the cluster and the store."""
    return {
        "KUBECONFIG": str(kubeconfig),
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": s3.endpoint,
    }
