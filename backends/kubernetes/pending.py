"""What a pod's status, or a Warning event about it, means for its attempt.

Pure functions of the objects the watches deliver (no API calls), so each rule is a unit
test. The policy for a pod that has not started, reason by reason:

| what Kubernetes says | what mlc does |
|---|---|
| `InvalidImageName` | fails at once: no retry can fix the name |
| `FailedCreate` (PodSecurity, forbidden, invalid) | fails at once with the API server's words |
| image pull and container-config errors | shown live; fails after `image_pull_timeout` |
| `Unschedulable` / `FailedScheduling` | the scheduler's reason shown live; fails after `pending_timeout` |
| `FailedCreate` for an exceeded quota | shown live; fails after `pending_timeout` |
| any other Warning (`FailedMount`, …) | shown live |

A pod that ends carries the runtime's result in its termination message; a pod stopped at its
deadline (the step's timeout, as a backstop) is a timed-out attempt; a pod that was disrupted
(preempted, evicted) is replaced by the Job without using up a retry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlc.backends.kubernetes.manifests import CONTAINER
from mlc.backends.kubernetes.settings import KubeSettings
from mlc.runtime.task import TaskResult

IMMEDIATE = frozenset({"InvalidImageName"})
AFTER_GRACE = frozenset(
    {
        "ErrImagePull",
        "ImagePullBackOff",
        "ErrImageNeverPull",
        "CreateContainerConfigError",
        "CreateContainerError",
        "RunContainerError",
    }
)
IMAGE = "image"
UNSCHEDULABLE = "unschedulable"
QUOTA = "quota"


@dataclass
class Verdict:
    """What to do about an attempt: nothing, show a note, fail it, or end it (its pod ended)."""

    note: str | None = None
    fail: bool = False
    error: str | None = None
    retryable: bool = True
    ended: bool = False
    message: str | None = None
    """The termination message of an ended pod (the runtime's result, when it ran)."""
    result: TaskResult | None = None
    """How an ended pod's container ended, when the message holds no result."""
    stopped: TaskResult | None = None
    """Set when Kubernetes stopped the pod at its deadline: overrides the runtime's result."""


@dataclass
class PodState:
    """Why an attempt's pod waits, and since when (monotonic seconds; None: it does not)."""

    kind: str = ""
    reason: str = ""
    since: float | None = None

    def wait(self, kind: str, reason: str, now: float) -> Verdict:
        if self.kind != kind or self.since is None:
            self.kind, self.since = kind, now
        self.reason = reason
        prefix = {
            IMAGE: "its container cannot start",
            UNSCHEDULABLE: "waiting for a node",
            QUOTA: "waiting for quota",
        }[kind]
        return Verdict(note=f"{prefix}: {reason}")

    def clear(self) -> None:
        self.kind, self.reason, self.since = "", "", None

    def overdue(self, now: float, settings: KubeSettings) -> Verdict | None:
        """A failure once the wait has lasted longer than the target allows."""
        if self.since is None:
            return None
        if self.kind == IMAGE:
            limit, retryable = settings.image_pull_timeout_seconds, True
            what = "its container could not start"
        else:
            limit, retryable = settings.pending_timeout_seconds, False
            what = "no node could run it" if self.kind == UNSCHEDULABLE else "no quota was left"
        if now - self.since <= limit:
            return None
        return Verdict(
            fail=True, error=f"{what} within {limit:g}s: {self.reason}", retryable=retryable
        )


def judge_pod(
    state: PodState, pod: dict[str, Any], now: float, *, timeout_seconds: float | None = None
) -> Verdict:
    """What the pod's current status means (see the module docstring)."""
    status = pod.get("status") or {}
    phase = status.get("phase", "Pending")
    container = _container(status)
    if phase in ("Succeeded", "Failed"):
        disrupted = _condition(status, "DisruptionTarget")
        if disrupted is not None and phase == "Failed":
            state.clear()
            why = disrupted.get("message") or disrupted.get("reason") or "disrupted"
            return Verdict(note=f"its pod was stopped by the cluster ({why}); it starts again")
        return _ended(status, container, timeout_seconds)
    waiting = (container.get("state") or {}).get("waiting") or {}
    reason = waiting.get("reason", "")
    detail = f"{reason}: {waiting.get('message', '')}".strip(": ")
    if reason in IMMEDIATE:
        return Verdict(fail=True, error=f"its image cannot be used: {detail}", retryable=False)
    if reason in AFTER_GRACE:
        return state.wait(IMAGE, detail, now)
    scheduled = _condition(status, "PodScheduled", "False")
    if phase == "Pending" and scheduled is not None and scheduled.get("reason") == "Unschedulable":
        return state.wait(UNSCHEDULABLE, scheduled.get("message", "unschedulable"), now)
    if phase == "Running" and state.since is not None:
        state.clear()
        node = pod.get("spec", {}).get("nodeName")
        return Verdict(note=f"running on {node}" if node else "running")
    return Verdict()


def judge_warning(state: PodState, event: dict[str, Any], now: float) -> Verdict:
    """What a Warning event about an attempt's Job or pod means."""
    reason = event.get("reason", "")
    message = " ".join(str(event.get("message", "")).split())
    if reason == "FailedCreate":
        if "exceeded quota" in message:
            return state.wait(QUOTA, message, now)
        return Verdict(
            fail=True, error=f"Kubernetes refused to create its pod: {message}", retryable=False
        )
    if reason == "FailedScheduling":
        return state.wait(UNSCHEDULABLE, message, now)
    if reason in ("Failed", "BackOff", "InspectFailed") and "image" in message.lower():
        if state.kind == IMAGE:  # the pod's own status already says it, in more words
            return Verdict()
        return state.wait(IMAGE, message, now)
    if reason and message:  # anything else the cluster warns about (FailedMount, …): shown
        return Verdict(note=f"{reason}: {message}")
    return Verdict()


def _ended(
    status: dict[str, Any], container: dict[str, Any], timeout_seconds: float | None
) -> Verdict:
    terminated = (container.get("state") or {}).get("terminated") or {}
    code = int(terminated.get("exitCode", -9)) if terminated else -9
    message = terminated.get("message")
    stopped = None
    if status.get("reason") == "DeadlineExceeded":
        stopped = TaskResult.timed_out_after(code, timeout_seconds or 0.0)
    why = terminated.get("reason") or status.get("reason") or "no status"
    tail = " ".join((message or "").strip().splitlines()[-3:])[-300:]
    error = f"its pod ended without mlc's result ({why}, exit code {code})"
    if why == "OOMKilled":
        error = f"its container ran out of memory (OOMKilled, exit code {code})"
    return Verdict(
        ended=True,
        message=message,
        result=TaskResult(code, "out of memory" if why == "OOMKilled" else None),
        error=f"{error}: {tail}" if tail else error,
        stopped=stopped,
    )


def _container(status: dict[str, Any]) -> dict[str, Any]:
    for container in status.get("containerStatuses") or []:
        if container.get("name") == CONTAINER:
            found: dict[str, Any] = container
            return found
    return {}


def _condition(status: dict[str, Any], kind: str, value: str = "True") -> dict[str, Any] | None:
    for condition in status.get("conditions") or []:
        if condition.get("type") == kind and condition.get("status") == value:
            found: dict[str, Any] = condition
            return found
    return None
