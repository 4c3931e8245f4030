"""Benchmark of the Kubernetes backend against its targets, on the test control plane's kwok
nodes, side by side with a hand-written script using the official client.

Run: `.venv/bin/python bench/bench_k8s.py [--quick] [--repeat 3] [--write-docs]`

The benchmark starts what it needs and stops it at the end: the test control plane
(`tests.k8s.cluster.ControlPlane`: etcd, API server, controllers, scheduler and kwok, whose
fake nodes end each pod as its annotations say, after `run-for`, with a termination message
that reads as a successful step of mlc's runtime) with one more fake node of 2,000 CPUs and
1,100 pods, so that a wide run is never short of room; and an S3 server (moto's
`ThreadedMotoServer` on 127.0.0.1, in a process of its own, bucket created with boto3) for the
store. Every measured apply runs in a new namespace, which is deleted (and waited for) after.

mlc's side is `bench/k8s_apply.py`, one process per apply: it reads an IR document the
benchmark compiled with `mlc.compile.compile_spec` and runs `backend.apply(document)` of the
target's backend (`mlc.backends.kubernetes.create(store)`), and says the CPU time and peak
memory of the apply alone, the executor's API counters (`KubeApi.writes`, `.reads`) and the
statuses of the run's steps, which are checked: a figure that says steps ran is never made of
cache hits, nor of failures. Meanwhile the benchmark watches the namespace's Jobs and pods
itself (`Observer`: its own watch streams, on the same clock), which times when each Job was
created and when each pod was seen terminal.

1. API calls per step: every apply of (2) and (3) must make exactly one write per step plus
   one for the run's ConfigMap, and its reads are counted (the three watches' first lists);
   the Jobs and ConfigMaps found in the namespace are counted too. Cached steps: a
   pipeline of `steps_small` steps is applied on the local backend into an S3 store (every
   step runs and is cached), then with the Kubernetes target on the same store: every step
   must be `cached`, the executor must never connect (no call at all) and the namespace must
   hold no Job. A `foreach` step of 1,000 `run` items (100 with `--quick`) must be one Job (an
   Indexed Job): two writes with the ConfigMap, every item `ran`.
2. A chain of 10 `run` steps (each `after` the previous; pods run 200 ms on kwok) against
   `bench/k8s_peer.py`, which creates the same Jobs in order, each when its watch sees the
   previous pod terminal. From the benchmark's own watch, for each side: per link, the pod's
   start and run time (Job created → pod seen terminal) and the gap the client adds (upstream
   pod seen terminal → dependent Job created). Targets: a mean gap of at most 100 ms per link
   beyond pod start and run time, and a dependent Job created within 100 ms (p95 over every
   link of every repetition) of the upstream pod's terminal event.
3. Independent steps, 250 and 1,000 (25 and 100 with `--quick`), with the default rate limit
   (50 QPS): submitted (apply called → last Job created, seen by the watch) within 20 s for
   1,000; client CPU of the apply per step at most 10 ms; peak memory added by the apply
   (peak RSS during it - RSS before it), which must grow linearly with the steps.

Each repetition runs mlc and the peer in turn, each going first in alternate repetitions, so
the machine's load weighs on both alike. Figures are medians over the repetitions (p95 over
the pooled links). With `--write-docs` the results replace the `## Kubernetes backend`
section of `docs/benchmarks.md`; the text says so when mlc's code was edited while the
benchmark ran (someone working in the same checkout), since the figures may then mix versions.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for `tests.k8s.cluster`
from bench_local import CURRENT, Row, compile_mlc, load, machine, output_of, render, verdict
from docs_section import write_section
from mlc.backends.kubernetes.executor import CREATE_THREADS

from tests.k8s.cluster import DEFAULT_NODES, ControlPlane, NodeSpec

ROOT = Path(__file__).resolve().parent
REPO = ROOT.parent
DOCS = REPO / "docs" / "benchmarks.md"
SECTION = "## Kubernetes backend"
DRIVER = ROOT / "k8s_apply.py"
PEER = ROOT / "k8s_peer.py"
BUCKET = "mlc-bench"
IMAGE = "registry.invalid/mlc/step:1"
COMPONENT = "app.kubernetes.io/component"
JOB_NAME = "batch.kubernetes.io/job-name"
TIMEOUT_S = 900.0
MIB = 2**20

RUN_FOR = "200ms"
"""How long each pod of the chain runs on kwok."""
GAP_MS = 100.0
SUBMIT_S = 20.0
SUBMIT_STEPS = 1000
CPU_PER_STEP_MS = 10.0

SUCCESS = json.dumps(
    {
        "collected": {"outputs": {}, "error": None},
        "result": {"exit_code": 0, "error": None, "timed_out": False, "peak_memory_bytes": None},
        "log": {},
        "host": "kwok",
    }
)
"""What mlc's runtime writes into the termination message of a successful step without
outputs; kwok copies it into every pod's terminated state."""

BENCH_NODE = NodeSpec(name="bench-0", cpu="2000", memory="4000Gi", pods=1100)


# ------------------------------------------------------------------ specs


def _value(value: Any) -> str:
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{json.dumps(k)} = {_value(v)}" for k, v in value.items()) + " }"
    return json.dumps(value)


def spec_text(name: str, steps: int, *, chain: bool, namespace: str, run_for: str) -> str:
    """`steps` `run` steps, each with a cache key of its own (its name in its command), in a
    chain or independent; a Kubernetes target `k8s` whose pods end as kwok is told, and the
    local backend as `local_run`."""
    lines = ["mlspec 1", "", f"pipeline {name} {{"]
    for index in range(steps):
        step = f"c{index:02d}" if chain else f"s{index:04d}"
        after = f"\n    after = [c{index - 1:02d}]" if chain and index else ""
        lines.append(f'  step {step} {{\n    run = "true {step}"{after}\n  }}')
    annotations = {"mlc.test/termination-message": SUCCESS, "mlc.test/run-for": run_for}
    settings = {"image": IMAGE, "annotations": annotations}
    body = "\n".join(f"    {key} = {_value(value)}" for key, value in settings.items())
    lines += [
        "}",
        "",
        f'target k8s {{\n  backend = kubernetes\n  namespace = "{namespace}"\n'
        f"  kubernetes {{\n{body}\n  }}\n}}",
        "",
        "target local_run {\n  backend = local\n}",
        "",
    ]
    return "\n".join(lines)


def foreach_text(items: int, namespace: str) -> str:
    """One `run` step over `items` numbers (an invocation, and a cache key, per item)."""
    numbers = ", ".join(str(number) for number in range(items))
    steps = f'  step sweep foreach i in [{numbers}] {{\n    run = "true"\n  }}'
    text = spec_text(f"foreach_{items}", 1, chain=False, namespace=namespace, run_for="0s")
    return text.replace('  step s0000 {\n    run = "true s0000"\n  }', steps)


def compiled(work: Path, text: str, target: str) -> Path:
    """Compiles a spec with mlc's compile API for `target`; the IR document's path."""
    from mlc.compile import compile_spec
    from mlc.ir.serialize import to_json

    spec = work / f"{uuid.uuid4().hex[:8]}.mlspec"
    spec.write_text(text)
    result = compile_spec(spec, target=target)
    if result.document is None:
        sys.exit(f"the benchmark's spec does not compile: {result.diagnostics}")
    ir = spec.with_suffix(".ir.json")
    ir.write_text(to_json(result.document))
    return ir


# ------------------------------------------------------------------ the S3 server

S3_SERVER = f"""
import sys, time, logging
logging.getLogger("werkzeug").setLevel(logging.ERROR)
import boto3
from moto.server import ThreadedMotoServer
server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
host, port = server.get_host_and_port()
endpoint = f"http://{{host}}:{{port}}"
boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="testing",
             aws_secret_access_key="testing", region_name="us-east-1").create_bucket(
    Bucket="{BUCKET}")
print(endpoint, flush=True)
sys.stdin.read()
"""


class S3Server:
    """moto's S3 server in a process of its own (its work is not this process's)."""

    def __init__(self) -> None:
        self.process: subprocess.Popen[str] | None = None
        self.endpoint = ""

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", S3_SERVER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        self.endpoint = self.process.stdout.readline().strip()
        if not self.endpoint.startswith("http"):
            sys.exit("the S3 server did not start")

    def stop(self) -> None:
        if self.process is not None:
            assert self.process.stdin is not None
            self.process.stdin.close()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


# ------------------------------------------------------------------ the cluster's side


class Cluster:
    """The control plane, an admin client, and a namespace per measurement."""

    def __init__(self, workdir: Path) -> None:
        self.plane = ControlPlane(workdir, nodes=(*DEFAULT_NODES, BENCH_NODE))
        self.client: Any = None

    def start(self) -> None:
        from kubernetes import config

        self.plane.start()
        self.client = config.new_client_from_config(config_file=str(self.plane.kubeconfig))

    def stop(self) -> None:
        if self.client is not None:
            self.client.close()
        self.plane.stop()

    def namespace(self) -> str:
        """A new namespace whose `default` ServiceAccount exists (pods need it)."""
        from kubernetes.client import CoreV1Api
        from kubernetes.client.exceptions import ApiException

        core = CoreV1Api(self.client)
        name = f"bench-{uuid.uuid4().hex[:8]}"
        core.create_namespace({"metadata": {"name": name}})
        deadline = time.monotonic() + 30
        while True:
            try:
                core.read_namespaced_service_account("default", name)
                return name
            except ApiException as exc:
                if exc.status != 404 or time.monotonic() > deadline:
                    raise
            time.sleep(0.1)

    def counts(self, namespace: str) -> tuple[int, int]:
        """How many Jobs and mlc ConfigMaps the namespace holds."""
        from kubernetes.client import BatchV1Api, CoreV1Api

        jobs = BatchV1Api(self.client).list_namespaced_job(namespace, _preload_content=False)
        maps = CoreV1Api(self.client).list_namespaced_config_map(
            namespace, label_selector="app.kubernetes.io/managed-by=mlc", _preload_content=False
        )
        return len(json.loads(jobs.data)["items"]), len(json.loads(maps.data)["items"])

    def delete(self, namespace: str, timeout: float = 300.0) -> float:
        """Deletes the namespace and waits until it is gone; how long that took."""
        from kubernetes.client import CoreV1Api
        from kubernetes.client.exceptions import ApiException

        core = CoreV1Api(self.client)
        began = time.monotonic()
        core.delete_namespace(namespace, propagation_policy="Background")
        while time.monotonic() - began < timeout:
            try:
                core.read_namespace(namespace)
            except ApiException as exc:
                if exc.status == 404:
                    break
                raise
            time.sleep(0.25)
        return time.monotonic() - began


class Observer:
    """The benchmark's own watch of one namespace's Jobs and pods, on threads of this process:
    when each Job was first seen (its creation, seen about 5 ms later) and when each step's
    pod was first seen terminal, by the `app.kubernetes.io/component` label (the step)."""

    def __init__(self, cluster: Cluster, namespace: str) -> None:
        self.cluster = cluster
        self.namespace = namespace
        self.job_added: dict[str, float] = {}
        self.pod_ended: dict[str, float] = {}
        self.lock = threading.Lock()
        self.responses: list[Any] = []
        self.threads: list[threading.Thread] = []
        self.stopping = threading.Event()

    def __enter__(self) -> Observer:
        from kubernetes.client import BatchV1Api, CoreV1Api

        batch, core = BatchV1Api(self.cluster.client), CoreV1Api(self.cluster.client)
        for lister, handle in (
            (batch.list_namespaced_job, self._job),
            (core.list_namespaced_pod, self._pod),
        ):
            listed = lister(self.namespace, _preload_content=False)
            version = json.loads(listed.data)["metadata"]["resourceVersion"]
            response = lister(
                self.namespace,
                watch=True,
                resource_version=version,
                timeout_seconds=int(TIMEOUT_S),
                _preload_content=False,
            )
            self.responses.append(response)
            thread = threading.Thread(target=self._follow, args=(response, handle), daemon=True)
            thread.start()
            self.threads.append(thread)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        for response in self.responses:
            with contextlib.suppress(Exception):  # already closed
                response.shutdown()
        for thread in self.threads:
            thread.join(5)

    def _follow(self, response: Any, handle: Any) -> None:
        buffer = b""
        try:
            for chunk in response.stream(amt=None, decode_content=False):
                seen = time.time()
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    if line.strip():
                        event = json.loads(line)
                        handle(event.get("type", ""), event.get("object") or {}, seen)
        except Exception:  # the stream is shut down at the end
            if not self.stopping.is_set():
                raise

    def _job(self, kind: str, job: dict[str, Any], seen: float) -> None:
        step = (job.get("metadata", {}).get("labels") or {}).get(COMPONENT)
        if step and kind == "ADDED":
            with self.lock:
                self.job_added.setdefault(step, seen)

    def _pod(self, kind: str, pod: dict[str, Any], seen: float) -> None:
        step = (pod.get("metadata", {}).get("labels") or {}).get(COMPONENT)
        if step and pod.get("status", {}).get("phase") in ("Succeeded", "Failed"):
            with self.lock:
                self.pod_ended.setdefault(step, seen)

    def settle(self, steps: int, timeout: float = 5.0) -> None:
        """Waits (a little) until the watch has seen every step's Job and ended pod."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.job_added) >= steps and len(self.pod_ended) >= steps:
                    return
            time.sleep(0.02)


# ------------------------------------------------------------------ running one side


def environment(cluster: Cluster, s3: S3Server) -> dict[str, str]:
    """What mlc and the peer run with: the cluster's kubeconfig, the S3 server's endpoint and
    test credentials, compiled bytecode (see `bench_local.user_environment`)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("MLC_", "AWS_")) and k not in ("PYTHONDONTWRITEBYTECODE", "KUBECONFIG")
    }
    return env | {
        "KUBECONFIG": str(cluster.plane.kubeconfig),
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": s3.endpoint,
        "MLC_IR_CACHE": "0",
    }


def figures_of(prefix: str, argv: Sequence[str], env: dict[str, str]) -> dict[str, Any]:
    """Runs one process and returns what it printed after `PREFIX: `."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        process = subprocess.run(
            argv, env=env, stdout=out, stderr=err, timeout=TIMEOUT_S, check=False
        )
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    for line in stdout.splitlines():
        if line.startswith(f"{prefix}: "):
            found: dict[str, Any] = json.loads(line.removeprefix(f"{prefix}: "))
            return found
    sys.exit(
        f"{' '.join(argv[1:3])} printed no figures (exit {process.returncode}):\n{stderr[-3000:]}"
    )


def store_uri() -> str:
    return f"s3://{BUCKET}/{uuid.uuid4().hex}"


def mlc_apply(ir: Path, store: str, env: dict[str, str]) -> dict[str, Any]:
    return figures_of("k8s_apply", [sys.executable, str(DRIVER), str(ir), store], env)


def expect(figures: dict[str, Any], status: str, steps: int, what: str) -> dict[str, Any]:
    """Exits unless the run succeeded with every one of its `steps` steps `status`."""
    if figures["status"] != "succeeded" or figures["statuses"] != {status: steps}:
        sys.exit(
            f"{what}: expected {steps} steps {status}, the run says {figures['status']} with "
            f"{figures['statuses']} {figures['errors']}"
        )
    return figures


def expect_calls(figures: dict[str, Any], steps: int, jobs: int, maps: int, what: str) -> None:
    """Exits unless the apply made one write per step plus the ConfigMap, and the namespace
    holds those objects."""
    if figures["writes"] != steps + 1 or (jobs, maps) != (steps, 1):
        sys.exit(
            f"{what}: {figures['writes']} writes for {steps} steps; the namespace holds {jobs} "
            f"Jobs and {maps} ConfigMaps"
        )


@dataclass
class Side:
    """One side's chain figures over the repetitions."""

    gaps: list[float] = field(default_factory=list)
    """Seconds from an upstream pod seen terminal to the dependent Job seen created, pooled."""
    mean_gap: list[float] = field(default_factory=list)
    pod: list[float] = field(default_factory=list)
    """Per repetition, the mean pod start and run time (Job created → pod seen terminal)."""
    per_link: list[float] = field(default_factory=list)
    """Per repetition, (last pod seen terminal - first Job created) / links."""
    wall: list[float] = field(default_factory=list)
    """Per repetition, the client's call (apply, or the peer's chain after connecting)."""
    cpu: list[float] = field(default_factory=list)
    phases: list[dict[str, Any]] = field(default_factory=list)
    """mlc's, per repetition (see `k8s_apply.py`)."""


def chain_figures(side: Side, observer: Observer, links: int) -> str:
    """Adds one repetition's figures from the observer; a one-line account."""
    names = [f"c{index:02d}" for index in range(links)]
    added, ended = observer.job_added, observer.pod_ended
    missing = [n for n in names if n not in added or n not in ended]
    if missing:
        sys.exit(f"the watch did not see the Jobs or ended pods of {missing}")
    gaps = [added[names[i]] - ended[names[i - 1]] for i in range(1, links)]
    pods = [ended[n] - added[n] for n in names]
    side.gaps += gaps
    side.mean_gap.append(statistics.mean(gaps))
    side.pod.append(statistics.mean(pods))
    side.per_link.append((ended[names[-1]] - added[names[0]]) / links)
    return (
        f"per link {side.per_link[-1] * 1000:.0f} ms: pod {side.pod[-1] * 1000:.0f} ms + gap "
        f"{side.mean_gap[-1] * 1000:.0f} ms (max {max(gaps) * 1000:.0f} ms)"
    )


@dataclass
class Calls:
    """API calls of the measured applies (every one is checked)."""

    applies: int = 0
    steps: int = 0
    writes: int = 0
    reads: list[int] = field(default_factory=list)


def bench_chain(
    cluster: Cluster, work: Path, env: dict[str, str], links: int, repeat: int, calls: Calls
) -> tuple[Side, Side]:
    mlc, peer = Side(), Side()
    for attempt in range(repeat):
        order = ("mlc", "peer") if attempt % 2 == 0 else ("peer", "mlc")
        for who in order:
            namespace = cluster.namespace()
            if who == "mlc":
                text = spec_text(
                    f"chain_{links}", links, chain=True, namespace=namespace, run_for=RUN_FOR
                )
                ir = compiled(work, text, "k8s")
                with Observer(cluster, namespace) as observer:
                    figures = mlc_apply(ir, store_uri(), env)
                    observer.settle(links)
                expect(figures, "ran", links, f"chain, repetition {attempt + 1}")
                jobs, maps = cluster.counts(namespace)
                expect_calls(figures, links, jobs, maps, f"chain, repetition {attempt + 1}")
                calls.applies += 1
                calls.steps += links
                calls.writes += figures["writes"]
                calls.reads.append(figures["reads"])
                mlc.phases.append(figures["phases"])
                side = mlc
            else:
                with Observer(cluster, namespace) as observer:
                    argv = [sys.executable, str(PEER), namespace, str(links), RUN_FOR, SUCCESS]
                    figures = figures_of("k8s_peer", argv, env)
                    observer.settle(links)
                if figures["created"] != links or figures["ended"] != links:
                    sys.exit(f"the peer's chain did not end: {figures}")
                side = peer
            side.wall.append(figures["end"] - figures["start"])
            side.cpu.append(figures["cpu_s"])
            account = chain_figures(side, observer, links)
            deleted = cluster.delete(namespace)
            print(
                f"  chain of {links}, {who}: {account}; wall {side.wall[-1]:.2f}s, CPU "
                f"{side.cpu[-1]:.2f}s (namespace deleted in {deleted:.1f}s) (load {load()})",
                flush=True,
            )
    return mlc, peer


@dataclass
class Wide:
    """Independent steps: the figures of each repetition."""

    steps: int
    submitted: list[float] = field(default_factory=list)
    """apply called → last Job seen created."""
    first: list[float] = field(default_factory=list)
    """apply called → first Job seen created."""
    spread: list[float] = field(default_factory=list)
    """first Job → last Job seen created."""
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    rss_before: list[float] = field(default_factory=list)
    peak_rss: list[float] = field(default_factory=list)
    phases: list[dict[str, Any]] = field(default_factory=list)
    """Per repetition, `k8s_apply.py`'s `phases` (seconds in the cache lookups, …)."""
    thread_cpu: list[dict[str, float]] = field(default_factory=list)


def bench_wide(
    cluster: Cluster, work: Path, env: dict[str, str], steps: int, repeat: int, calls: Calls
) -> Wide:
    result = Wide(steps)
    for attempt in range(repeat):
        namespace = cluster.namespace()
        text = spec_text(f"wide_{steps}", steps, chain=False, namespace=namespace, run_for="0s")
        ir = compiled(work, text, "k8s")
        with Observer(cluster, namespace) as observer:
            figures = mlc_apply(ir, store_uri(), env)
            observer.settle(steps)
        what = f"{steps} independent steps, repetition {attempt + 1}"
        expect(figures, "ran", steps, what)
        jobs, maps = cluster.counts(namespace)
        expect_calls(figures, steps, jobs, maps, what)
        calls.applies += 1
        calls.steps += steps
        calls.writes += figures["writes"]
        calls.reads.append(figures["reads"])
        created = sorted(observer.job_added.values())
        if len(created) != steps:
            sys.exit(f"{what}: the watch saw {len(created)} Jobs")
        start = figures["start"]
        result.submitted.append(created[-1] - start)
        result.first.append(created[0] - start)
        result.spread.append(created[-1] - created[0])
        result.wall.append(figures["end"] - start)
        result.cpu.append(figures["cpu_s"])
        result.rss_before.append(figures["rss_before"])
        result.peak_rss.append(figures["peak_rss"])
        result.phases.append(figures["phases"])
        result.thread_cpu.append(figures["thread_cpu"])
        if not figures["peak_reset"]:
            print("  (the peak RSS could not be reset: it includes the set-up)", flush=True)
        deleted = cluster.delete(namespace)
        print(
            f"  {steps} independent: submitted in {result.submitted[-1]:.2f}s (first Job "
            f"{result.first[-1]:.2f}s), run {result.wall[-1]:.2f}s, CPU {figures['cpu_s']:.2f}s "
            f"({figures['cpu_s'] / steps * 1000:.2f} ms/step), peak "
            f"{(figures['peak_rss'] - figures['rss_before']) / MIB:+.1f} MiB over "
            f"{figures['rss_before'] / MIB:.0f} MiB; {figures['writes']} writes, "
            f"{figures['reads']} reads (namespace deleted in {deleted:.1f}s) (load {load()})",
            flush=True,
        )
    return result


@dataclass
class Foreach:
    """A `foreach` step of many items: one Indexed Job."""

    items: int
    writes: list[int] = field(default_factory=list)
    jobs: list[int] = field(default_factory=list)
    submitted: list[float] = field(default_factory=list)
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)


def bench_foreach(
    cluster: Cluster, work: Path, env: dict[str, str], items: int, repeat: int
) -> Foreach:
    result = Foreach(items)
    for attempt in range(repeat):
        namespace = cluster.namespace()
        ir = compiled(work, foreach_text(items, namespace), "k8s")
        with Observer(cluster, namespace) as observer:
            figures = mlc_apply(ir, store_uri(), env)
            observer.settle(1)
        expect(figures, "ran", items, f"foreach of {items}, repetition {attempt + 1}")
        jobs, maps = cluster.counts(namespace)
        result.writes.append(figures["writes"])
        result.jobs.append(jobs)
        result.submitted.append(min(observer.job_added.values()) - figures["start"])
        result.wall.append(figures["end"] - figures["start"])
        result.cpu.append(figures["cpu_s"])
        deleted = cluster.delete(namespace)
        print(
            f"  foreach of {items}: {figures['writes']} writes, {figures['reads']} reads, {jobs} "
            f"Jobs, {maps} ConfigMaps; Job created {result.submitted[-1]:.2f}s after apply, "
            f"run {result.wall[-1]:.2f}s, CPU {figures['cpu_s']:.2f}s (namespace deleted in "
            f"{deleted:.1f}s) (load {load()})",
            flush=True,
        )
    return result


def foreach_rows(result: Foreach) -> list[Row]:
    name = f"`foreach` of {result.items:,} `run` items"
    return [
        Row(
            f"{name}: API writes of the apply (the Job created {median(result.submitted):.2f} s "
            f"after `apply` was called; run {median(result.wall):.1f} s, client CPU "
            f"{median(result.cpu) / result.items * 1000:.2f} ms per item)",
            "",
            {"mlc": float(max(result.writes))},
            f"Jobs in the namespace: {max(result.jobs)} (an Indexed Job)",
            target="one Job (1 write) + the ConfigMap",
            result=verdict(max(result.writes) <= 2 and max(result.jobs) == 1),
        )
    ]


@dataclass
class Cached:
    steps: int
    statuses: list[dict[str, int]] = field(default_factory=list)
    connected: list[bool] = field(default_factory=list)
    calls: list[int] = field(default_factory=list)
    jobs: list[int] = field(default_factory=list)
    wall: list[float] = field(default_factory=list)
    local_wall: list[float] = field(default_factory=list)


def bench_cached(
    cluster: Cluster, work: Path, env: dict[str, str], steps: int, repeat: int
) -> Cached:
    result = Cached(steps)
    for attempt in range(repeat):
        namespace = cluster.namespace()
        text = spec_text(f"cached_{steps}", steps, chain=False, namespace=namespace, run_for="0s")
        store = store_uri()
        local = mlc_apply(compiled(work, text, "local_run"), store, env)
        expect(local, "ran", steps, f"cached, local warm-up {attempt + 1}")
        figures = mlc_apply(compiled(work, text, "k8s"), store, env)
        expect(figures, "cached", steps, f"cached, repetition {attempt + 1}")
        jobs, maps = cluster.counts(namespace)
        result.connected.append(figures["connected"])
        result.calls.append(figures["writes"] + figures["reads"])
        result.jobs.append(jobs + maps)
        result.wall.append(figures["end"] - figures["start"])
        result.local_wall.append(local["end"] - local["start"])
        cluster.delete(namespace)
        print(
            f"  {steps} cached steps: connected {figures['connected']}, "
            f"{figures['writes']} writes, {figures['reads']} reads, {jobs} Jobs, {maps} "
            f"ConfigMaps; apply {result.wall[-1]:.2f}s (local run {result.local_wall[-1]:.2f}s) "
            f"(load {load()})",
            flush=True,
        )
    return result


# ------------------------------------------------------------------ the table


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def p95(values: Sequence[float]) -> float:
    """The 95th percentile (nearest rank)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def phase(phases: Sequence[dict[str, Any]], name: str, per_call: bool = False) -> float:
    """The median over the repetitions of the seconds spent in a phase (per call)."""
    values = [
        p[name]["seconds"] / (p[name]["calls"] if per_call else 1) for p in phases if name in p
    ]
    return median(values) if values else math.nan


def phase_span(phases: Sequence[dict[str, Any]], name: str) -> float:
    """The median over the repetitions of when a phase's last call ended (seconds after
    `apply` was called)."""
    values = [p[name]["last"] for p in phases if name in p]
    return median(values) if values else math.nan


def chain_rows(mlc: Side, peer: Side, links: int) -> list[Row]:
    name = f"chain of {links} `run` steps (pods run {RUN_FOR} on kwok)"
    gap, peer_gap = median(mlc.mean_gap), median(peer.mean_gap)
    p95_gap, peer_p95 = p95(mlc.gaps), p95(peer.gaps)
    return [
        Row(
            f"{name}: time per link, first Job created → last pod terminal, / {links}",
            "ms",
            {"mlc": median(mlc.per_link) * 1000},
            f"{ms(median(peer.per_link))} (hand-written script, official client)",
            f"{(median(mlc.per_link) - median(peer.per_link)) * 1000:+.0f} ms per link",
        ),
        Row(
            f"{name}: pod start and run time, Job created → pod terminal (mean of the links)",
            "ms",
            {"mlc": median(mlc.pod) * 1000},
            f"{ms(median(peer.pod))} (the script's Jobs)",
            f"{(median(mlc.pod) - median(peer.pod)) * 1000:+.0f} ms",
        ),
        Row(
            f"{name}: added per link beyond pod start and run time, upstream pod terminal → "
            "dependent Job created (mean of the links)",
            "ms",
            {"mlc": gap * 1000},
            f"{ms(peer_gap)} (the script)",
            f"{(gap - peer_gap) * 1000:+.0f} ms",
            f"≤ {GAP_MS:.0f} ms",
            verdict(gap * 1000 <= GAP_MS),
        ),
        Row(
            f"{name}: dependent Job created after the upstream pod's terminal event, p95 of "
            f"{len(mlc.gaps)} links (p50 {ms(median(mlc.gaps))})",
            "ms",
            {"mlc": p95_gap * 1000},
            f"{ms(peer_p95)} (the script, p95 of {len(peer.gaps)}; p50 {ms(median(peer.gaps))})",
            f"{(p95_gap - peer_p95) * 1000:+.0f} ms",
            f"≤ {GAP_MS:.0f} ms",
            verdict(p95_gap * 1000 <= GAP_MS),
        ),
        Row(
            f"{name}: where mlc's gap goes: the dependent step's cache lookup in the S3 store "
            "(mean per step; the coordinator awaits it)",
            "ms",
            {"mlc": phase(mlc.phases, "cache lookups", per_call=True) * 1000},
            f"{phase(mlc.phases, 'lineage') / links * 1000:.0f} ms per link writing lineage "
            "records on the same thread",
        ),
        Row(
            f"{name}: the client's whole call (mlc: `apply`; the script: its chain, connected)",
            "s",
            {"mlc": median(mlc.wall)},
            f"{median(peer.wall):.2f} s (the script)",
            f"{median(mlc.wall) / median(peer.wall):.1f}x",
        ),
        Row(
            f"{name}: client CPU during that call",
            "s",
            {"mlc": median(mlc.cpu)},
            f"{median(peer.cpu):.2f} s (the script)",
            f"{(median(mlc.cpu) - median(peer.cpu)) / links * 1000:+.1f} ms per link",
        ),
    ]


def wide_rows(results: Sequence[Wide]) -> list[Row]:
    rows = []
    for result in results:
        name = f"{result.steps:,} independent `run` steps (default 50 QPS)"
        submitted = median(result.submitted)
        spread = median(result.spread)
        floor = max(0, result.steps + 1 - 50) / 50  # the ConfigMap and the Jobs, after a burst
        judged = result.steps == SUBMIT_STEPS
        rows.append(
            Row(
                f"{name}: submitted, `apply` called → last Job created (first Job after "
                f"{median(result.first):.2f} s; first → last {spread:.2f} s, "
                f"{(result.steps - 1) / spread:.0f} Jobs/s)",
                "s",
                {"mlc": submitted},
                f"{floor:.2f} s (what 50 QPS allows: {result.steps + 1} writes, a burst of 50)",
                target=f"≤ {SUBMIT_S:.0f} s" if judged else "",
                result=verdict(submitted <= SUBMIT_S) if judged else "",
            )
        )
        rows.append(
            Row(
                f"{name}: the coordinator's cache lookup of each step in the S3 store (16 at a "
                "time on a pool of threads while the coordinator starts what it decided): "
                "time per lookup",
                "ms",
                {"mlc": phase(result.phases, "cache lookups", per_call=True) * 1000},
                f"first Job after {median(result.first):.2f} s; the lookups all done "
                f"{phase_span(result.phases, 'cache lookups'):.2f} s after `apply` was called",
            )
        )
        latency = phase(result.phases, "API requests", per_call=True)
        rows.append(
            Row(
                f"{name}: where the time from the first Job to the last goes: the API server's "
                f"latency per create, {CREATE_THREADS} creating threads",
                "ms",
                {"mlc": latency * 1000},
                f"{CREATE_THREADS / latency:.0f} Jobs/s at most from {CREATE_THREADS} threads; "
                f"{(result.steps - 1) / spread:.0f} Jobs/s seen; the rate limit: 50/s",
            )
        )
        cpu = median(result.cpu) / result.steps * 1000
        kinds = ("coordinator", "watches", "Job creation", "cache lookups", "store I/O")
        parts = {
            kind: median([t.get(kind, 0.0) for t in result.thread_cpu]) / result.steps * 1000
            for kind in kinds
        }
        rows.append(
            Row(
                f"{name}: client CPU per step (the whole apply's CPU / steps, every pod "
                f"followed to its end; apply {median(result.wall):.1f} s)",
                "ms",
                {"mlc": cpu},
                target=f"≤ {CPU_PER_STEP_MS:.0f} ms",
                result=verdict(cpu <= CPU_PER_STEP_MS),
            )
        )
        rows.append(
            Row(
                f"{name}: client CPU per step by thread, without the store's I/O "
                "(coordinator + watches + Job creation + cache lookups)",
                "ms",
                {"mlc": sum(parts[k] for k in kinds[:4])},
                "; ".join(f"{kind} {value:.2f} ms" for kind, value in parts.items()),
            )
        )
        added = [p - b for p, b in zip(result.peak_rss, result.rss_before, strict=True)]
        rows.append(
            Row(
                f"{name}: peak memory added by the apply (peak RSS during it - RSS before, "
                f"{median(result.rss_before) / MIB:.0f} MiB)",
                "MiB",
                {"mlc": median(added) / MIB},
                ratio=f"{median(added) / result.steps / 1024:.1f} KiB per step",
            )
        )
    if len(results) == 2:
        small, large = results
        grow = [
            median([p - b for p, b in zip(r.peak_rss, r.rss_before, strict=True)]) for r in results
        ]
        per_step = (grow[1] - grow[0]) / (large.steps - small.steps)
        ratio = grow[1] / grow[0] if grow[0] > 0 else math.inf
        rows.append(
            Row(
                f"memory from {small.steps:,} to {large.steps:,} steps: added peak "
                f"{grow[0] / MIB:.1f} → {grow[1] / MIB:.1f} MiB",
                "x",
                {"mlc": ratio},
                ratio=f"{per_step / 1024:.1f} KiB per added step",
                target=f"linear (≤ {large.steps / small.steps:.0f}x)",
                result=verdict(ratio <= large.steps / small.steps * 1.1),
            )
        )
    return rows


def calls_rows(calls: Calls, cached: Cached | None) -> list[Row]:
    rows = [
        Row(
            f"API writes per running step, every apply above ({calls.applies} applies, "
            f"{calls.steps:,} steps, {calls.writes:,} writes; reads per apply: "
            f"{min(calls.reads)}-{max(calls.reads)}, the watches' first lists)",
            "",
            {"mlc": (calls.writes - calls.applies) / calls.steps},
            "1 Job per step + 1 ConfigMap per run (checked in the namespace)",
            target="≤ 1 per step + the ConfigMap",
            result=verdict(calls.writes - calls.applies <= calls.steps),
        )
    ]
    if cached is not None:
        rows.append(
            Row(
                f"{cached.steps} steps cached (run on the local backend into the same S3 "
                f"store first): API calls of the Kubernetes apply ({median(cached.wall):.2f} s; "
                f"the local run {median(cached.local_wall):.2f} s)",
                "",
                {"mlc": float(max(cached.calls))},
                f"connected: {'yes' if any(cached.connected) else 'never'}; objects in the "
                f"namespace: {max(cached.jobs)}",
                target="0; never connected",
                result=verdict(max(cached.calls) == 0 and not any(cached.connected)),
            )
        )
    return rows


def summary(chain: tuple[Side, Side] | None, wide: Sequence[Wide]) -> str:
    """Which targets are met, and where the time of those missed goes, from the figures."""
    lines = []
    if chain is not None:
        mlc, peer = chain
        gap, top = median(mlc.mean_gap), p95(mlc.gaps)
        lookup = phase(mlc.phases, "cache lookups", per_call=True)
        lines.append(
            f"Chain: mlc adds {gap * 1000:.0f} ms per link beyond pod start and run time "
            f"(the hand-written script {median(peer.mean_gap) * 1000:.0f} ms), "
            f"{verdict(gap * 1000 <= GAP_MS)} against {GAP_MS:.0f} ms; the dependent Job comes "
            f"{top * 1000:.0f} ms (p95) after the upstream pod's terminal event, "
            f"{verdict(top * 1000 <= GAP_MS)}. Of mlc's gap, {lookup * 1000:.0f} ms is the "
            "dependent step's cache lookup in the S3 store, whose answer the coordinator "
            "awaits before it starts the step."
        )
    for result in wide:
        if result.steps != SUBMIT_STEPS:
            continue
        submitted, first = median(result.submitted), median(result.first)
        done = phase_span(result.phases, "cache lookups")
        each = phase(result.phases, "cache lookups", per_call=True)
        latency = phase(result.phases, "API requests", per_call=True)
        spread = median(result.spread)
        cpu = median(result.cpu) / result.steps * 1000
        store = median([t.get("store I/O", 0.0) for t in result.thread_cpu]) / result.steps
        lines.append(
            f"{result.steps:,} independent steps: submitted in {submitted:.1f} s, "
            f"{verdict(submitted <= SUBMIT_S)} against {SUBMIT_S:.0f} s. The Jobs themselves "
            f"took {spread:.1f} s from the first to the last ({(result.steps - 1) / spread:.0f} "
            f"per second against the 50 QPS limit; {latency * 1000:.0f} ms per create from "
            f"{CREATE_THREADS} threads); the first came {first:.1f} s after `apply` was called. "
            "The coordinator's cache lookups, 16 at a time on a pool of threads "
            f"({each * 1000:.0f} ms each against the S3 test server), were all answered "
            f"{done:.1f} s after `apply` was called, while the Jobs of the steps decided "
            "first were being created. Client CPU: "
            f"{cpu:.1f} ms per step, {verdict(cpu <= CPU_PER_STEP_MS)} against "
            f"{CPU_PER_STEP_MS:.0f} ms, of which {store * 1000:.1f} ms is the S3 client's "
            "(the cache lookups and the lineage records) and the rest the coordinator, "
            "the watches, the Job creation and the lookups' threads."
        )
    return "\n\n".join(lines)


READING = """\
Reading the figures: pods run on kwok's fake nodes, which end each pod as its annotations say
(the chain's after 200 ms, the others at once) with the termination message of a successful
step, so what is measured is mlc's client (the coordinator and the Kubernetes executor) and the
control plane, not a container runtime; no cache entries are written by kwok pods, hence the
warm-up on the local backend for the cached case. The chain's times come from the benchmark's
own watch of the namespace (Jobs created, pods seen terminal), on the same clock and with the
same watch delay for mlc and the hand-written script (`bench/k8s_peer.py`): "pod start and
run time" is the Job controller creating the pod, the scheduler binding it, kwok running it
for 200 ms and the status reaching the watch; the gap after it is the client's reaction
(its own watch's delivery, deciding the next step, and creating its Job). The client CPU of
the independent steps is the whole apply's, every pod followed to its end (watch events,
termination messages, the store's records of each attempt), divided by the steps; its peak
memory is that of the apply alone (the peak is reset after the set-up). The `foreach` row
counts the apply's writes and the Jobs left in the namespace: the items are one Indexed Job.
Not measured: the one read a create makes after a `409 AlreadyExists` (no apply here meets
one). Figures are medians of the repetitions, each in a new namespace, on a machine of 2 cores
shared by the control plane, the S3 server and the client (and, here, by other work).
"""


def code_files() -> dict[str, tuple[int, int]]:
    """mlc's source files with their sizes and mtimes: an edit made while the benchmark runs
    (someone works in the same checkout) shows as a change."""
    found = {}
    for package in (REPO / "compiler", REPO / "backends"):
        for path in package.rglob("*.py"):
            st = path.stat()
            found[str(path.relative_to(REPO))] = (st.st_size, st.st_mtime_ns)
    return found


def versions() -> str:
    mlc = output_of(sys.executable, "-m", "mlc", "--version").split()
    client = output_of(sys.executable, "-c", "import kubernetes; print(kubernetes.__version__)")
    from tests.k8s.cluster import pinned_versions

    pinned = pinned_versions()
    return (
        f"mlc {mlc[-1] if mlc else '?'}, Kubernetes {pinned.kubernetes}, kwok {pinned.kwok}, "
        f"kubernetes client {client or '?'}, Python {platform.python_version()}"
    )


def write_docs(text: str, argv: list[str]) -> None:
    """Replaces (or appends) the `## Kubernetes backend` section of `docs/benchmarks.md`."""
    command = "python bench/bench_k8s.py " + " ".join(argv)
    body = (
        f"Measured {dt.date.today().isoformat()} on {machine()}; {versions()}; with "
        f"`{command.strip()}` (medians of the repetitions; see the docstring of "
        "`bench/bench_k8s.py` for what each figure is).\n\n" + text + "\n\n" + READING
    )
    write_section(DOCS, SECTION, body)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="25 and 100 independent steps")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--links", type=int, default=10)
    parser.add_argument("--skip-chain", action="store_true")
    parser.add_argument("--skip-wide", action="store_true")
    parser.add_argument("--skip-cached", action="store_true")
    parser.add_argument("--skip-foreach", action="store_true")
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args()
    sizes = (25, 100) if args.quick else (250, 1000)
    began = time.perf_counter()
    at_start = code_files()
    compile_mlc(CURRENT)
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    print(f"{machine()}\n{versions()}\nload {load()}", flush=True)
    work = ROOT / ".work" / "k8s"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    cluster = Cluster(work / "control-plane")
    s3 = S3Server()
    rows: list[Row] = []
    calls = Calls()
    try:
        s3.start()
        cluster.start()
        print(
            f"control plane up in {cluster.plane.startup_seconds:.1f}s, S3 at {s3.endpoint}",
            flush=True,
        )
        env = environment(cluster, s3)
        cached = None
        chain: tuple[Side, Side] | None = None
        wide: list[Wide] = []
        if not args.skip_cached:
            cached = bench_cached(cluster, work, env, sizes[0], min(args.repeat, 2))
        if not args.skip_chain:
            mlc, peer = bench_chain(cluster, work, env, args.links, args.repeat, calls)
            rows += chain_rows(mlc, peer, args.links)
            chain = (mlc, peer)
        if not args.skip_wide:
            wide = [bench_wide(cluster, work, env, n, args.repeat, calls) for n in sizes]
            rows += wide_rows(wide)
        if not args.skip_foreach:
            rows += foreach_rows(bench_foreach(cluster, work, env, sizes[1], min(args.repeat, 2)))
        if calls.applies:
            rows = calls_rows(calls, cached) + rows
        peak = cluster.plane.describe_peak_memory()
    finally:
        cluster.stop()
        s3.stop()
    text = render(rows, ["mlc"])
    text += "\n\n" + summary(chain, wide) if chain is not None or wide else ""
    text += (
        f"\n\nLoad average (1, 5, 15 min) at the end: {load()}. Control plane: {peak}. The whole "
        f"benchmark took {(time.perf_counter() - began) / 60:.1f} min."
    )
    now = code_files()
    edited = sorted(p for p in {*now, *at_start} if now.get(p) != at_start.get(p))
    if edited:
        text += (
            " **mlc's code was edited while the benchmark ran: the figures may mix versions** "
            f"({', '.join(edited[:5])})."
        )
    print("\n" + text)
    if args.write_docs:
        write_docs(text, sys.argv[1:])


if __name__ == "__main__":
    main()
