"""The Ray cluster a run's attempts go to, joined (or started) only when a step must run.

- no `address`, or `address = "local"`: a Ray instance on this machine, started for the run
  and stopped after it;
- `address = "HOST:PORT"` (the head's GCS address) or `"auto"`: this process joins a running
  cluster as its driver (mlc runs on a node of the cluster, e.g. the head, or a KubeRay
  submitter pod);
- `http(s)://HEAD:8265` (the Jobs API): not joined from here; the run is submitted as a Ray Job
  whose driver runs on the cluster (`mlc.backends.ray.jobs`);
- `ray://…` (Ray Client) is refused before anything runs, with what to give instead.

A fully cached re-apply never gets here: nothing is started, nothing is joined.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from mlc.ir.model import Target

LOCAL = "local"
DRIVER_METRICS = "RAY_enable_metrics_collection"
LOOPBACK_ONLY = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
"""Set to 0, Ray takes 127.0.0.1 as the node's address (as it does on a laptop OS)."""


def address_problem(target: Target | None) -> str | None:
    """Why the target's address cannot be used by this version, or None."""
    address = (target.address if target else None) or LOCAL
    name = target.name if target else "(default)"
    if address.startswith("ray://"):
        return (
            f"target `{name}`: Ray Client addresses (`ray://…`) are not supported; give the "
            'Jobs API address (`address = "http://HEAD:8265"`), or the head\'s GCS address '
            '(`address = "HEAD:6379"`) to drive the run from a node of the cluster'
        )
    return None


@dataclass
class RayCluster:
    """A connection to Ray, made on first use (see the module docstring)."""

    target: Target | None
    nodes: list[dict[str, float]] = field(default_factory=list)
    """The resources of each live node, once connected."""
    started: bool = False
    """Whether this process started the Ray instance (else it joined a running cluster)."""
    borrowed: bool = False
    """Whether Ray was already initialised in this process (by its embedder): left as is."""
    error: str | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _connected: bool = False

    @property
    def address(self) -> str:
        """The target's address, or `local`."""
        return (self.target.address if self.target else None) or LOCAL

    @property
    def connected(self) -> bool:
        """Whether `connect` has succeeded."""
        return self._connected

    def connect(self) -> str | None:
        """Joins or starts the cluster once; returns why it could not, or None."""
        with self._lock:
            if self._connected or self.error is not None:
                return self.error
            try:
                self._init()
            except Exception as exc:  # Ray raises many kinds; all mean "cannot reach it"
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                self.error = f"cannot reach the Ray cluster at `{self.address}`: {first}"
                return self.error
            self._connected = True
            return None

    def _init(self) -> None:
        import ray

        self.borrowed = ray.is_initialized()
        # Each task is named after its invocation (`train[17]`), and Ray's driver keeps metrics
        # per task name: 250 MiB more for a 10,000-item foreach. Its metrics are off unless
        # asked for (`RAY_enable_metrics_collection=1`).
        os.environ.setdefault(DRIVER_METRICS, "0")
        with _keeping_signal_handlers():
            self._start_or_join(ray)
        self.nodes = [
            {k: float(v) for k, v in node["Resources"].items()}
            for node in ray.nodes()  # type: ignore[no-untyped-call]
            if node.get("Alive")
        ]

    def _start_or_join(self, ray: Any) -> None:
        if not self.borrowed:
            options: dict[str, Any] = {
                "include_dashboard": False,
                "log_to_driver": False,
                "configure_logging": False,
            }
            settings = self.target.settings if self.target else {}
            if self.target and self.target.namespace:
                options["namespace"] = self.target.namespace
            if isinstance(settings.get("runtime_env"), Mapping):
                options["runtime_env"] = dict(settings["runtime_env"])
            if self.address == LOCAL:
                # A Ray started for one run on this machine listens on loopback only.
                os.environ.setdefault(LOOPBACK_ONLY, "0")
                ray.init(address=LOCAL, **options)
                self.started = True
            else:
                options.pop("include_dashboard")
                ray.init(address=self.address, **options)

    def disconnect(self) -> None:
        """Stops the Ray instance this process started, or leaves the cluster it joined."""
        if not self._connected:
            return
        import ray

        if not self.borrowed:
            ray.shutdown()
        self._connected = False


@contextlib.contextmanager
def _keeping_signal_handlers() -> Iterator[None]:
    """Joining Ray installs Ray's own SIGTERM and SIGINT handlers, which end the process
    without a word: the handlers the process had (`mlc apply` cancels the run on SIGTERM,
    as on Ctrl-C) are put back."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    saved = {number: signal.getsignal(number) for number in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for number, handler in saved.items():
            if handler is not None:
                signal.signal(number, handler)
