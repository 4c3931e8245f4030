"""The `backend` every conformance case runs on, and the `not_on` marks of cases a backend
cannot support."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

pytest.register_assert_rewrite("tests.conformance.harness")

from tests.conformance.harness import (  # noqa: E402
    REFERENCE,
    TARGETS,
    Backend,
    Projects,
    declared,
)
from tests.ray.cluster import RayHead  # noqa: E402
from tests.store.conftest import S3Server, s3_server  # noqa: E402

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

    from tests.k8s.cluster import ControlPlane

__all__ = ["s3_server"]  # the S3 test server's fixture: the Kubernetes backend's store

CLUSTERS: dict[str, str] = {"ray": "conformance_ray", "kubernetes": "conformance_kubernetes"}
"""For a backend that needs a running cluster, the name of the (session) fixture that starts it
and returns the `Backend` to test: `declared(name, settings)` with its placeholders filled, and
the environment its commands need. A backend without an entry needs nothing started."""


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "not_on(backend, reason): the case is an expected failure on that backend "
        "(see tests/conformance/harness.py `not_on`)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A case marked `not_on(B, reason)` is a strict expected failure when run on B: reported
    as such with its reason, and an error once B passes it (then the mark must go)."""
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is None or "backend" not in callspec.params:
            continue
        for mark in item.iter_markers("not_on"):
            (backend,) = mark.args
            if backend not in TARGETS:
                raise pytest.UsageError(f"{item.nodeid}: not_on names no backend `{backend}`")
            if backend == callspec.params["backend"]:
                reason = f"not on {backend}: {mark.kwargs['reason']}"
                item.add_marker(pytest.mark.xfail(reason=reason, strict=True))


@pytest.fixture(params=sorted(TARGETS))
def backend(request: pytest.FixtureRequest) -> Backend:
    """The backend under test: every entry of `TARGETS`, its cluster started when it needs one."""
    name: str = request.param
    if name in CLUSTERS:
        started: Backend = request.getfixturevalue(CLUSTERS[name])
        return started
    return declared(name)


@pytest.fixture(scope="session")
def conformance_ray(ray_cluster: RayHead) -> Backend:
    """The Ray backend on the session's Ray cluster (`tests.ray.plugin`), joined by the
    `mlc apply` processes as their driver."""
    ray = declared("ray", {"address": ray_cluster.address})
    return Backend(ray.name, ray.target, ray_cluster.driver_environ())


@pytest.fixture(scope="session")
def conformance_kubernetes(
    kube_cluster: ControlPlane,
    kube_client: ApiClient,
    kube_real_node: object,
    s3_server: S3Server,
    tmp_path_factory: pytest.TempPathFactory,
) -> Backend:
    """The Kubernetes backend on the test control plane, its pods on the real node (they
    run mlc's runtime for real, `tests.k8s.real_target`), its stores on the S3 server."""
    from kubernetes.client import CoreV1Api

    from tests.k8s.node_images import STEP_IMAGE
    from tests.k8s.real_target import (
        CREDENTIALS_SECRET,
        client_environ,
        create_store_secret,
        write_pod_template,
    )

    namespace = f"conformance-{secrets.token_hex(3)}"
    core = CoreV1Api(kube_client)
    core.create_namespace(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}
    )
    create_store_secret(kube_client, namespace)
    directory = tmp_path_factory.mktemp("conformance-kubernetes")
    template = write_pod_template(directory, tmp_path_factory.getbasetemp())
    settings = {
        "namespace": namespace,
        "image": STEP_IMAGE,
        "pod_template": str(template),
        "credentials": CREDENTIALS_SECRET,
    }
    kubernetes = declared("kubernetes", settings)
    return Backend(
        kubernetes.name,
        kubernetes.target,
        client_environ(kube_cluster.kubeconfig, s3_server),
        attempts_outlive_coordinator=True,
        store=f"s3://{s3_server.bucket}/conformance",
    )


@pytest.fixture
def reference_backend() -> Backend:
    """The backend the others are compared with: a run there is what a run must look like."""
    return declared(REFERENCE)


@pytest.fixture
def projects(tmp_path: Path, backend: Backend, reference_backend: Backend) -> Projects:
    """The projects of a conformance case."""
    return Projects(tmp_path, backend, reference_backend)
