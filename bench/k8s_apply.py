"""One measured `apply` for `bench/bench_k8s.py`, in a process of its own: mlc's side.

    python bench/k8s_apply.py IR_JSON STORE_URI

Reads an IR document compiled by the benchmark (`mlc.compile.compile_spec`, written with
`mlc.ir.serialize`), opens the store as `mlc apply` does (`AWS_ENDPOINT_URL` for S3), creates
the target's backend through its plugin (`mlc.backends.kubernetes.create(store)` for a
Kubernetes target, the local backend for `local_run`) and runs `backend.apply(document)` in
this process, with everything the run needs imported before (the Kubernetes client too), so
that what is measured is the apply alone. Prints one line, `k8s_apply: {json}`, with:

- `start`, `end`: the wall clock (`time.time()`) when `apply` was called and when it returned
  (the benchmark's own watch of the namespace times the Jobs and pods on the same clock);
- `cpu_s`: user + system CPU of this process (every thread) during `apply` (`getrusage`);
- `rss_before`, `peak_rss`: resident memory before `apply` and its peak during it, in bytes
  (the peak is reset before `apply` through `/proc/self/clear_refs`, so compiling and
  importing do not count; `peak_reset` says whether the kernel allowed it);
- `writes`, `reads`: the Kubernetes executor's API counters (`KubeApi.writes`, `KubeApi.reads`:
  every create or delete, and every plain GET or list; the three long-lived watch streams are
  neither); `connected`: whether the executor ever contacted the cluster (it connects on the
  first step that must run);
- `status`, `statuses`: the run's status and how many steps ended with each status;
- `phases`: where the apply's time goes, as seconds spent in (and calls of) the cache lookups
  that decide each step (`mlc.runtime.decisions.lookup`, 16 at a time off the coordinator's
  thread on a remote store: their seconds add up across the threads), the
  coordinator's lineage writes (`Coordinator._write_lineage`), the executor's `start` (the
  first and last call, from `start`) and turning each pod's end into the attempt's
  (`attempt_ended`, on the watch thread);
- `thread_cpu`: the apply's CPU seconds by kind of thread (the coordinator's, the watches',
  the Job-creating pool's, the store's I/O, …), read from `/proc/self/task` every 0.2 s (a
  thread's last reading before it ends is kept).
"""

from __future__ import annotations

import argparse
import collections
import functools
import json
import os
import resource
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

PAGE = os.sysconf("SC_PAGE_SIZE")
TICKS = os.sysconf("SC_CLK_TCK")
SAMPLE_S = 0.2
THREAD_KINDS = (
    ("MainThread", "coordinator"),
    ("mlc-watch", "watches"),
    ("mlc-k8s-tick", "executor's clock"),
    ("mlc-k8s", "Job creation"),
    ("mlc-lookup", "cache lookups"),
    ("fsspecIO", "store I/O"),
    ("asyncio", "store I/O"),
)


class Phases:
    """Seconds spent in some functions, and how many calls (see the module docstring)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = collections.defaultdict(float)
        self.calls: dict[str, int] = collections.defaultdict(int)
        self.first: dict[str, float] = {}
        self.last: dict[str, float] = {}
        self.lock = threading.Lock()

    def timed(self, name: str, function: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            began = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                spent = time.perf_counter() - began
                now = time.time()
                with self.lock:
                    self.seconds[name] += spent
                    self.calls[name] += 1
                    self.first.setdefault(name, now)
                    self.last[name] = now

        return wrapper

    def figures(self, start: float) -> dict[str, Any]:
        return {
            name: {
                "seconds": self.seconds[name],
                "calls": self.calls[name],
                "first": self.first[name] - start,
                "last": self.last[name] - start,
            }
            for name in self.seconds
        }


class ThreadCpu:
    """CPU seconds of this process's threads, by kind, sampled from `/proc/self/task`."""

    def __init__(self) -> None:
        self.first: dict[int, float] = {}
        self.last: dict[int, float] = {}
        self.names: dict[int, str] = {}
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._sample, name="bench-sampler", daemon=True)

    def _read(self) -> dict[int, float]:
        for thread in threading.enumerate():
            if thread.native_id is not None:
                self.names.setdefault(thread.native_id, thread.name)
        seen = {}
        for task in Path("/proc/self/task").iterdir():
            try:
                fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue  # it ended meanwhile
            seen[int(task.name)] = (int(fields[11]) + int(fields[12])) / TICKS
        return seen

    def _sample(self) -> None:
        while not self.stopping.wait(SAMPLE_S):
            self.last.update(self._read())

    def start(self) -> None:
        self.first = self._read()
        self.thread.start()

    def stop(self) -> dict[str, float]:
        self.stopping.set()
        self.thread.join()
        self.last.update(self._read())
        kinds: dict[str, float] = collections.defaultdict(float)
        for tid, cpu in self.last.items():
            name = self.names.get(tid, "")
            if name == "bench-sampler":
                continue
            kind = next((k for prefix, k in THREAD_KINDS if name.startswith(prefix)), "other")
            kinds[kind] += cpu - self.first.get(tid, 0.0)
        return dict(kinds)


def rss() -> int:
    """This process's resident memory now, in bytes."""
    return int(Path("/proc/self/statm").read_text().split()[1]) * PAGE


def peak_rss() -> int:
    """This process's peak resident memory (`VmHWM`), in bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def reset_peak_rss() -> bool:
    """Resets `VmHWM` to the current RSS (Linux 4.0+: `5` into `clear_refs`)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("ir", type=Path)
    parser.add_argument("store")
    args = parser.parse_args()

    # Imported before the apply is measured, as everything else the run needs.
    import kubernetes.client
    import kubernetes.config  # noqa: F401
    from mlc.backends.kubernetes import executor as kube_executor
    from mlc.cli.apply import load_backend
    from mlc.cli.data import open_store_for
    from mlc.coordinator.run import Coordinator
    from mlc.ir.serialize import load
    from mlc.runtime import decisions

    document = load(args.ir.read_text(encoding="utf-8"))
    store = open_store_for(argparse.Namespace(store=args.store), create=True)
    backend = load_backend(document, store)
    executors: list[Any] = []
    make_executor = backend.executor

    def executor(doc: Any) -> Any:
        made = make_executor(doc)
        executors.append(made)
        return made

    backend.executor = executor
    phases = Phases()
    decisions.lookup = phases.timed("cache lookups", decisions.lookup)
    Coordinator._write_lineage = phases.timed("lineage", Coordinator._write_lineage)
    kube_executor.attempt_ended = phases.timed("attempt ended", kube_executor.attempt_ended)
    api = kube_executor.KubeApi
    api.request = phases.timed("API requests", api.request)
    start_attempt = kube_executor.KubernetesExecutor.start
    kube_executor.KubernetesExecutor.start = phases.timed("executor start", start_attempt)
    threads = ThreadCpu()

    reset = reset_peak_rss()
    before = rss()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    threads.start()
    start = time.time()
    report = backend.apply(document)
    end = time.time()
    used = resource.getrusage(resource.RUSAGE_SELF)
    thread_cpu = threads.stop()
    peak = peak_rss()

    # The executor's client, read without connecting (None: it never connected).
    api = getattr(executors[-1], "_api", None) if executors else None
    data = report.to_json() if hasattr(report, "to_json") else {}
    steps = data.get("steps", [])
    figures = {
        "start": start,
        "end": end,
        "cpu_s": (used.ru_utime - usage.ru_utime) + (used.ru_stime - usage.ru_stime),
        "rss_before": before,
        "peak_rss": peak,
        "peak_reset": reset,
        "writes": api.writes if api is not None else 0,
        "reads": api.reads if api is not None else 0,
        "connected": api is not None,
        "status": data.get("status"),
        "statuses": dict(collections.Counter(step["status"] for step in steps)),
        "errors": [f"{s['name']}: {s.get('error')}" for s in steps if s.get("error")][:3],
        "phases": phases.figures(start),
        "thread_cpu": thread_cpu,
    }
    print("k8s_apply: " + json.dumps(figures), flush=True)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
