"""The suite's shared set-up: the Kubernetes and Ray fixtures, and Ctrl-C for the commands the
tests start."""

from __future__ import annotations

import signal

import pytest

pytest_plugins = ["tests.k8s.plugin", "tests.ray.plugin"]


def pytest_configure(config: pytest.Config) -> None:
    """Tests press Ctrl-C on the `mlc` commands they start (SIGINT). A shell starts background
    jobs with SIGINT ignored, and children inherit that: run from one, every such test would
    wait for a command that never hears it. The suite undoes it for itself and its children."""
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
