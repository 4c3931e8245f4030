"""A unit that does not fit now is shown waiting for what its capacity says it waits for,
once per change; a failed attempt's retry says when it comes."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from mlc.coordinator import RunSettings, apply_run
from mlc.ir.model import Resources
from mlc.runtime.report import UnitUpdate
from mlc.store.base import Store
from mlc.store.uri import open_store

from tests.coordinator.fake_executor import FakeExecutor, Slots
from tests.runtime.builders import document, sh, step


@dataclass
class SaysWhy(Slots):
    def why_waiting(self, resources: Resources) -> str | None:
        return f"waiting for a slot ({self.in_use} of {self.slots} in use)"


class Updates:
    def __init__(self) -> None:
        self.updates: list[UnitUpdate] = []

    def run_started(self, run_id: str, pipeline: str, units: Sequence[str]) -> None:
        pass

    def unit_changed(self, update: UnitUpdate) -> None:
        self.updates.append(update)

    def warning(self, message: str) -> None:
        pass

    def tick(self) -> None:
        pass


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = open_store(tmp_path / "store")
    yield opened
    opened.close()


def test_a_unit_that_does_not_fit_says_what_it_waits_for(store: Store, tmp_path: Path) -> None:
    executor = FakeExecutor(store, capacity=SaysWhy(slots=1), script={"a": ["fail", "ok"]})
    observer = Updates()
    steps = [step("a", sh("true"), retries=1, backoff_seconds=0.01), step("b", sh("true"))]
    report = apply_run(
        document(tmp_path, steps),
        executor,
        store=store,
        environ={},
        settings=RunSettings(kill_grace_seconds=0.5, target="test"),
        observer=observer,  # type: ignore[arg-type]
    )
    assert report.status == "succeeded"
    waits = [u for u in observer.updates if u.waiting_for]
    assert [(u.name, u.status, u.waiting_for) for u in waits][:1] == [
        ("b", "waiting", "waiting for a slot (1 of 1 in use)")
    ]
    retry = next(u for u in observer.updates if u.retry_in_s is not None)
    assert (retry.name, retry.status, retry.retry_in_s) == ("a", "waiting", 0.01)
    assert retry.detail.startswith("attempt 1 failed (")
