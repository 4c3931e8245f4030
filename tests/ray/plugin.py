"""pytest fixtures for tests that need a real Ray cluster.

``ray_cluster``
    (session) a running :class:`~tests.ray.cluster.RayHead`, started on first use and stopped
    at the end of the session. Without Ray installed the tests skip locally and fail in CI.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator

import pytest

from tests.ray.cluster import RayHead, RayHeadError
from tests.requirements import unavailable

S3_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
"""The test S3 server's credentials, in the head's environment (a task opens the store with
the credentials of the node it runs on)."""


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[RayHead]:
    """A single-node Ray cluster for the whole session (see `tests.ray.cluster`)."""
    if importlib.util.find_spec("ray") is None:
        unavailable("Ray is not installed (pip install -e '.[test]')")
    head = RayHead(environ=S3_CREDENTIALS)
    try:
        head.start()
    except RayHeadError as error:
        pytest.fail(str(error), pytrace=False)
    try:
        yield head
    finally:
        head.stop()
