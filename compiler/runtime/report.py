"""What a backend tells its caller about a run: live updates while it runs, a report at the end.

The CLI implements `RunObserver` (a live display, plain lines, or nothing for JSON output) and
renders `RunReport.to_json()`; it never needs to import a backend to do so.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

UNIT_STATUSES = ("pending", "waiting", "running", "ran", "cached", "failed", "skipped", "cancelled")
"""`waiting`: decided to run, waiting for resources or a retry's backoff."""

FINAL_STATUSES = frozenset({"ran", "cached", "failed", "skipped", "cancelled"})


def gib(size: int) -> str:
    """A size in bytes as people read it in a message.

    >>> gib(3 * 2**29)
    '1.5 GiB'
    """
    return f"{size / 2**30:.1f} GiB"


@dataclass(frozen=True, slots=True)
class UnitUpdate:
    """A change of one invocation's status, with a short detail (`attempt 2/3`, a reason)."""

    name: str
    status: str
    detail: str = ""
    attempt: int = 0
    elapsed_s: float | None = None
    waiting_for: str = ""
    """Of a waiting invocation: what it waits for now (`waiting for 2 CPUs (2 of 2 in use)`)."""
    retry_in_s: float | None = None
    """Of a waiting invocation whose attempt failed: seconds until the next attempt, counted
    from when the update was made."""


class RunObserver(Protocol):
    """Receives a run's progress; every method is called from the scheduler's thread."""

    def run_started(self, run_id: str, pipeline: str, units: Sequence[str]) -> None:
        """The run has an id and these invocations, in order."""

    def unit_changed(self, update: UnitUpdate) -> None:
        """An invocation changed status."""

    def warning(self, text: str) -> None:
        """Something the user should know that does not stop the run."""

    def tick(self) -> None:
        """Called a few times a second while the run is in progress (for elapsed times)."""


class SilentObserver:
    """An observer that shows nothing."""

    def run_started(self, run_id: str, pipeline: str, units: Sequence[str]) -> None:
        """Nothing."""

    def unit_changed(self, update: UnitUpdate) -> None:
        """Nothing."""

    def warning(self, text: str) -> None:
        """Nothing."""

    def tick(self) -> None:
        """Nothing."""


@dataclass(slots=True)
class StepReport:
    """The outcome of one invocation."""

    name: str
    status: str
    cache_key: str | None = None
    outputs: dict[str, str] = field(default_factory=dict)
    attempts: int = 0
    duration_s: float = 0.0
    reasons: list[str] = field(default_factory=list)
    error: str | None = None
    log_ref: str | None = None
    log_tail: list[str] = field(default_factory=list)
    peak_memory_bytes: int | None = None
    exit_code: int | None = None
    """The exit code of the last attempt (negative: the signal that killed it), if one ran."""

    def to_json(self) -> dict[str, Any]:
        """A plain dict: name, status, cache_key, outputs (name -> digest), attempts, duration_s,
        and when present reasons (why it ran or was skipped), error, log, exit_code and
        peak_memory_bytes (the largest resident set of the step's last attempt)."""
        data: dict[str, Any] = {
            "name": self.name,
            "status": self.status,
            "cache_key": self.cache_key,
            "outputs": dict(sorted(self.outputs.items())),
            "attempts": self.attempts,
            "duration_s": round(self.duration_s, 3),
        }
        if self.reasons:
            data["reasons"] = self.reasons
        if self.error:
            data["error"] = self.error
        if self.log_ref:
            data["log"] = self.log_ref
        if self.exit_code is not None:
            data["exit_code"] = self.exit_code
        if self.peak_memory_bytes is not None:
            data["peak_memory_bytes"] = self.peak_memory_bytes
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> StepReport:
        """The report a `to_json` dict describes (the log's last lines are not in it)."""
        return cls(
            name=data["name"],
            status=data["status"],
            cache_key=data.get("cache_key"),
            outputs=dict(data.get("outputs") or {}),
            attempts=data.get("attempts", 0),
            duration_s=data.get("duration_s", 0.0),
            reasons=list(data.get("reasons") or []),
            error=data.get("error"),
            log_ref=data.get("log"),
            peak_memory_bytes=data.get("peak_memory_bytes"),
            exit_code=data.get("exit_code"),
        )


@dataclass(slots=True)
class RunReport:
    """The outcome of a run."""

    run_id: str
    pipeline: str
    status: str
    steps: list[StepReport] = field(default_factory=list)
    duration_s: float = 0.0
    outputs: dict[str, Any] = field(default_factory=dict)
    """The pipeline's exported outputs: name -> digest (a list for a foreach step)."""
    warnings: list[str] = field(default_factory=list)

    def count(self, status: str) -> int:
        """How many invocations ended with this status."""
        return sum(1 for step in self.steps if step.status == status)

    def to_json(self) -> dict[str, Any]:
        """The document `mlc apply --format json` prints."""
        return {
            "run_id": self.run_id,
            "pipeline": self.pipeline,
            "status": self.status,
            "duration_s": round(self.duration_s, 3),
            "steps": [step.to_json() for step in self.steps],
            "outputs": self.outputs,
            "warnings": self.warnings,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RunReport:
        """The report a `to_json` dict describes (a run reported by another process)."""
        return cls(
            run_id=data["run_id"],
            pipeline=data["pipeline"],
            status=data["status"],
            steps=[StepReport.from_json(step) for step in data.get("steps") or []],
            duration_s=data.get("duration_s", 0.0),
            outputs=dict(data.get("outputs") or {}),
            warnings=list(data.get("warnings") or []),
        )
