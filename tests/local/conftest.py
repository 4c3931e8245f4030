"""Fixtures for the local backend: a store in a temporary directory and a backend on it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from mlc.backends.local.backend import LocalBackend
from mlc.ir.model import IRDocument
from mlc.runtime.plan import Plan
from mlc.runtime.report import RunReport
from mlc.store.base import Store
from mlc.store.uri import open_store


class Runner:
    """Applies and plans documents on one store with a controlled environment."""

    def __init__(self, store: Store, environ: dict[str, str]) -> None:
        self.store = store
        self.environ = environ

    def backend(self) -> LocalBackend:
        """A backend on the test store and environment."""
        return LocalBackend(self.store, environ=self.environ)

    def apply(self, document: IRDocument, **options: object) -> RunReport:
        """Runs a document."""
        return self.backend().apply(document, **options)  # type: ignore[arg-type]

    def plan(self, document: IRDocument, **options: object) -> Plan:
        """Plans a document."""
        return self.backend().plan(document, **options)  # type: ignore[arg-type]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """An empty local store."""
    opened = open_store(tmp_path / "store")
    yield opened
    opened.close()


@pytest.fixture
def runner(store: Store) -> Runner:
    """A runner with the test process's environment, no GPUs and a short kill grace."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("MLC_")}
    environ["MLC_KILL_GRACE_SECONDS"] = "0.5"
    environ["MLC_LOCAL_GPUS"] = ""
    return Runner(store, environ)


@pytest.fixture
def work(tmp_path: Path) -> Path:
    """The spec directory of a test pipeline."""
    path = tmp_path / "spec"
    path.mkdir()
    return path


def by_name(report: RunReport) -> dict[str, object]:
    """The step reports of a run by invocation name."""
    return {step.name: step for step in report.steps}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked `slow` here run only when asked for: `-m slow` or `MLC_RUN_SLOW=1`."""
    if "slow" in (config.getoption("markexpr") or "") or os.environ.get("MLC_RUN_SLOW") == "1":
        return
    skip = pytest.mark.skip(reason="slow: run with `-m slow` or MLC_RUN_SLOW=1")
    here = Path(__file__).parent
    for item in items:
        if "slow" in item.keywords and here in Path(str(item.fspath)).parents:
            item.add_marker(skip)
