"""The suite's shared set-up: the Kubernetes and Ray fixtures, Ctrl-C for the commands the
tests start, and an IR cache of the suite's own."""

from __future__ import annotations

import os
import shutil
import signal
import tempfile

import pytest

pytest_plugins = ["tests.k8s.plugin", "tests.ray.plugin"]


def pytest_configure(config: pytest.Config) -> None:
    """Tests press Ctrl-C on the `mlc` commands they start (SIGINT). A shell starts background
    jobs with SIGINT ignored, and children inherit that: run from one, every such test would
    wait for a command that never hears it. The suite undoes it for itself and its children."""
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    # Every `mlc` the tests run (in this process or as a child) keeps compiled IR in a
    # directory of the suite's, removed at the end, never in the user's `~/.cache/mlc/ir`.
    ir_cache = tempfile.mkdtemp(prefix="mlc-tests-ir-cache-")
    os.environ["MLC_IR_CACHE_DIR"] = ir_cache
    config.add_cleanup(lambda: shutil.rmtree(ir_cache, ignore_errors=True))
