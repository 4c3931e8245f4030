"""The `backend` every conformance case runs on, and the `not_on` marks of cases a backend
cannot support."""

from __future__ import annotations

from pathlib import Path

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

CLUSTERS: dict[str, str] = {"ray": "conformance_ray"}
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


@pytest.fixture
def reference_backend() -> Backend:
    """The backend the others are compared with: a run there is what a run must look like."""
    return declared(REFERENCE)


@pytest.fixture
def projects(tmp_path: Path, backend: Backend, reference_backend: Backend) -> Projects:
    """The projects of a conformance case."""
    return Projects(tmp_path, backend, reference_backend)
