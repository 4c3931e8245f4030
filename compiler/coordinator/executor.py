"""The executor interface: what a backend implements so that the coordinator can run on it.

An executor answers *where* an attempt runs, never *whether*: the coordinator
(`mlc.coordinator.run`) decides every step (cached, skipped, waiting, retried, cancelled) and
an executor carries out the attempts it is handed. It is the only part of a backend that
knows whether an attempt is a worker process, a Ray task or a Kubernetes Job.

```
 coordinator                                executor
 ───────────                                ────────
 capacity.never_fits(resources)   ───────▶  "it asks for 8 CPUs and this machine has 2"
 capacity.try_reserve(resources)  ───────▶  a reservation, or None: not now
 start(Attempt)                   ───────▶  runs it somewhere; returns at once
                                  ◀───────  report(AttemptNote)    (while it waits: why, e.g.
                                                                     "0/3 nodes have a GPU")
                                  ◀───────  report(AttemptEnded)   (exactly once per attempt,
                                                                     from any thread)
 cancel(attempts, grace)          ───────▶  stops them; each still reports its end
 known_attempts(run ids)          ───────▶  attempts of a run whose coordinator has gone
 adopt(KnownAttempt, Attempt)     ───────▶  reports the end of an attempt it already runs
```

Everything an attempt needs crosses the boundary as data: an `Attempt`
(`mlc.runtime.attempt`) is plain JSON through `to_json()`, so a remote executor can ship it to
where the attempt runs, and the runtime (the same code everywhere) renders the task there
(`render_attempt`), materialises the inputs, runs it (`carry_out`), puts the outputs and the
cache entry into the shared store, and the step's log goes to the store too
(`mlc.runtime.step_logs`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from mlc.ir.model import IRDocument, Resources
from mlc.runtime.attempt import Attempt
from mlc.runtime.cache_entries import CachedOutput
from mlc.runtime.step_logs import EarlierLog
from mlc.runtime.task import TaskResult


@dataclass(slots=True)
class AttemptEnded:
    """How an attempt ended, as its executor reports it (once per attempt).

    `outputs` is set exactly when the attempt succeeded: its outputs and its cache entry are
    in the store. Otherwise `result` (how the task ended, when it ran) and `error` (why there
    are no outputs) say why. The log is the step's whole log so far (the earlier attempts'
    and this one's), already in the store.
    """

    attempt: Attempt
    result: TaskResult | None = None
    outputs: dict[str, CachedOutput] | None = None
    error: str | None = None
    log_ref: str | None = None
    """The digest of the step's log in the store."""
    log_tail: list[str] = field(default_factory=list)
    log_whole: EarlierLog = field(default_factory=EarlierLog)
    """The same log, for a retry to continue."""
    log_problem: str | None = None
    """Why the log could not be stored, if it could not."""
    host: str | None = None
    """Where it ran, when that is not the coordinator's host."""
    retryable: bool = True
    """False when another attempt cannot fare better (a request no node can ever satisfy):
    the step fails without using its retries."""


@dataclass(frozen=True, slots=True)
class KnownAttempt:
    """An attempt an executor already runs or ran for an earlier coordinator of a run."""

    run_id: str
    invocation: str
    number: int
    cache_key: str | None
    running: bool
    """False once it has ended (its outputs, if any, are in the store and its cache)."""


@dataclass(frozen=True, slots=True)
class AttemptNote:
    """What a started attempt is doing, when the user should know before it ends (it waits
    for a node: the cluster's reason). Shown as the step's progress detail."""

    attempt: Attempt
    detail: str


class Capacity(Protocol):
    """What an executor can run at once, and what it can never run."""

    def never_fits(self, resources: Resources) -> str | None:
        """Why a request can never be granted (`it asks for 4 GPUs and …`), or None."""

    def try_reserve(self, resources: Resources) -> object | None:
        """A reservation for the request, or None when it does not fit now. A remote
        executor whose cluster queues work itself may always grant."""

    def release(self, reservation: object) -> None:
        """Gives a reservation back (its attempt ended)."""

    # Optional: `why_waiting(resources) -> str | None`, what a request that does not fit now
    # waits for (`waiting for 2 CPUs (2 of 2 in use)`), shown beside the waiting step.


Report = Callable[[AttemptEnded | AttemptNote], None]
"""How an executor reports notes and ended attempts (callable from any thread)."""


class Executor(Protocol):
    """Where attempts run (see the module docstring). Every method but `report`'s callback
    is called from the coordinator's thread."""

    backend: str
    """The backend's name, recorded in lineage."""

    @property
    def capacity(self) -> Capacity:
        """What it can run at once, and what it can never run."""

    def check(self, document: IRDocument) -> list[str]:
        """Before anything runs: why steps of the document cannot run here (one line each)."""

    def begin(self, run_id: str, document: IRDocument, report: Report) -> None:
        """The run starts: get ready (start workers, connect) and report ends to `report`."""

    def start(self, attempt: Attempt) -> None:
        """Starts an attempt and returns; its end is reported once, however it ends (a
        failure to start is an ended attempt with an `error`). The executor enforces the
        step's timeout and reports a timed-out attempt with `result.timed_out`."""

    def cancel(self, attempts: Sequence[Attempt], grace_seconds: float) -> None:
        """Stops these attempts (all of the run's when it is cancelled) at once: SIGTERM, one
        shared grace period, SIGKILL; may block for the grace period. Each end is still
        reported."""

    def known_attempts(self, run_ids: Sequence[str]) -> list[KnownAttempt]:
        """The attempts of these runs that this executor runs or ran and whose coordinator
        has gone (a local executor's attempts die with their coordinator: none)."""

    def adopt(self, known: KnownAttempt, attempt: Attempt) -> None:
        """Takes over a running known attempt: its end is reported as `attempt`'s."""

    def end(self) -> list[str]:
        """The run is over (every started attempt has reported): releases everything;
        returns what went wrong doing so, as warnings."""
