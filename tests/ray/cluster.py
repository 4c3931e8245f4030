"""A real single-node Ray cluster for the tests: `ray start --head --block`, on loopback.

The head runs in a session of its own, with a temporary directory of its own, 2 CPUs, 2 fake
GPUs and the resource `accelerator_type:T4` (so GPU placement can be tested without GPUs), and
no dashboard. `stop` ends the whole session by its process group (SIGTERM, then SIGKILL):
nothing of it outlives the tests, and no other Ray on the machine is touched.

`RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0` makes Ray take 127.0.0.1 as the node's address, so every
connection of the cluster stays on loopback. Drivers need `RAY_AUTH_MODE=token` (token
authentication is on for clusters started with `ray start`); `driver_environ` has both.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

READY_LINE = "will now block forever"
START_TIMEOUT_S = 300.0
"""Generous: a head starts in 6-12 s on a quiet machine, much later on a loaded one."""
START_ATTEMPTS = 3
"""A head whose process exits before it is ready is started again on other ports: a port found
free may be taken by another process before the head binds it."""
RESOURCES = {"accelerator_type:T4": 2}
DRIVER_ENV = {"RAY_AUTH_MODE": "token", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}


class RayHeadError(RuntimeError):
    """The head did not start."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RayHead:
    """One `ray start --head` (see the module docstring)."""

    def __init__(
        self, environ: Mapping[str, str] | None = None, *, dashboard: bool = False
    ) -> None:
        self.port = free_port()
        self.dashboard_port = free_port() if dashboard else None
        self.temp_dir = tempfile.mkdtemp(prefix="mlc-ray-")  # short: Ray's sockets live here
        self.log_path = Path(self.temp_dir, "head.log")
        self.environ = dict(environ or {})
        self.process: subprocess.Popen[bytes] | None = None
        self.jobs_problem = ""
        """What the last refused test submission said (a head whose Jobs API never came up)."""

    @property
    def address(self) -> str:
        """The head's GCS address, what a driver joins."""
        return f"127.0.0.1:{self.port}"

    @property
    def jobs_address(self) -> str:
        """The Jobs API's address (a head started with the dashboard)."""
        assert self.dashboard_port is not None, "started without the dashboard"
        return f"http://127.0.0.1:{self.dashboard_port}"

    def driver_environ(self) -> dict[str, str]:
        """What a driver's environment needs to join this cluster."""
        return dict(DRIVER_ENV)

    def start(self) -> None:
        ray = Path(sys.executable).with_name("ray")
        if not ray.exists():
            raise RayHeadError(f"{ray} is missing: install the test dependencies (`ray[default]`)")
        # A job's entry point is `python …`, found on the head's PATH: this environment's.
        path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
        env = {**os.environ, **DRIVER_ENV, "PATH": path, **self.environ}
        for attempt in range(1, START_ATTEMPTS + 1):
            outcome = self._start_once(ray, env)
            if outcome == "ready":
                return
            tail = self.log_path.read_text(errors="replace")[-2000:]
            self.stop()
            if outcome == "exited" and attempt < START_ATTEMPTS:
                self._choose_ports()  # one was taken after it was found free: others
                continue
            what = (
                "exited"
                if outcome == "exited"
                else f"did not become ready in {START_TIMEOUT_S:g} s"
            )
            raise RayHeadError(
                f"`ray start --head` {what} (attempt {attempt}, load "
                f"{os.getloadavg()[0]:.1f}):\n{tail}\n{self.jobs_problem}"
            )

    def _choose_ports(self) -> None:
        self.port = free_port()
        self.dashboard_port = free_port() if self.dashboard_port is not None else None
        self.temp_dir = tempfile.mkdtemp(prefix="mlc-ray-")
        self.log_path = Path(self.temp_dir, "head.log")

    def _start_once(self, ray: Path, env: Mapping[str, str]) -> str:
        """Starts the head; `ready`, `exited` (the process ended first) or `timeout`."""
        # Every port a head listens on is a free one: Ray's defaults (8265, 10001, 52365, …)
        # would collide with another head of the same session (one for the suite, one with the
        # dashboard for the Jobs API), and the second head's job agent would never start.
        ports = [
            f"--dashboard-port={self.dashboard_port or free_port()}",
            f"--dashboard-agent-listen-port={free_port()}",
            f"--dashboard-agent-grpc-port={free_port()}",
            f"--ray-client-server-port={free_port()}",
            f"--runtime-env-agent-port={free_port()}",
            f"--metrics-export-port={free_port()}",
        ]
        if self.dashboard_port is None:
            dashboard = ["--include-dashboard=false", *ports]
        else:
            dashboard = ["--include-dashboard=true", "--dashboard-host=127.0.0.1", *ports]
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [
                    str(ray), "start", "--head", "--block",
                    f"--port={self.port}",
                    "--node-ip-address=127.0.0.1",
                    "--num-cpus=2",
                    "--num-gpus=2",
                    f"--resources={json.dumps(RESOURCES)}",
                    *dashboard,
                    "--disable-usage-stats",
                    f"--temp-dir={self.temp_dir}",
                ],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if READY_LINE in self.log_path.read_text(errors="replace"):
                if self.dashboard_port is None or self._jobs_ready(deadline):
                    return "ready"
                return "timeout"
            if self.process.poll() is not None:
                return "exited"
            time.sleep(0.2)
        return "timeout"

    def _jobs_ready(self, deadline: float) -> bool:
        """Whether the Jobs API takes jobs: the head's agent starts after the head itself, and
        refuses submissions until then ("No available agent")."""
        probe = [
            str(Path(sys.executable).with_name("ray")), "job", "submit",
            "--address", self.jobs_address, "--", "true",
        ]  # fmt: skip
        env = {**os.environ, **DRIVER_ENV}
        while time.monotonic() < deadline:
            done = subprocess.run(probe, env=env, capture_output=True, text=True)
            if done.returncode == 0:
                return True
            self.jobs_problem = (done.stdout + done.stderr)[-1500:]
            time.sleep(1.0)
        return False

    def stop(self) -> None:
        """Ends the head's session: SIGTERM to its group, then SIGKILL."""
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=20)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=10)
            self.process = None
        shutil.rmtree(self.temp_dir, ignore_errors=True)
