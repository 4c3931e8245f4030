"""An in-process executor for the coordinator's own unit tests (never for the conformance
suite): attempts "run" by writing their outputs' bytes into the store, as a script says, and
report from another thread, as a real executor does."""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mlc.coordinator.executor import AttemptEnded, AttemptNote, KnownAttempt, Report
from mlc.ir.model import IRDocument, Resources
from mlc.runtime.attempt import Attempt
from mlc.runtime.cache_entries import CachedOutput
from mlc.runtime.step_logs import EarlierLog
from mlc.runtime.task import TaskResult
from mlc.store.base import Store


@dataclass
class Slots:
    """A capacity of `slots` attempts at once, each at most `cpu_millis`."""

    slots: int = 8
    cpu_millis: int = 4000
    in_use: int = 0
    most_in_use: int = 0

    def never_fits(self, resources: Resources) -> str | None:
        if resources.cpu_millis > self.cpu_millis:
            return f"it asks for {resources.cpu_millis} millicores and a slot has {self.cpu_millis}"
        return None

    def try_reserve(self, resources: Resources) -> object | None:
        if self.in_use >= self.slots:
            return None
        self.in_use += 1
        self.most_in_use = max(self.most_in_use, self.in_use)
        return "slot"

    def release(self, reservation: object) -> None:
        self.in_use -= 1


@dataclass
class FakeExecutor:
    """Runs attempts as `script` says: per invocation, one word per attempt (`ok`, `fail`,
    `hold`: wait for `cancel`; `wait:WHY`: note WHY, then succeed); `ok` when the script says
    nothing. `metrics` gives the
    content of a step's `metrics` outputs."""

    store: Store
    script: Mapping[str, Sequence[str]] = field(default_factory=dict)
    metrics: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    capacity: Slots = field(default_factory=Slots)
    problems: list[str] = field(default_factory=list)
    known: list[KnownAttempt] = field(default_factory=list)
    backend: str = "fake"
    started: list[Attempt] = field(default_factory=list)
    adopted: list[tuple[KnownAttempt, Attempt]] = field(default_factory=list)
    cancelled: list[Attempt] = field(default_factory=list)
    asked_known: list[Sequence[str]] = field(default_factory=list)
    begun: bool = False
    ended: bool = False
    _report: Report | None = None
    _held: dict[str, Attempt] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def check(self, document: IRDocument) -> list[str]:
        return list(self.problems)

    def begin(self, run_id: str, document: IRDocument, report: Report) -> None:
        self.begun = True
        self._report = report

    def start(self, attempt: Attempt) -> None:
        self.started.append(attempt)
        words = self.script.get(attempt.name, ())
        word = words[attempt.number - 1] if attempt.number <= len(words) else "ok"
        if word == "hold":
            with self._lock:
                self._held[attempt.key] = attempt
            return
        if word.startswith("wait:"):
            self._later(AttemptNote(attempt, word.removeprefix("wait:")))
            word = "ok"
        self._later(self._ended(attempt, ok=word == "ok"))

    def cancel(self, attempts: Sequence[Attempt], grace_seconds: float) -> None:
        for attempt in attempts:
            with self._lock:
                held = self._held.pop(attempt.key, None)
            if held is not None:
                self.cancelled.append(held)
                self._later(AttemptEnded(held, TaskResult(-15, "killed by signal SIGTERM")))

    def known_attempts(self, run_ids: Sequence[str]) -> list[KnownAttempt]:
        self.asked_known.append(list(run_ids))
        return [known for known in self.known if known.run_id in run_ids]

    def adopt(self, known: KnownAttempt, attempt: Attempt) -> None:
        self.adopted.append((known, attempt))
        self._later(self._ended(attempt, ok=True))

    def end(self) -> list[str]:
        self.ended = True
        return []

    def _ended(self, attempt: Attempt, *, ok: bool) -> AttemptEnded:
        log = EarlierLog(digest=f"log of {attempt.key}", size=1)
        if not ok:
            return AttemptEnded(attempt, TaskResult(3), log_whole=log, log_ref=log.digest)
        outputs = {}
        for port in attempt.step.outputs:
            if port.type.kind == "metrics":
                data = json.dumps(self.metrics.get(attempt.name, {})).encode()
            else:
                data = f"{attempt.name}.{port.name}".encode()
            outputs[port.name] = CachedOutput(self.store.put_bytes(data), port.type.kind)
        return AttemptEnded(
            attempt, TaskResult(0), outputs=outputs, log_whole=log, log_ref=log.digest
        )

    def _later(self, event: AttemptEnded | AttemptNote) -> None:
        """Reports from another thread, as a real executor's watcher does (in order)."""
        report = self._report
        assert report is not None, "start before begin"
        thread = threading.Thread(target=report, args=(event,))
        thread.start()
        thread.join()
