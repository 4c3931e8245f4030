"""A run submitted to a remote Ray cluster as one Ray Job (`address = "http://HEAD:8265"`).

`mlc apply` checks what it can here, puts the IR document into the store, and submits one job
through the Jobs API: its submission id is the run id, its `working_dir` is the spec's
directory (without `.git`, `.mlc`, virtual environments and caches), and its entry point is
mlc's driver (`mlc.backends.ray.driver`), which runs the coordinator on the cluster. The client
then tails the job's log, replaying the driver's events into the progress display, and ends
with the driver's report. Ctrl-C stops the job (the driver cancels the run); `detach` returns
once the job is submitted (`mlc runs` and `mlc logs` read the run from the shared store).
Applying the same document with the same options while its job still runs (its `mlc apply` was
killed, or detached) follows that job instead of submitting another.

Token authentication, TLS and proxies are Ray's: `RAY_AUTH_MODE`, `RAY_AUTH_TOKEN`,
`RAY_JOB_HEADERS`, the usual `*_proxy` variables; the target's `ray { headers = { … } }`
adds HTTP headers.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import os
import shlex
import sys
import time
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from mlc.backends.ray.events import DriverError, is_event, replay
from mlc.installation import pip_install
from mlc.ir.model import IRDocument
from mlc.ir.serialize import to_json
from mlc.runtime.errors import PreflightError, RuntimeFailure
from mlc.runtime.report import RunObserver, RunReport
from mlc.store.base import Store
from mlc.store.uri import store_address

EXCLUDES = [".git", ".mlc", ".venv", "venv", "env", "__pycache__", "*.pyc", "node_modules"]
"""What is never shipped as the job's `working_dir`."""
UPLOAD_LIMIT_BYTES = 100 << 20
"""Ray refuses job submissions whose `working_dir` is larger (ray-project/ray#55877)."""
STOP_WAIT_SECONDS = 60.0
AGENT_WAIT_SECONDS = 30.0
"""How long a submission is retried while the cluster's job agent is starting."""
"""How long a cancelled job may take to report its end before the client stops waiting."""


def is_jobs_address(address: str | None) -> bool:
    """Whether an address is a Jobs API endpoint (`http(s)://HEAD:8265`)."""
    return bool(address) and str(address).startswith(("http://", "https://"))


class JobRun:
    """One run submitted as a Ray Job (see the module docstring)."""

    def __init__(self, store: Store, document: IRDocument, *, kill_grace_seconds: float) -> None:
        self.store = store
        self.document = document
        self.kill_grace_seconds = kill_grace_seconds
        self.target = document.target
        self.address = str(self.target.address if self.target else "")
        self.settings: Mapping[str, Any] = self.target.settings if self.target else {}

    def apply(
        self,
        *,
        run_id: str,
        rerun: Collection[str],
        keep_going: bool,
        observer: RunObserver,
        detach: bool = False,
    ) -> RunReport:
        """Submits the run and follows it to its end (or returns once submitted, detached)."""
        self._check_store()
        working_dir = Path(self.document.base_dir).resolve()
        _check_size(working_dir)
        digest = self.store.put_bytes(to_json(self.document).encode("utf-8"))
        client = self._client()
        metadata = {
            "mlc_pipeline": self.document.pipeline.name,
            "mlc_ir": str(digest),
            "mlc_options": json.dumps({"rerun": sorted(rerun), "keep_going": keep_going}),
        }
        running = self._same_run_going_on(client, metadata)
        if running is not None:
            print(
                f"run {running} of `{self.document.pipeline.name}` (the same document, with the "
                f"same options) still runs on the Ray cluster at {self.address}: following it "
                "instead of submitting it again",
                file=sys.stderr,
            )
            if detach:
                return RunReport(
                    run_id=running, pipeline=self.document.pipeline.name, status="submitted"
                )
            return self._follow(client, running, observer)
        entrypoint = self._entrypoint(str(digest), run_id, rerun, keep_going)
        self._submit(
            client,
            entrypoint=entrypoint,
            submission_id=run_id,
            runtime_env=self._runtime_env(working_dir),
            metadata={**metadata, "mlc_run": run_id},
        )
        print(
            f"submitted run {run_id} to the Ray cluster at {self.address} as job {run_id}\n"
            f"  dashboard: {self.address.rstrip('/')}/#/jobs/{run_id}",
            file=sys.stderr,
        )
        if detach:
            return RunReport(
                run_id=run_id, pipeline=self.document.pipeline.name, status="submitted"
            )
        return self._follow(client, run_id, observer)

    # ------------------------------------------------------------------ submitting

    def _check_store(self) -> None:
        """The driver runs on the cluster: a store on this machine's disk is out of its reach,
        unless the cluster is this machine."""
        if self.store.is_remote or _is_loopback(self.address):
            return
        raise PreflightError(
            f"the store `{self.store.uri}` is a directory on this machine, which a run "
            f"submitted to {self.address} cannot reach: give the target a store the cluster "
            'reaches (`store = "s3://…"`)'
        )

    def _client(self) -> Any:
        try:
            from ray.job_submission import JobSubmissionClient
        except ImportError:
            raise PreflightError(
                f"Ray is not installed in this Python environment: `{pip_install('ray')}`"
            ) from None
        headers = self.settings.get("headers")
        try:
            return JobSubmissionClient(
                self.address, headers=dict(headers) if isinstance(headers, Mapping) else None
            )
        except Exception as exc:  # Ray raises several kinds for an unreachable endpoint
            raise PreflightError(
                f"cannot reach the Ray Jobs API at {self.address}: {_first_line(exc)}"
            ) from None

    def _same_run_going_on(self, client: Any, metadata: Mapping[str, str]) -> str | None:
        """The run id of a job of this document with these options that is still pending or
        running (submitted by an `mlc apply` that was killed, or detached), if there is one:
        applying again follows it, as applying again on Kubernetes re-attaches to a run."""
        try:
            jobs = client.list_jobs()
        except Exception as exc:  # the same errors as a submission's
            raise PreflightError(
                f"cannot list the jobs of the Ray cluster at {self.address}: {_first_line(exc)}"
            ) from None
        going_on = [
            job
            for job in jobs
            if str(job.status) in ("PENDING", "RUNNING")
            and job.submission_id
            and all((job.metadata or {}).get(key) == value for key, value in metadata.items())
        ]
        if not going_on:
            return None
        latest = max(going_on, key=lambda job: job.start_time or 0)
        return str(latest.submission_id)

    def _submit(self, client: Any, **job: Any) -> None:
        """Submits the job; a cluster whose job agent is not up yet is asked again for a
        while (it answers "No available agent to submit job, please try again later")."""
        deadline = time.monotonic() + AGENT_WAIT_SECONDS
        while True:
            try:
                client.submit_job(**job)
                return
            except Exception as exc:  # Ray raises RuntimeError, and requests' errors as they come
                if "No available agent" not in str(exc) or time.monotonic() > deadline:
                    raise PreflightError(
                        f"the Ray cluster at {self.address} refused the job: {_first_line(exc)}"
                    ) from None
                time.sleep(1.0)

    def _entrypoint(
        self, digest: str, run_id: str, rerun: Collection[str], keep_going: bool
    ) -> str:
        python = str(self.settings.get("python") or "python")
        address = store_address(self.store)
        address.pop("cache_dir", None)  # this machine's; the driver uses its own
        words = [
            python, "-m", "mlc.backends.ray.driver",
            "--store-address", json.dumps(address, sort_keys=True),
            "--ir", digest,
            "--run-id", run_id,
            "--kill-grace", f"{self.kill_grace_seconds:g}",
        ]  # fmt: skip
        for step in rerun:
            words += ["--rerun", step]
        if keep_going:
            words.append("--keep-going")
        return shlex.join(words)

    def _runtime_env(self, working_dir: Path) -> dict[str, Any]:
        runtime_env = dict(self.settings.get("runtime_env") or {})
        runtime_env["working_dir"] = str(working_dir)
        runtime_env["excludes"] = [*EXCLUDES, *runtime_env.get("excludes", [])]
        # Stopping the job gives the driver time to cancel the run's steps (their grace
        # period) and report, before Ray kills it (3 s by default).
        env_vars = dict(runtime_env.get("env_vars") or {})
        env_vars.setdefault("RAY_JOB_STOP_WAIT_TIME_S", str(int(self.kill_grace_seconds) + 30))
        runtime_env["env_vars"] = env_vars
        return runtime_env

    # ------------------------------------------------------------------ following

    def _follow(self, client: Any, run_id: str, observer: RunObserver) -> RunReport:
        try:
            try:
                report = asyncio.run(self._tail(client, run_id, observer))
            except KeyboardInterrupt:
                observer.warning(f"cancelling: stopping Ray job {run_id}")
                client.stop_job(run_id)
                report = self._after_stop(client, run_id, observer)
            if report is not None:
                return report
            info = client.get_job_info(run_id)
        except DriverError as exc:
            raise PreflightError(str(exc)) from None
        except (RuntimeFailure, KeyboardInterrupt):
            raise
        except Exception as exc:  # the Jobs API went away while the job goes on
            raise RuntimeFailure(
                f"lost the Ray Jobs API at {self.address} while following job {run_id} "
                f"({_first_line(exc)}); the job goes on: `mlc runs` shows it once it ends"
            ) from None
        if str(info.status) == "STOPPED":  # killed before it could report
            observer.warning(f"Ray job {run_id} was stopped before its driver reported")
            return RunReport(
                run_id=run_id, pipeline=self.document.pipeline.name, status="cancelled"
            )
        raise RuntimeFailure(
            f"Ray job {run_id} ended {info.status} without a report"
            + (f": {info.message}" if info.message else "")
        )

    async def _tail(self, client: Any, run_id: str, observer: RunObserver) -> RunReport | None:
        report = None
        async for chunk in client.tail_job_logs(run_id):
            for line in chunk.splitlines():
                if is_event(line):
                    report = replay(line, observer) or report
                elif line.strip():
                    print(line, file=sys.stderr)
            observer.tick()
        return report

    def _after_stop(self, client: Any, run_id: str, observer: RunObserver) -> RunReport | None:
        """The report of a stopped job, from the rest of its log (the driver cancels the run
        and reports), waiting at most `STOP_WAIT_SECONDS`."""
        deadline = time.monotonic() + STOP_WAIT_SECONDS
        while time.monotonic() < deadline:
            if str(client.get_job_status(run_id)) in ("STOPPED", "SUCCEEDED", "FAILED"):
                break
            time.sleep(0.5)
        report = None
        for line in client.get_job_logs(run_id).splitlines():
            if is_event(line):
                report = replay(line, _Silent()) or report
        return report


class _Silent:
    """Drops the events already shown."""

    def run_started(self, *args: object) -> None: ...
    def unit_changed(self, *args: object) -> None: ...
    def warning(self, *args: object) -> None: ...
    def tick(self) -> None: ...


def _check_size(working_dir: Path) -> None:
    """The project must fit in a job submission: name the largest entries when it does not."""
    sizes: dict[str, int] = {}
    for root, dirs, files in os.walk(working_dir):
        dirs[:] = [d for d in dirs if d not in EXCLUDES]
        for name in files:
            if name.endswith(".pyc"):
                continue
            path = Path(root, name)
            try:
                size = path.stat().st_size
            except OSError:
                continue
            top = path.relative_to(working_dir).parts[0]
            sizes[top] = sizes.get(top, 0) + size
    total = sum(sizes.values())
    if total <= UPLOAD_LIMIT_BYTES:
        return
    largest = sorted(sizes.items(), key=lambda item: -item[1])[:5]
    listed = ", ".join(f"`{name}` {size / 2**20:.0f} MiB" for name, size in largest)
    raise PreflightError(
        f"the project `{working_dir}` is {total / 2**20:.0f} MiB, more than the "
        f"{UPLOAD_LIMIT_BYTES >> 20} MiB a Ray job can ship (largest: {listed}); keep data in "
        "the store (datasets) and add what is not code to the target's "
        "`ray { runtime_env = { excludes = [...] } }`"
    )


def _is_loopback(address: str) -> bool:
    host = urlparse(address).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
