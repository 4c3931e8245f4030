"""The Kubernetes executor: each attempt is one Job whose pod runs mlc's step runtime (the
first attempts of a `foreach` step's items started together are one Indexed Job, one index
each).

`start` queues the Job's creation (one API write, rate-limited, on a pool of threads) and
returns; `flush`, at the end of the coordinator's pass, submits the batched items. Everything after comes from three watches of the namespace (`watcher.py`): the
run's pods and Jobs by label, and Warning events. An attempt ends on its pod's terminal status
and termination message (the Job's `Complete` condition lags about a second behind), read by
`mlc.backends.kubernetes.message`.

A pod that waits is never silent (`pending.py` decides): the scheduler's reason ("0/3 nodes
are available: 3 Insufficient nvidia.com/gpu") and image or container problems are sent to the
coordinator as notes while they last; an invalid image name or a rejected pod (PodSecurity)
fails at once; image and container errors fail after `image_pull_timeout`; an unschedulable
pod (or a quota that stays exceeded) fails after `pending_timeout`.

Jobs outlive `mlc apply`: after a `kill -9`, the next apply lists the Jobs of the unfinished
run (`known_attempts`) and adopts those still running; a create that meets an existing Job of
the same attempt (same spec hash) adopts it too. Nothing is created twice.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from mlc.backends.kubernetes import names
from mlc.backends.kubernetes.api import Conflict, KubeApi, KubeError
from mlc.backends.kubernetes.logs import record_cluster
from mlc.backends.kubernetes.manifests import (
    JobIdentity,
    PodEnvironment,
    describe_request,
    job_manifest,
)
from mlc.backends.kubernetes.message import STORE, attempt_environment, decode_result
from mlc.backends.kubernetes.pending import PodState, Verdict, judge_pod, judge_warning
from mlc.backends.kubernetes.settings import KubeSettings
from mlc.backends.kubernetes.watcher import Watcher
from mlc.coordinator.executor import AttemptNote, KnownAttempt, Report
from mlc.coordinator.remote import attempt_ended
from mlc.installation import pip_install
from mlc.ir.model import IRDocument, Resources, Target
from mlc.runtime.attempt import Attempt
from mlc.runtime.task import TaskResult
from mlc.store.base import Store
from mlc.store.errors import StoreError
from mlc.store.uri import store_address

CREATE_THREADS = 16
"""Threads creating Jobs: enough that the rate limit (`qps`), not the API server's latency,
bounds the creates (N threads create at most N / latency Jobs per second: 4 made 26 per second
at 150 ms, under load)."""
TICK_SECONDS = 0.5
"""How often waiting pods are checked against their deadlines (no API call)."""
SYNC_SECONDS = 30.0
CREDENTIAL_OPTIONS = frozenset({"key", "secret", "token", "password", "session_token"})
"""Storage options never written into a manifest: pods get credentials from their own
environment (`env_from_secrets`) or service account."""


class ClusterQueue:
    """The cluster queues work itself: every request is granted at once; what no node can
    run is reported by the scheduler, live, and bounded by `pending_timeout`."""

    def never_fits(self, resources: Resources) -> str | None:
        return None

    def try_reserve(self, resources: Resources) -> object | None:
        return True

    def release(self, reservation: object) -> None:
        pass


@dataclass
class _Tracked:
    """One attempt's Job, from its creation to its end."""

    attempt: Attempt
    job: str
    index: int | None = None
    """Its completion index in an Indexed Job (the items of a `foreach` step), else None."""
    created: bool = False
    done: bool = False
    stop_reason: str | None = None
    state: PodState = field(default_factory=PodState)
    node: str | None = None
    last_note: str = ""

    @property
    def key(self) -> str:
        """Its pod's key: the Job's name, and the index in an Indexed Job."""
        return pod_key(self.job, self.index)


class KubernetesExecutor:
    """Runs attempts as Kubernetes Jobs (see the module docstring)."""

    backend = "kubernetes"
    holds_secrets = True
    """Secrets are Kubernetes Secrets (`secretKeyRef`), not read from this environment."""

    def __init__(self, store: Store, target: Target | None, base_dir: str | None = None) -> None:
        self.store = store
        self.target = target
        self.base_dir = base_dir
        self._settings: KubeSettings | None = None
        self._capacity = ClusterQueue()
        self._api: KubeApi | None = None
        self._report: Report | None = None
        self._run_id = ""
        self._pipeline = ""
        self._spec = ""
        self._owner: dict[str, str] | None = None
        self._lock = threading.RLock()
        self._connect_lock = threading.Lock()
        self._owner_lock = threading.Lock()
        self._tracked: dict[str, _Tracked] = {}
        self._by_key: dict[str, _Tracked] = {}
        self._pods: dict[str, dict[str, Any]] = {}
        self._pod_jobs: dict[str, str] = {}
        self._known_jobs: dict[tuple[str, str, int], tuple[str, int | None]] = {}
        self._batches: dict[str, list[_Tracked]] = {}
        """First attempts of `foreach` items started in this pass, by step: one Indexed Job
        each, at `flush`."""
        self._pool: ThreadPoolExecutor | None = None
        self._watchers: list[Watcher] = []
        self._problems: list[str] = []
        self._stopping = threading.Event()
        self._ticker: threading.Thread | None = None

    @property
    def capacity(self) -> ClusterQueue:
        return self._capacity

    @property
    def settings(self) -> KubeSettings:
        if self._settings is None:
            self._settings = KubeSettings.of(self.target, self.base_dir)
        return self._settings

    @property
    def api(self) -> KubeApi:
        """The API client (connected, watches started, on first use)."""
        self._connect()
        assert self._api is not None
        return self._api

    # ------------------------------------------------------------------ the interface

    def check(self, document: IRDocument) -> list[str]:
        """The client is installed, the settings are valid, the store is one pods reach."""
        problems = []
        if importlib.util.find_spec("kubernetes") is None:
            problems.append(
                "the Kubernetes client is not installed in this Python environment: "
                f"`{pip_install('kubernetes')}`"
            )
        try:
            self._settings = KubeSettings.of(document.target, document.base_dir)
        except ValueError as exc:
            problems.append(str(exc))
        if not self.store.is_remote:
            problems.append(
                f"the store `{self.store.uri}` is a directory on this machine, which pods "
                'cannot reach: give the target a shared store (`store = "s3://…"`)'
            )
        if self._settings is None or not self._settings.image:
            problems += [
                f"step `{step.name}` has no `image`: Kubernetes runs every step in a container"
                for step in document.pipeline.steps
                if not step.image
            ]
        return problems

    def begin(self, run_id: str, document: IRDocument, report: Report) -> None:
        """Nothing is contacted yet: the cluster is, when a step must run."""
        self._report = report
        self._run_id = run_id
        self._pipeline = document.pipeline.name
        self._spec = document.spec

    def start(self, attempt: Attempt) -> None:
        """Queues the creation of the attempt's Job and returns. The first attempts of a
        `foreach` step's items wait for `flush`, to become one Indexed Job."""
        cache_key = attempt.cache.key if attempt.cache is not None else None
        name = names.job_name(attempt.run_id, attempt.name, cache_key, attempt.number)
        tracked = _Tracked(attempt, name)
        with self._lock:
            self._by_key[attempt.key] = tracked
            if attempt.invocation.index is not None and attempt.number == 1:
                self._batches.setdefault(attempt.step.id, []).append(tracked)
                return
            self._tracked[tracked.key] = tracked
        self._submit(self._create, tracked)

    def flush(self) -> None:
        """The coordinator's pass ended: each step's batch of items becomes one Job."""
        with self._lock:
            batches, self._batches = list(self._batches.values()), {}
            for batch in batches:
                if len(batch) > 1:
                    job = indexed_job_name(batch)
                    for index, tracked in enumerate(batch):
                        tracked.job, tracked.index = job, index
                for tracked in batch:
                    self._tracked[tracked.key] = tracked
        for batch in batches:
            if len(batch) == 1:
                self._submit(self._create, batch[0])
            else:
                self._submit(self._create_indexed, batch)

    def cancel(self, attempts: Sequence[Attempt], grace_seconds: float) -> None:
        """Deletes the attempts' Jobs and pods (the pods get the grace period) and reports
        each as cancelled."""
        for attempt in attempts:
            with self._lock:
                tracked = self._by_key.get(attempt.key)
                if tracked is None or tracked.done:
                    continue
                tracked.stop_reason = "cancelled"
                created = tracked.created
            if created:
                self._delete(tracked, grace_seconds, whole=self._all_stopping(tracked.job))
            self._end(tracked, result=TaskResult(-15, "cancelled"))

    def known_attempts(self, run_ids: Sequence[str]) -> list[KnownAttempt]:
        """The Jobs of these runs in the namespace (running: not yet Complete or Failed)."""
        if not run_ids:
            return []
        values = ",".join(sorted({names.label_value(r) for r in run_ids}))
        selector = f"{names.MANAGED_BY}={names.MANAGER},{names.RUN} in ({values})"
        try:
            listed = self.api.list(self.api.jobs_path(), selector)
        except KubeError as exc:
            self._problems.append(f"the Jobs of earlier runs could not be listed: {exc}")
            return []
        known = []
        by_label = {names.label_value(r): r for r in run_ids}
        for job in listed.get("items") or []:
            metadata = job.get("metadata", {})
            labels, annotations = metadata.get("labels") or {}, metadata.get("annotations") or {}
            run_id = by_label.get(labels.get(names.RUN, ""))
            if run_id is None:
                continue
            number = int(labels.get(names.ATTEMPT, "1"))
            finished = _condition(job, "Complete") or _condition(job, "Failed")
            if names.INVOCATIONS in annotations:  # an Indexed Job: one attempt per index
                invocations = json.loads(annotations[names.INVOCATIONS])
                keys = json.loads(annotations.get(names.CACHE_KEYS) or "[]")
                status = job.get("status") or {}
                ended = indexes(status.get("completedIndexes")) | indexes(
                    status.get("failedIndexes")
                )
                for index, invocation in enumerate(invocations):
                    self._known_jobs[(run_id, invocation, number)] = (metadata["name"], index)
                    key = keys[index] if index < len(keys) else None
                    running = not finished and index not in ended
                    known.append(KnownAttempt(run_id, invocation, number, key or None, running))
                continue
            invocation = annotations.get(names.INVOCATION)
            if not invocation:
                continue
            self._known_jobs[(run_id, invocation, number)] = (metadata["name"], None)
            key = annotations.get(names.CACHE_KEY) or None
            known.append(KnownAttempt(run_id, invocation, number, key, running=not finished))
        return known

    def adopt(self, known: KnownAttempt, attempt: Attempt) -> None:
        """Follows a known Job: its pod's end is reported as `attempt`'s."""
        name, index = self._known_jobs[(known.run_id, known.invocation, known.number)]
        tracked = _Tracked(attempt, name, index=index, created=True)
        with self._lock:
            self._tracked[tracked.key] = tracked
            self._by_key[attempt.key] = tracked
            pod = self._pods.get(tracked.key)
        if pod is not None:
            self._judge(tracked, pod)

    def end(self) -> list[str]:
        """Stops the watches and the threads; what went wrong on the way, as warnings."""
        self._stopping.set()
        for watcher in self._watchers:
            watcher.stop()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=False)
        if self._api is not None:
            self._api.close()
        return list(dict.fromkeys(self._problems))

    # ------------------------------------------------------------------ creating

    def _submit(self, work: Any, *args: Any) -> None:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(CREATE_THREADS, thread_name_prefix="mlc-k8s")
            pool = self._pool
        pool.submit(work, *args)

    def _create(self, tracked: _Tracked) -> None:
        """(On a pool thread.) Creates the attempt's Job, or adopts the same one."""
        attempt = tracked.attempt
        if tracked.stop_reason is not None:
            return
        try:
            api = self.api
            manifest = self.manifest(attempt, owner=self._run_owner())
            job, created = api.create(api.jobs_path(), manifest)
        except Conflict as exc:
            self._end(tracked, error=str(exc), retryable=False)
            return
        except (KubeError, StoreError, OSError) as exc:
            retryable = not isinstance(exc, KubeError) or exc.status not in (400, 403, 422)
            self._end(tracked, error=f"the Job could not be created: {exc}", retryable=retryable)
            return
        with self._lock:
            tracked.created = True
            stopped = tracked.stop_reason is not None
            pod = None if created else self._pods.get(tracked.key)
        if stopped:  # cancelled while it was being created
            self._delete(tracked, 0.0)
        elif pod is not None:
            self._judge(tracked, pod)
        elif job.get("spec", {}).get("suspend") and self.settings.queue:
            self._note(tracked, f"queued in Kueue queue `{self.settings.queue}`")

    def _create_indexed(self, batch: list[_Tracked]) -> None:
        """(On a pool thread.) Creates one Indexed Job for the items of a `foreach` step."""
        try:
            api = self.api
            manifest = self.indexed_manifest([t.attempt for t in batch], owner=self._run_owner())
            _, created = api.create(api.jobs_path(), manifest)
        except (KubeError, StoreError, OSError) as exc:
            retryable = not isinstance(exc, KubeError) or exc.status not in (400, 403, 409, 422)
            for tracked in batch:
                self._end(
                    tracked, error=f"the Job could not be created: {exc}", retryable=retryable
                )
            return
        with self._lock:
            for tracked in batch:
                tracked.created = True
            stopped = [t for t in batch if t.stop_reason is not None]
            pods = [(t, None if created else self._pods.get(t.key)) for t in batch]
        if stopped:
            self._delete(batch[0], 0.0, whole=len(stopped) == len(batch))
        for tracked, pod in pods:
            if pod is not None:
                self._judge(tracked, pod)

    def indexed_manifest(
        self, attempts: Sequence[Attempt], *, owner: dict[str, str] | None
    ) -> dict[str, Any]:
        """One Indexed Job for the first attempts of several items of one step: index `i`
        runs `attempts[i]` (the pod picks it by `JOB_COMPLETION_INDEX`)."""
        first = attempts[0]
        keys = [a.cache.key if a.cache is not None else "" for a in attempts]
        data = [_shipped(a) for a in attempts]
        environment = {
            STORE: json.dumps(pod_store_address(self.store), sort_keys=True),
            **attempt_environment(data, self.store),
        }
        identity = JobIdentity(
            run_id=first.run_id,
            pipeline=self._pipeline,
            invocation=first.step.name,
            cache_key=None,
            number=1,
            owner=owner,
        )
        manifest = job_manifest(
            first.step,
            identity,
            self.settings,
            PodEnvironment(environment),
            kill_grace_seconds=first.kill_grace_seconds,
            indexed=len(attempts),
        )
        manifest["metadata"]["name"] = indexed_job_name_of(first.run_id, first.step.name, keys)
        annotations = manifest["metadata"]["annotations"]
        annotations[names.INVOCATIONS] = json.dumps([a.name for a in attempts])
        annotations[names.CACHE_KEYS] = json.dumps(keys)
        return manifest

    def manifest(self, attempt: Attempt, *, owner: dict[str, str] | None) -> dict[str, Any]:
        """The attempt's Job: its step, where it runs, and the attempt itself for the pod."""
        data = _shipped(attempt)
        environment = {
            STORE: json.dumps(pod_store_address(self.store), sort_keys=True),
            **attempt_environment(data, self.store),
        }
        identity = JobIdentity(
            run_id=attempt.run_id,
            pipeline=self._pipeline,
            invocation=attempt.name,
            cache_key=attempt.cache.key if attempt.cache is not None else None,
            number=attempt.number,
            owner=owner,
        )
        return job_manifest(
            attempt.step,
            identity,
            self.settings,
            PodEnvironment(environment),
            kill_grace_seconds=attempt.kill_grace_seconds,
        )

    def _run_owner(self) -> dict[str, str]:
        """The run's ConfigMap (created by the first Job's creation), which owns its Jobs."""
        api = self.api
        with self._owner_lock:
            if self._owner is not None:
                return self._owner
            name = names.run_config_map(self._run_id)
            labels = {
                **self.settings.labels,
                names.MANAGED_BY: names.MANAGER,
                names.PART_OF: names.label_value(self._pipeline),
                names.RUN: names.label_value(self._run_id),
            }
            manifest = {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": name, "labels": labels},
                "data": {
                    "run": self._run_id,
                    "pipeline": self._pipeline,
                    "spec": self._spec,
                    "target": self.settings.target,
                    "store": self.store.uri,
                },
            }
            created, _ = api.create(api.config_maps_path(), manifest)
            record_cluster(self.store, self._run_id, self.settings)
            self._owner = {"name": name, "uid": created["metadata"]["uid"]}
            return self._owner

    def _all_stopping(self, job: str) -> bool:
        with self._lock:
            return all(
                t.stop_reason is not None or t.done for t in self._tracked.values() if t.job == job
            )

    def _delete(self, tracked: _Tracked, grace_seconds: float, *, whole: bool = True) -> None:
        """Deletes the Job and its pods (with the grace period); for one index of an Indexed
        Job whose other indexes go on, only that index's pods."""
        api = self.api
        selector = f"{names.JOB_NAME}={tracked.job}"
        if tracked.index is not None and not whole:
            selector += f",{names.COMPLETION_INDEX}={tracked.index}"
        try:
            if whole:
                api.delete(api.jobs_path(tracked.job), grace_seconds=grace_seconds)
            api.delete(
                api.pods_path(), grace_seconds=grace_seconds, query={"labelSelector": selector}
            )
        except KubeError as exc:
            self._problems.append(f"Job `{tracked.job}` could not be deleted: {exc}")

    # ------------------------------------------------------------------ watching

    def _connect(self) -> None:
        with self._connect_lock:
            if self._api is not None:
                return
            api = KubeApi(self.settings)
            mine = f"{names.MANAGED_BY}={names.MANAGER}"
            self._watchers = [
                Watcher(
                    api, api.pods_path(), self._on_pod, selector=mine, on_problem=self._problem
                ),
                Watcher(
                    api, api.jobs_path(), self._on_job, selector=mine, on_problem=self._problem
                ),
                Watcher(
                    api,
                    api.events_path(),
                    self._on_event,
                    field_selector="type=Warning",
                    on_problem=self._problem,
                ),
            ]
            for watcher in self._watchers:
                watcher.start()
            self._ticker = threading.Thread(target=self._tick, name="mlc-k8s-tick", daemon=True)
            self._ticker.start()
            self._api = api
        for watcher in self._watchers:
            if not watcher.synced.wait(SYNC_SECONDS):
                self._problems.append(f"the watch of {watcher.path} did not start")

    def _problem(self, text: str) -> None:
        with self._lock:
            self._problems.append(text)

    def _on_pod(self, kind: str, pod: dict[str, Any]) -> None:
        metadata = pod.get("metadata", {})
        labels = metadata.get("labels") or {}
        job = labels.get(names.JOB_NAME) or labels.get("job-name")
        if not job:
            return
        index = labels.get(names.COMPLETION_INDEX)
        key = pod_key(job, None if index is None else int(index))
        with self._lock:
            if kind == "DELETED":
                self._pods.pop(key, None)
            else:
                self._pods[key] = pod
                self._pod_jobs[metadata.get("name", "")] = key
            tracked = self._tracked.get(key)
        if tracked is not None and kind != "DELETED":
            self._judge(tracked, pod)

    def _on_job(self, kind: str, job: dict[str, Any]) -> None:
        name = job.get("metadata", {}).get("name", "")
        with self._lock:
            followed = [t for t in self._tracked.values() if t.job == name]
        for tracked in followed:
            self._job_changed(tracked, kind, job)

    def _job_changed(self, tracked: _Tracked, kind: str, job: dict[str, Any]) -> None:
        name = tracked.job
        if tracked.done or not tracked.created:
            return
        if tracked.index is not None and kind != "DELETED":
            suspended = (job.get("spec") or {}).get("suspend")
            if suspended and self.settings.queue:
                self._note(tracked, f"queued in Kueue queue `{self.settings.queue}`")
            return  # an index ends with its pod; the Job's conditions are about all of them
        if kind == "DELETED":
            if tracked.stop_reason is None:
                self._end(tracked, error=f"its Job `{name}` was deleted (not by mlc)")
            return
        failed = _condition(job, "Failed")
        if failed is not None:
            # The pod's own end comes first; this is for a Job whose pod is gone or never was.
            reason = f"{failed.get('reason', '')}: {failed.get('message', '')}".strip(": ")
            self._later(tracked, 2.0, error=f"its Job `{name}` failed ({reason})")
        elif _condition(job, "Complete") is not None:
            self._later(
                tracked, 2.0, error=f"its Job `{name}` completed, but its pod's result is gone"
            )

    def _on_event(self, kind: str, event: dict[str, Any]) -> None:
        involved = event.get("involvedObject") or {}
        name = involved.get("name", "")
        with self._lock:
            if involved.get("kind") == "Job":
                concerned = [t for t in self._tracked.values() if t.job == name]
            else:
                one = self._tracked.get(self._pod_jobs.get(name, ""))
                concerned = [] if one is None else [one]
        if kind == "DELETED":
            return
        for tracked in concerned:
            if not tracked.done:
                self._apply(tracked, judge_warning(tracked.state, event, time.monotonic()))

    def _judge(self, tracked: _Tracked, pod: dict[str, Any]) -> None:
        """What a pod's status means for its attempt."""
        if tracked.done:
            return
        tracked.node = pod.get("spec", {}).get("nodeName") or tracked.node
        timeout = tracked.attempt.timeout_seconds
        verdict = judge_pod(tracked.state, pod, time.monotonic(), timeout_seconds=timeout)
        if not verdict.ended:
            self._apply(tracked, verdict)
            return
        try:
            value = decode_result(verdict.message, self.store)
        except (StoreError, OSError, ValueError) as exc:
            value, verdict.error = None, f"its result could not be read from the store: {exc}"
        if value is not None:  # the runtime's own account (unless the deadline stopped it)
            self._end(tracked, value=value, result=verdict.stopped)
        else:
            self._end(tracked, result=verdict.stopped or verdict.result, error=verdict.error)

    def _apply(self, tracked: _Tracked, verdict: Verdict) -> None:
        if verdict.fail:
            if tracked.created:
                whole = tracked.index is None
                self._submit(functools.partial(self._delete, tracked, 0.0, whole=whole))
            self._end(tracked, error=verdict.error, retryable=verdict.retryable)
        elif verdict.note:
            self._note(tracked, verdict.note)

    def _tick(self) -> None:
        """Fails the attempts whose pods waited past their deadline (no API call)."""
        while not self._stopping.wait(TICK_SECONDS):
            now = time.monotonic()
            with self._lock:
                waiting = [
                    t for t in self._tracked.values() if not t.done and t.state.since is not None
                ]
            for tracked in waiting:
                verdict = tracked.state.overdue(now, self.settings)
                if verdict is not None:
                    if not verdict.retryable:  # it waited for a node or quota: say for what
                        asked = describe_request(tracked.attempt.step, self.settings)
                        verdict.error = f"{verdict.error} (it asks for {asked})"
                    self._apply(tracked, verdict)

    def _later(self, tracked: _Tracked, seconds: float, *, error: str) -> None:
        """Ends the attempt with `error` unless its pod reports first."""

        def fallback() -> None:
            if not tracked.done:
                self._end(tracked, error=error)

        timer = threading.Timer(seconds, fallback)
        timer.daemon = True
        timer.start()

    # ------------------------------------------------------------------ reporting

    def _note(self, tracked: _Tracked, detail: str) -> None:
        if detail == tracked.last_note or self._report is None:
            return
        tracked.last_note = detail
        self._report(AttemptNote(tracked.attempt, detail))

    def _end(
        self,
        tracked: _Tracked,
        *,
        value: dict[str, Any] | None = None,
        result: TaskResult | None = None,
        error: str | None = None,
        retryable: bool = True,
    ) -> None:
        """Reports the attempt's end, once."""
        with self._lock:
            if tracked.done:
                return
            tracked.done = True
            self._tracked.pop(tracked.key, None)
            self._by_key.pop(tracked.attempt.key, None)
        ended = attempt_ended(
            self.store,
            tracked.attempt,
            value,
            result=result,
            error=error,
            retryable=retryable,
            host=tracked.node,
        )
        if self._report is not None:
            self._report(ended)


def pod_key(job: str, index: int | None) -> str:
    """How a pod is known: its Job's name, and its index in an Indexed Job."""
    return job if index is None else f"{job}#{index}"


def indexed_job_name(batch: Sequence[_Tracked]) -> str:
    first = batch[0].attempt
    keys = [t.attempt.cache.key if t.attempt.cache is not None else "" for t in batch]
    return indexed_job_name_of(first.run_id, first.step.name, keys)


def indexed_job_name_of(run_id: str, step: str, keys: Sequence[str]) -> str:
    """An Indexed Job's name: its step and a digest of the run and every item's cache key."""
    return names.job_name(run_id, step, "\n".join(keys), 1)


def indexes(text: str | None) -> set[int]:
    """`"0-2,5"` (a Job's `completedIndexes`) → {0, 1, 2, 5}."""
    found: set[int] = set()
    for part in (text or "").split(","):
        if not part:
            continue
        low, _, high = part.partition("-")
        found.update(range(int(low), int(high or low) + 1))
    return found


def _shipped(attempt: Attempt) -> dict[str, Any]:
    """The attempt as its pod receives it: without secret values (they come from
    `secretKeyRef`s)."""
    data = attempt.to_json()
    data["env"] = {k: v for k, v in data["env"].items() if k not in attempt.step.secrets}
    return data


def pod_store_address(store: Store) -> dict[str, Any]:
    """The store as a pod opens it: no credentials (they come from the pod's environment or
    service account) and a cache directory inside the pod."""
    address = store_address(store)
    options = {
        k: v
        for k, v in (address.get("storage_options") or {}).items()
        if k not in CREDENTIAL_OPTIONS
    }
    return {"uri": address["uri"], "storage_options": options, "cache_dir": "/tmp/mlc-store-cache"}


def _condition(obj: dict[str, Any], kind: str) -> dict[str, Any] | None:
    for condition in obj.get("status", {}).get("conditions") or []:
        if condition.get("type") == kind and condition.get("status") == "True":
            found: dict[str, Any] = condition
            return found
    return None
