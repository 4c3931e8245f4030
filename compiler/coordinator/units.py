"""The coordinator's book-keeping: one `Unit` per invocation, grouped by step."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from mlc.ir.model import Step
from mlc.runtime.attempt import Attempt
from mlc.runtime.cache_entries import CachedOutput
from mlc.runtime.invocation import Invocation
from mlc.runtime.report import FINAL_STATUSES
from mlc.runtime.step_logs import EarlierLog
from mlc.store.digest import Digest


@dataclass(eq=False)
class Unit:
    """One invocation as the coordinator tracks it."""

    invocation: Invocation
    status: str = "pending"
    reasons: list[str] = field(default_factory=list)
    cache_key: str | None = None
    parts: dict[str, object] | None = None
    inputs: dict[str, Digest | list[Digest]] = field(default_factory=dict)
    outputs: dict[str, CachedOutput] = field(default_factory=dict)
    attempts: int = 0
    not_before: float = 0.0
    """Monotonic time before which the next attempt may not start (retry backoff)."""
    started_at: float | None = None
    ended_at: float | None = None
    exit_code: int | None = None
    peak_memory_bytes: int | None = None
    """The largest resident set of the last attempt, when measured."""
    error: str | None = None
    log_ref: str | None = None
    log_tail: list[str] = field(default_factory=list)
    earlier_log: EarlierLog = field(default_factory=EarlierLog)
    """The log of the attempts so far, while another may follow."""
    attempt: Attempt | None = None
    """The attempt running now, if one is."""
    host: str | None = None
    """Where its last attempt ran, when the executor says (else the coordinator's host)."""
    cancel_requested: bool = False
    waiting_for: str = ""
    """What it was last shown waiting for (resources), so that it is shown once per change."""

    @property
    def step(self) -> Step:
        """The step this invocation belongs to."""
        return self.invocation.step

    @property
    def name(self) -> str:
        """`train` or `train[2]`."""
        return str(self.invocation.name)

    @property
    def final(self) -> bool:
        """True once the unit has ended (ran, cached, failed, skipped or cancelled)."""
        return self.status in FINAL_STATUSES

    def elapsed(self) -> float | None:
        """Seconds since the first attempt started (to its end when it ended)."""
        if self.started_at is None:
            return None
        return (self.ended_at or time.time()) - self.started_at


@dataclass(eq=False)
class StepState:
    """A step and its units."""

    step: Step
    units: list[Unit]
    decided: bool = False
    """Whether its gate, inputs and cache were looked at (once every upstream step ended)."""
    ended: int = 0
    """How many of its units have ended; kept by the coordinator as statuses change, like
    `running` (a `foreach` step may have thousands of units)."""
    running: int = 0

    @property
    def settled(self) -> bool:
        """True when every unit has ended."""
        return self.decided and self.ended == len(self.units)

    @property
    def outcome(self) -> str:
        """`succeeded`, `failed`, `cancelled` or `skipped` (meaningful once settled)."""
        statuses = {unit.status for unit in self.units}
        if statuses <= {"ran", "cached"}:
            return "succeeded"
        if "failed" in statuses:
            return "failed"
        if "cancelled" in statuses:
            return "cancelled"
        return "skipped"


def backoff_seconds(result_attempt: int, base: float, cap: float) -> float:
    """The wait before attempt `result_attempt + 1`: `base`, doubling each time, at most `cap`.

    >>> [backoff_seconds(n, 10, 60) for n in (1, 2, 3, 4)]
    [10.0, 20.0, 40.0, 60.0]
    """
    return float(min(base * 2 ** (result_attempt - 1), cap))
