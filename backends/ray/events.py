"""A run's progress as lines of text, from a driver running as a Ray Job to `mlc apply`.

The driver on the cluster writes one line per event (`@mlc {json}`) to its stdout, which Ray
keeps as the job's log; the client tails the job's log and replays each event into its own
observer, so a run submitted through the Jobs API shows the same progress display, and ends
with the same report, as a run driven from this machine. Other lines of the job's log are
passed through as they are.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from mlc.runtime.report import RunObserver, RunReport, UnitUpdate

PREFIX = "@mlc "


class EventWriter:
    """An observer that writes every event as a line (the driver's side)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout

    def _emit(self, event: dict[str, Any]) -> None:
        self.stream.write(PREFIX + json.dumps(event) + "\n")
        self.stream.flush()

    def run_started(self, run_id: str, pipeline: str, units: Sequence[str]) -> None:
        """The run has an id and these invocations."""
        self._emit({"event": "run", "run_id": run_id, "pipeline": pipeline, "units": list(units)})

    def unit_changed(self, update: UnitUpdate) -> None:
        """An invocation changed status."""
        self._emit(
            {
                "event": "unit",
                "name": update.name,
                "status": update.status,
                "detail": update.detail,
                "attempt": update.attempt,
                "elapsed_s": update.elapsed_s,
            }
        )

    def warning(self, text: str) -> None:
        """A warning."""
        self._emit({"event": "warning", "text": text})

    def tick(self) -> None:
        """Nothing: the client ticks its own display."""

    def error(self, message: str) -> None:
        """The run could not start (a preflight error): nothing ran."""
        self._emit({"event": "error", "message": message})

    def report(self, report: RunReport) -> None:
        """The run's report, with the last lines of each failed step's log."""
        tails = {step.name: step.log_tail for step in report.steps if step.log_tail}
        self._emit({"event": "report", "report": report.to_json(), "log_tails": tails})


class DriverError(Exception):
    """The driver could not start the run; `str()` is its message."""


def replay(line: str, observer: RunObserver) -> RunReport | None:
    """Feeds one event line of the driver's log to `observer`; returns the report when the
    line carries it, raises `DriverError` when it says the run could not start."""
    event = json.loads(line[len(PREFIX) :])
    kind = event.get("event")
    if kind == "run":
        observer.run_started(event["run_id"], event["pipeline"], event["units"])
    elif kind == "unit":
        observer.unit_changed(
            UnitUpdate(
                event["name"],
                event["status"],
                event.get("detail", ""),
                event.get("attempt", 0),
                event.get("elapsed_s"),
            )
        )
    elif kind == "warning":
        observer.warning(event["text"])
    elif kind == "error":
        raise DriverError(event["message"])
    elif kind == "report":
        report = RunReport.from_json(event["report"])
        tails = event.get("log_tails") or {}
        for step in report.steps:
            step.log_tail = list(tails.get(step.name, []))
        return report
    return None


def is_event(line: str) -> bool:
    """Whether a line of the driver's log is one of mlc's events."""
    return line.startswith(PREFIX)
