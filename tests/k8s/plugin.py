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
``kube_real_node``
    (session) a :class:`~tests.k8s.node.RealNode` joined to ``kube_cluster``: containerd and
    a kubelet that run pods for real. Started on first use; tests marked
    ``@pytest.mark.k8s_real`` get it without asking. At the end of the session it is stopped
    and everything it changed on the host is undone (a leftover is reported as an error).

Where the binaries (or ``openssl``, or the ``kubernetes`` package) are missing, the tests that
use these fixtures are skipped with a message saying how to get them, or fail when ``CI`` is
set to true: CI must never pass by skipping the Kubernetes tests. The same holds for the real
node, which also needs root and a machine where a container can start.
"""

from __future__ import annotations

import os
import re
import secrets
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, NoReturn

import pytest

from tests.k8s import node as real_node
from tests.k8s.cluster import (
    ControlPlane,
    ControlPlaneError,
    PrerequisiteMissing,
    missing_prerequisites,
)
from tests.requirements import unavailable

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

_CLUSTER_KEY = pytest.StashKey[ControlPlane]()
_REAL_NODE_KEY = pytest.StashKey[real_node.RealNode]()
NAMESPACE_READY_TIMEOUT_S = 30.0


def _unavailable(reason: str, what: str = "Kubernetes test control plane") -> NoReturn:
    """Skip locally, fail in CI: a missing control plane must not pass unnoticed there."""
    unavailable(f"{what} unavailable: {reason}")


_MARKERS = {
    "k8s": "needs the Kubernetes test control plane (tests/k8s/build.sh)",
    "k8s_real": "runs real pods on the real test node (containerd and a kubelet; needs root)",
}


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``k8s`` markers unless the project configuration already does."""
    declared = {str(line).split(":", 1)[0].strip() for line in config.getini("markers")}
    for name, description in _MARKERS.items():
        if name not in declared:
            config.addinivalue_line("markers", f"{name}: {description}")


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


@pytest.fixture(scope="session")
def kube_real_node(request: pytest.FixtureRequest) -> Iterator[real_node.RealNode]:
    """Join a real node (containerd and a kubelet) to the cluster, once per session."""
    what = "the real Kubernetes test node"
    # Checked before the control plane starts: without root there is no point in starting it.
    problems = real_node.missing_prerequisites()
    if problems:
        _unavailable("; ".join(problems), what)
    cluster: ControlPlane = request.getfixturevalue("kube_cluster")
    node = real_node.RealNode(cluster)
    try:
        node.start()
    except PrerequisiteMissing as error:
        _unavailable(str(error), what)
    except ControlPlaneError as error:
        pytest.fail(f"{what} did not start: {error}", pytrace=False)
    request.config.stash[_REAL_NODE_KEY] = node
    try:
        yield node
    finally:
        node.stop()
        left = node.leftovers()
        if left:
            pytest.fail(f"{what} left this on the host: {'; '.join(left)}", pytrace=False)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Before any fixture of a ``k8s_real`` test: say why the real node cannot run here."""
    if item.get_closest_marker("k8s_real") is not None:
        problems = real_node.missing_prerequisites()
        if problems:
            _unavailable("; ".join(problems), "the real Kubernetes test node")


@pytest.fixture(autouse=True)
def _k8s_real_marker(request: pytest.FixtureRequest) -> None:
    """Start the real node for tests marked ``k8s_real`` (as pytest-django's ``django_db``)."""
    if request.node.get_closest_marker("k8s_real") is not None:
        request.getfixturevalue("kube_real_node")


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
    node = config.stash.get(_REAL_NODE_KEY, None)
    if node is not None:
        terminalreporter.write_line(f"real node logs: {node.logs}")
        if node.startup_seconds is not None:
            terminalreporter.write_line(f"real node start-up took {node.startup_seconds:.1f} s")
        terminalreporter.write_line(node.describe_peak_memory())
        for line in real_node.describe_cleanup(node):
            terminalreporter.write_line(line)
    if exitstatus not in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
        terminalreporter.write_line(cluster.log_tails(lines=15))
        if node is not None:
            terminalreporter.write_line(node.log_tails(lines=15))
