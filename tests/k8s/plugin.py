"""pytest fixtures for tests that need the Kubernetes test control plane.

Registered from ``tests/conftest.py``. Tests mark themselves ``@pytest.mark.k8s`` and ask for:

``kube_cluster``
    (session) a running :class:`~tests.k8s.cluster.ControlPlane`; ``KUBECONFIG`` points at it
    for the whole session. One cluster per test run, started on first use.
``kube_client``
    (session) a ``kubernetes.client.ApiClient`` logged in as the cluster admin.
``kube_namespace``
    (function) the name of a fresh namespace whose ``default`` ServiceAccount exists; it is
    deleted after the test.

Where the binaries (or ``openssl``, or the ``kubernetes`` package) are missing, the tests that
use these fixtures are skipped with a message saying how to get them, or fail when ``CI`` is
set to true: CI must never pass by skipping the Kubernetes tests.
"""

from __future__ import annotations

import os
import re
import secrets
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, NoReturn

import pytest

from tests.k8s.cluster import (
    ControlPlane,
    ControlPlaneError,
    PrerequisiteMissing,
    missing_prerequisites,
)

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

_CLUSTER_KEY = pytest.StashKey[ControlPlane]()
NAMESPACE_READY_TIMEOUT_S = 30.0


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def _unavailable(reason: str) -> NoReturn:
    """Skip locally, fail in CI: a missing control plane must not pass unnoticed there."""
    message = f"Kubernetes test control plane unavailable: {reason}"
    if _in_ci():
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``k8s`` marker unless the project configuration already does."""
    declared = config.getini("markers")
    if not any(str(line).split(":", 1)[0].strip() == "k8s" for line in declared):
        config.addinivalue_line(
            "markers", "k8s: needs the Kubernetes test control plane (tests/k8s/build.sh)"
        )


@pytest.fixture(scope="session")
def kube_cluster(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ControlPlane]:
    """Start the control plane once per test session and point ``KUBECONFIG`` at it."""
    problems = missing_prerequisites()
    if problems:
        _unavailable("; ".join(problems))
    cluster = ControlPlane(tmp_path_factory.mktemp("k8s-control-plane"))
    try:
        cluster.start()
    except PrerequisiteMissing as error:
        _unavailable(str(error))
    except ControlPlaneError as error:
        pytest.fail(f"the Kubernetes test control plane did not start: {error}", pytrace=False)
    request.config.stash[_CLUSTER_KEY] = cluster
    previous = os.environ.get("KUBECONFIG")
    os.environ["KUBECONFIG"] = str(cluster.kubeconfig)
    try:
        yield cluster
    finally:
        if previous is None:
            os.environ.pop("KUBECONFIG", None)
        else:
            os.environ["KUBECONFIG"] = previous
        cluster.stop()


@pytest.fixture(scope="session")
def kube_client(kube_cluster: ControlPlane) -> Iterator[ApiClient]:
    """An official Kubernetes Python client for the test cluster."""
    try:
        from kubernetes import config
    except ImportError:
        _unavailable("the `kubernetes` Python package is not installed (pip install kubernetes)")
    client = config.new_client_from_config(config_file=str(kube_cluster.kubeconfig))
    try:
        yield client
    finally:
        client.close()


def _namespace_name(node_name: str) -> str:
    """A valid, unique namespace name derived from the test's name."""
    stem = re.sub(r"[^a-z0-9-]+", "-", node_name.lower()).strip("-")[:40].strip("-")
    return f"t-{stem}-{secrets.token_hex(3)}" if stem else f"t-{secrets.token_hex(6)}"


@pytest.fixture
def kube_namespace(request: pytest.FixtureRequest, kube_client: ApiClient) -> Iterator[str]:
    """A fresh namespace, ready for pods, deleted (in the background) after the test."""
    from kubernetes.client import CoreV1Api, V1DeleteOptions, V1Namespace, V1ObjectMeta
    from kubernetes.client.exceptions import ApiException

    core = CoreV1Api(kube_client)
    name = _namespace_name(request.node.name)
    core.create_namespace(
        V1Namespace(metadata=V1ObjectMeta(name=name, labels={"mlc.test/namespace": "true"}))
    )
    # Pods are refused until the controller manager has created the `default` ServiceAccount.
    deadline = time.monotonic() + NAMESPACE_READY_TIMEOUT_S
    while True:
        try:
            core.read_namespaced_service_account("default", name)
            break
        except ApiException as error:
            if error.status != 404 or time.monotonic() > deadline:
                raise
        time.sleep(0.1)
    try:
        yield name
    finally:
        try:
            core.delete_namespace(name, body=V1DeleteOptions(propagation_policy="Background"))
        except ApiException as error:
            if error.status != 404:
                raise


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, exitstatus: int, config: pytest.Config
) -> None:
    """After a failed run that used the cluster, show where its logs are and how they end."""
    cluster = config.stash.get(_CLUSTER_KEY, None)
    if cluster is None:
        return
    terminalreporter.write_sep("-", "Kubernetes test control plane")
    terminalreporter.write_line(f"component logs: {cluster.logs}")
    if cluster.startup_seconds is not None:
        terminalreporter.write_line(f"start-up took {cluster.startup_seconds:.1f} s")
    terminalreporter.write_line(cluster.describe_peak_memory())
    if exitstatus not in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
        terminalreporter.write_line(cluster.log_tails(lines=15))
