"""Benchmark of the Ray backend against its targets, side by side with bare Ray on the same
cluster in the same run.

Run: `.venv/bin/python bench/bench_ray.py [--quick] [--repeat 3] [--skip-fanout]
[--skip-chain] [--skip-startup] [--skip-memory] [--write-docs]`

The benchmark starts one Ray head of its own (`tests.ray.cluster.RayHead`: `ray start --head`
on loopback, 2 CPUs, no dashboard) and stops it at the end; it never runs `ray stop`, which
would end every Ray on the machine. Every `mlc apply` and every bare-Ray script is a new
process with the same environment (the head's driver settings, `RAY_AUTH_MODE=token`);
`--format json` reports are checked for their statuses, so a figure that says it runs steps
is never made of cache hits. The bare-Ray peer is `bench/ray_peer.py` (see its docstring),
run by the same interpreter. Specs come from `bench/gen_ray.py`, written anew for each run
(they name the head's address) under `bench/.work/ray/` (`ray-quick/` with `--quick`). Each
spec is compiled before it is measured (the IR cache is filled by an unmeasured apply on the
local backend, then an unmeasured all-cached apply on the Ray target), and mlc runs with
compiled bytecode, as installed (see `bench/bench_local.py`).

1. Fan-out/fan-in: 1,000 no-op steps (100 with `--quick`; 1 source, the rest parallel, 1 sink),
   each with a cache key of its own, once as `call` steps (a Python no-op) and once as `run`
   steps (`true NAME`). mlc: `mlc apply --target ray` into a new store, every step `ran`;
   "wall" is the whole process, "the run alone" the report's `duration_s` (from the run's
   start, joining the cluster at the first step, to leaving it). Bare Ray: the same DAG as
   Ray tasks from a driver script joined to the same cluster (`ray.wait` loop; `subprocess.run`
   of `true NAME` for `run`); "wall" is the whole script, the run its `import ray` +
   `ray.init` + tasks + `ray.shutdown`, timed inside (mlc imports Ray inside its run, when the
   first step must run). Target: mlc adds at most 2 ms per step to bare Ray, judged
   on the wall times and on the runs alone. Where the time goes: the CPU time (user + system)
   of the driver (`os.wait4`), of Ray's worker processes, which run the tasks (with the
   commands they start), and of Ray's own processes (GCS, raylet, agents), the last two read
   from `/proc` while the driver runs (see `HeadCpu`), for mlc and for bare Ray alike, all
   from the same repetition (each side's fastest).
2. A chain of 100 `call` steps (20 with `--quick`), each reading the previous one's output
   file from the store: mlc against bare Ray's chain of tasks passing ObjectRefs. Target: at
   most 5 ms per link beyond bare Ray, judged on the links alone: the time from the first
   link's end to the last one's (mlc: the end times its lineage records, as the coordinator
   saw them; bare Ray: as its driver sees them), divided by the 99 links in between. What a
   run costs once (starting Python, joining the cluster, the new job's first Ray worker) is
   left out there: the start-up target (3) bounds it, and on 100 links it would weigh 10 ms a
   link for every second. The same whole-run figures as (1) are shown beside it.
3. Start-up: `mlc apply` of a one-step pipeline whose target has no address (mlc starts a
   Ray instance on this machine for the run, and stops it), against a script doing
   `ray.init(address="local")` + one task + `ray.shutdown()`; target: mlc's wall at most the
   script's + 1 s. Then all-cached re-applies with the same spec and store on the Ray target
   and on the local backend (the one-step spec with no address, and the `call` fan-out with the
   head's address): the Ray one must neither import nor start nor join Ray (checked: the
   process reports whether `ray` was imported) and take at most 0.1 s more than the local one.
4. Driver memory: peak RSS (`os.wait4`, the `mlc apply` process) of a 10,000-item `foreach` of
   `call` no-ops on Ray (1,000 with `--quick`) against an idle driver (a one-step pipeline on
   Ray); target: at most 150 MiB above. Memory figures are the largest of the repetitions;
   everything else is the best (smallest).

Each repetition runs mlc and bare Ray in turn, each going first in alternate repetitions, so
the machine's load weighs on both alike; the load average is printed with every figure.

Creating a file is part of every mlc step (its log, its inputs, its packed outputs, its cache
entry) and of no bare Ray task, and on some filesystems its cost depends on what was deleted
before: ext4 without a journal, this machine's, skips every inode freed nearby in the last
seconds, so after a large deletion creating a file costs up to a millisecond of CPU instead
of 25-40 µs, for a few seconds to a minute. The warm-up runs delete enough to cause that.
Before each section's repetitions, the benchmark therefore waits (at most
`SETTLE_SECONDS`) until creating a file in the stores' directory is cheap again, and it prints
that cost before each of mlc's repetitions (`create`), so that a slow repetition shows
whether the filesystem was the cause.

With `--write-docs` the results replace the `## Ray backend` section of `docs/benchmarks.md`.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import functools
import json
import math
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for `tests.ray.cluster`
from bench_local import (
    CURRENT,
    IR_CACHE,
    Figures,
    Row,
    compile_mlc,
    keep_best,
    load,
    machine,
    output_of,
    ratio,
    render,
    statuses,
    verdict,
)
from docs_section import write_section
from gen_ray import generate

from tests.ray.cluster import RayHead

ROOT = Path(__file__).resolve().parent
REPO = ROOT.parent
DOCS = REPO / "docs" / "benchmarks.md"
SECTION = "## Ray backend"
PEER = ROOT / "ray_peer.py"
TIMEOUT_S = 1800.0
"""A process still running after this long has hung (a Ray task pending forever, say)."""
MIB = 2**20
ADDED_PER_STEP_MS = 2.0
ADDED_PER_LINK_MS = 5.0
STARTUP_SLACK_S = 1.0
CACHED_SLACK_S = 0.1
MEMORY_SLACK_MIB = 150.0

# Runs the mlc CLI in this interpreter and says at exit whether Ray was imported (an
# all-cached re-apply must not import it, let alone start or join a cluster) and whether the
# spec was compiled (lark imported) rather than read from the IR cache.
WRAPPED_MLC = r"""
import atexit, sys
atexit.register(lambda: print(
    f"MLC_RAY_IMPORTED={int('ray' in sys.modules)} MLC_COMPILED={int('lark' in sys.modules)}",
    file=sys.stderr))
from mlc.cli.main import entry
sys.argv = ["mlc", *sys.argv[1:]]
entry()
"""


TICKS = os.sysconf("SC_CLK_TCK")
SAMPLE_S = 0.05
WALK_EVERY = 10
"""Every how many samples the process tree is walked again for new processes (every thread's
`children` file of every Ray process: 0.13 s of CPU a second when done at every sample, taken
from the 2 cores being measured); in between only the processes already seen are read."""


class HeadCpu:
    """The CPU time the Ray head's processes spend while one driver runs, read from `/proc`:
    Ray's worker processes (`default_worker.py`, which run the tasks and end with their job;
    with the processes they started and waited for, e.g. `run` commands) and Ray's own (GCS,
    raylet, agents). A worker's last reading is taken every 50 ms while it lives, since its
    time is lost when it exits (the raylet does not wait for it); new processes are looked
    for every `WALK_EVERY` readings (a worker lives as long as its job)."""

    def __init__(self, root: int) -> None:
        self.root = root
        self._kinds: dict[int, bool] = {}
        """Whether each process seen is a worker."""
        self._first: dict[int, float] = {}
        self._last: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> HeadCpu:
        self._first = self._read()
        self._last = dict(self._first)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._last.update(self._read())

    def _sample(self) -> None:
        samples = 0
        while not self._stop.wait(SAMPLE_S):
            samples += 1
            self._last.update(self._read() if samples % WALK_EVERY == 0 else self._read_known())

    def _read_known(self) -> dict[int, float]:
        """`_read` of the processes already seen, without looking for new ones."""
        seen: dict[int, float] = {}
        for pid, worker in list(self._kinds.items()):
            try:
                stat = Path(f"/proc/{pid}/stat").read_text()
            except OSError:
                continue  # it ended
            seen[pid] = _cpu_seconds(stat, worker)
        return seen

    def _read(self) -> dict[int, float]:
        """Seconds of CPU (user + system) of every process under the head's, by pid."""
        seen: dict[int, float] = {}
        pending = [(self.root, False)]
        while pending:
            pid, under_raylet = pending.pop()
            try:
                stat = Path(f"/proc/{pid}/stat").read_text()
                if pid not in self._kinds:
                    # The raylet's children are the workers (titled `ray::IDLE`, `ray::TASK`)
                    # and its agents (`ray::DashboardAgent`, `ray::RuntimeEnvAgent`).
                    command = Path(f"/proc/{pid}/cmdline").read_bytes().rstrip(b"\0")
                    titled = command.startswith(b"ray::") and not command.endswith(b"Agent")
                    self._kinds[pid] = under_raylet and (titled or b"default_worker.py" in command)
                seen[pid] = _cpu_seconds(stat, self._kinds[pid])
                if self._kinds[pid]:
                    continue
                raylet = stat[stat.index("(") + 1 : stat.rindex(")")] == "raylet"
                for task in Path(f"/proc/{pid}/task").iterdir():
                    children = (task / "children").read_text().split()
                    pending += [(int(child), raylet) for child in children]
            except (OSError, ValueError):
                continue  # it ended meanwhile
        return seen

    @property
    def workers(self) -> int:
        """How many worker processes ran meanwhile."""
        return sum(1 for pid in self._last if self._kinds.get(pid) and pid not in self._first)

    def spent(self, workers: bool) -> float:
        """CPU seconds spent since `__enter__` by the workers, or by Ray's other processes."""
        return sum(
            last - self._first.get(pid, 0.0)
            for pid, last in self._last.items()
            if self._kinds.get(pid) == workers
        )


def _cpu_seconds(stat: str, worker: bool) -> float:
    """A process's CPU seconds from its `/proc/PID/stat`: utime and stime, and for a worker
    cutime and cstime too (its children, not visited, so not counted twice, are counted once
    it has waited for them)."""
    fields = stat[stat.rindex(")") + 2 :].split()
    used = fields[11:15] if worker else fields[11:13]
    return sum(int(ticks) for ticks in used) / TICKS


@dataclass(frozen=True)
class Process:
    """One finished process: wall time, CPU time and peak RSS of that process (from
    `os.wait4`), its output, and what the Ray head's processes spent meanwhile."""

    wall: float
    cpu: float
    rss: float
    """Bytes."""
    code: int
    stdout: str
    stderr: str
    workers_cpu: float = math.nan
    ray_cpu: float = math.nan
    workers: int = 0
    """How many Ray worker processes started meanwhile."""


def measured(
    argv: Sequence[str], cwd: Path, env: dict[str, str], head: RayHead | None = None
) -> Process:
    """Runs `argv` in a new session, with the CPU time of `head`'s processes sampled meanwhile
    (see `HeadCpu`); stdout and stderr go to files (a large report would fill a pipe nobody
    reads while `os.wait4` waits)."""
    cpu = HeadCpu(head.process.pid) if head is not None and head.process is not None else None
    with (
        tempfile.TemporaryFile("w+") as out,
        tempfile.TemporaryFile("w+") as err,
        cpu or contextlib.nullcontext(),
    ):
        start = time.perf_counter()
        child = subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            start_new_session=True,
        )
        deadline = start + TIMEOUT_S
        while True:
            pid, status, usage = os.wait4(child.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(child.pid, signal.SIGKILL)
                pid, status, usage = os.wait4(child.pid, 0)
                break
            time.sleep(0.005)
        wall = time.perf_counter() - start
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    return Process(
        wall,
        usage.ru_utime + usage.ru_stime,
        usage.ru_maxrss * 1024,
        child.returncode,
        stdout,
        stderr,
        cpu.spent(workers=True) if cpu else math.nan,
        cpu.spent(workers=False) if cpu else math.nan,
        cpu.workers if cpu else 0,
    )


def driver_environment(head: RayHead) -> dict[str, str]:
    """What every driver here runs with, mlc or bare Ray: no Ray or mlc settings of ours,
    the head's driver settings, compiled bytecode (see `bench_local.user_environment`) and the
    benchmark's IR cache."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("MLC_", "RAY_")) and k != "PYTHONDONTWRITEBYTECODE"
    }
    return env | head.driver_environ() | {"MLC_IR_CACHE": "1", "MLC_IR_CACHE_DIR": str(IR_CACHE)}


@dataclass(frozen=True)
class Applied:
    """One `mlc apply --format json`."""

    process: Process
    report: dict[str, object]
    ray_imported: bool
    compiled: bool
    """Whether the spec was compiled (not found in the IR cache)."""
    store: Path

    @property
    def wall(self) -> float:
        return self.process.wall

    @property
    def run(self) -> float:
        """The run's own duration, from the report."""
        return float(self.report["duration_s"])  # type: ignore[arg-type]


def mlc_apply(
    spec: Path, store: Path, target: str, env: dict[str, str], head: RayHead | None = None
) -> Applied:
    """Runs one `mlc apply --format json` (with the CPU of `head`'s processes meanwhile)."""
    process = measured(
        [
            sys.executable,
            "-c",
            WRAPPED_MLC,
            "apply",
            spec.name,
            "--target",
            target,
            "--store",
            str(store),
            "--format",
            "json",
        ],
        spec.parent,
        env,
        head,
    )
    try:
        report = json.loads(process.stdout)
    except json.JSONDecodeError:
        sys.exit(
            f"mlc apply {spec} --target {target} printed no report (exit {process.code}):\n"
            f"{process.stderr[-3000:]}"
        )
    return Applied(
        process,
        report,
        "MLC_RAY_IMPORTED=1" in process.stderr,
        "MLC_COMPILED=1" in process.stderr,
        store,
    )


def code_fingerprint() -> str:
    """mlc's code as its IR cache keys it (the size and mtime of every source file): an edit
    made while the benchmark runs shows here."""
    from mlc.cli import ir_cache

    return str(ir_cache.code_fingerprint.__wrapped__())


@functools.cache
def code_at_start() -> str:
    return code_fingerprint()


def code_files() -> dict[str, tuple[int, int]]:
    """mlc's source files (as the IR cache sees them) with their sizes and mtimes."""
    import mlc
    import mlc.backends

    found = {}
    for package in (*mlc.__path__, *mlc.backends.__path__):
        for directory, dirs, files in os.walk(package):
            dirs[:] = [d for d in dirs if d != "__pycache__"]
            for name in files:
                if name.endswith((".py", ".lark", ".json")):
                    path = os.path.join(directory, name)
                    st = os.stat(path)
                    found[os.path.relpath(path, REPO)] = (st.st_size, st.st_mtime_ns)
    return found


@functools.cache
def files_at_start() -> dict[str, tuple[int, int]]:
    return code_files()


NOT_IMPORTED_ON_RAY = ("backends/kubernetes/",)
"""Code a run on Ray never imports: edits there (another backend's work in progress) change
the IR cache's key, but not what is measured."""
WARM_STORES: dict[tuple[Path, str], tuple[Path, str]] = {}
"""For each spec and target, a store in which every step is cached (see `warm_ir_cache`), and
mlc's code as it was when the spec was compiled for that target."""
AGAIN = 3


def mlc_apply_compiled(
    spec: Path,
    store: Path,
    target: str,
    env: dict[str, str],
    head: RayHead | None = None,
    *,
    fresh_store: bool = True,
) -> Applied:
    """`mlc_apply` of a spec compiled before. When mlc's code is edited while the benchmark
    runs (someone works in the same checkout), the IR cache misses: the spec is compiled
    again by an all-cached apply in its warm-up store, and the measurement made again (in a
    new store, with `fresh_store`). A miss without an edit since the spec was compiled is left
    to `expect_all` to report."""
    applied = mlc_apply(spec, store, target, env, head)
    for again in range(1, AGAIN + 1):
        warm_store, compiled_with = WARM_STORES[(spec, target)]
        now = code_fingerprint()
        if not applied.compiled or now == compiled_with:
            return applied
        print(f"  (mlc's code was edited: {spec.name} compiled again, measured again)", flush=True)
        warm = mlc_apply(spec, warm_store, target, env)
        steps = len(warm.report.get("steps", []))  # type: ignore[arg-type]
        expect_all(warm, "cached", steps, f"{spec.name} re-warm on {target}", warm_up=True)
        WARM_STORES[(spec, target)] = (warm_store, now)
        where = store.with_name(f"{store.name}-again-{again}") if fresh_store else store
        applied = mlc_apply(spec, where, target, env, head)
    return applied


def expect_all(
    applied: Applied, status: str, steps: int, what: str, *, warm_up: bool = False
) -> Applied:
    """Exits unless the run succeeded and every one of its `steps` steps has `status`, and
    the spec came from the IR cache (every measured apply is of a spec compiled before; the
    warm-ups fill the cache)."""
    if applied.compiled and not warm_up:
        edited = code_fingerprint() != code_at_start()
        sys.exit(
            f"{what}: the spec was compiled again (the IR cache missed)"
            + ("; mlc's code was edited while the benchmark ran" if edited else "")
        )
    counts = statuses(applied.report)
    if applied.report.get("status") != "succeeded" or counts != {status: steps}:
        failed = [
            f"{step['name']}: {step.get('error')}"  # type: ignore[index]
            for step in applied.report.get("steps", [])  # type: ignore[attr-defined]
            if step["status"] == "failed"
        ][:3]
        sys.exit(
            f"{what}: expected {steps} steps {status}, the report says "
            f"{applied.report.get('status')} with {counts} {failed}"
        )
    return applied


def cpu_figures(process: Process) -> Figures:
    """The driver's CPU time and, when sampled, the head's processes'."""
    figures = {"cpu": process.cpu, "workers_cpu": process.workers_cpu, "ray_cpu": process.ray_cpu}
    if not math.isnan(process.workers_cpu):
        figures["workers"] = process.workers
    return {name: value for name, value in figures.items() if not math.isnan(value)}


def cpu_note(figures: Figures) -> str:
    note = f"CPU: driver {figures['cpu']:.2f}s"
    if "workers_cpu" in figures:
        note += (
            f", {figures['workers']:.0f} workers {figures['workers_cpu']:.2f}s, "
            f"Ray {figures['ray_cpu']:.2f}s"
        )
    return note


def bare_ray(
    args: Sequence[str], expected: int, env: dict[str, str], head: RayHead | None = None
) -> Figures:
    """Runs `ray_peer.py ARGS` once: its wall time, peak RSS, CPU (with `head`'s) and the
    figures it prints; exits unless every task ran."""
    process = measured([sys.executable, str(PEER), *args], ROOT, env, head)
    figures: Figures = {"wall": process.wall, "rss": process.rss, **cpu_figures(process)}
    for line in process.stdout.splitlines():
        if line.startswith("ray_peer: "):
            name, value = line.removeprefix("ray_peer: ").split("=", 1)
            figures[name] = float(value)
    if process.code != 0 or figures.get("ran") != expected:
        sys.exit(
            f"bare Ray ({' '.join(args)}) did not run its {expected} tasks: {figures}, exit "
            f"code {process.code}\n{process.stderr[-3000:]}"
        )
    return figures


def keep(figures: Figures, name: str, value: float) -> None:
    """Keeps the best of the repetitions, except for memory, where it keeps the largest."""
    if name.endswith("rss"):
        figures[name] = max(figures.get(name, 0.0), value)
    else:
        keep_best(figures, name, value)


CPU_FIGURES = ("cpu", "workers_cpu", "ray_cpu", "workers")
"""Where one repetition's time went: kept together, from the fastest repetition."""


def keep_repetition(side: Figures, figures: Figures) -> None:
    """Keeps one repetition's figures: each the best so far (`keep`), except the CPU figures,
    which are replaced together when this repetition is the fastest so far (its wall time)."""
    fastest = "wall" not in side or figures["wall"] < side["wall"]
    for name, value in figures.items():
        if name not in CPU_FIGURES:
            keep(side, name, value)
        elif fastest:
            side[name] = value


def in_turn(attempt: int) -> tuple[str, str]:
    """Which goes first in this repetition."""
    return ("mlc", "bare") if attempt % 2 == 0 else ("bare", "mlc")


def warm_ir_cache(spec: Path, store: Path, steps: int, env: dict[str, str]) -> None:
    """Fills the IR cache for the Ray target without running on Ray: a run on the local
    backend fills the store, then the Ray target's apply finds every step cached."""
    for target, status in (("local_run", "ran"), ("ray", "cached")):
        code = code_fingerprint()  # before: an edit during the apply must show as one
        applied = mlc_apply(spec, store, target, env)
        expect_all(applied, status, steps, f"{spec.name} warm-up on {target}", warm_up=True)
        WARM_STORES[(spec, target)] = (store, code)


@dataclass
class Pair:
    """mlc against bare Ray on one DAG."""

    name: str
    units: int
    """Steps (or links, or items) the DAG has."""
    mlc: Figures = field(default_factory=dict)
    """`wall`, `run`, `rss` and CPU times (`cpu`, the driver's; `workers_cpu` and `ray_cpu`,
    the head's processes', when sampled)."""
    bare: Figures = field(default_factory=dict)
    """`wall`, `rss`, CPU times and what `ray_peer.py` prints (`total_s`, `init_s`, …)."""


SETTLE_SECONDS = 60.0
"""How long the benchmark waits for file creation to be cheap again after the warm-ups."""
SETTLED_MICROSECONDS = 80.0
"""File creation at most this dear (CPU per file) counts as settled (25-40 µs when nothing
was deleted nearby; up to 1,000 right after a large deletion)."""


def create_cost(directory: Path, files: int = 20) -> float:
    """The CPU time, in microseconds, of creating (and removing) one empty file in
    `directory`: the cost every mlc step pays a few times over (see the module docstring)."""
    directory.mkdir(parents=True, exist_ok=True)
    started = time.process_time()
    for index in range(files):
        probe = directory / f".create-probe-{index}"
        probe.touch()
        probe.unlink()
    return (time.process_time() - started) / files * 1e6


def settle_filesystem(directory: Path) -> None:
    """Waits (at most `SETTLE_SECONDS`) until creating a file in `directory` is cheap again
    after the warm-ups' deletions, saying how long that took."""
    started = time.monotonic()
    first = cost = create_cost(directory)
    while cost > SETTLED_MICROSECONDS and time.monotonic() - started < SETTLE_SECONDS:
        time.sleep(1.0)
        cost = create_cost(directory)
    if first > SETTLED_MICROSECONDS:
        print(
            f"  (creating a file cost {first:.0f} µs after the warm-ups; "
            f"{cost:.0f} µs after waiting {time.monotonic() - started:.0f}s)",
            flush=True,
        )


def compare(
    pair: Pair,
    repeat: int,
    apply: Callable[[int], Applied],
    bare: Callable[[], Figures],
    more: Callable[[Applied], Figures] | None = None,
    *,
    stores: Path,
) -> Pair:
    """`repeat` repetitions of mlc's run and bare Ray's, taking turns to go first (`more`:
    figures of mlc's run beyond the process's and the report's), once creating a file in
    `stores` is cheap (`settle_filesystem`)."""
    settle_filesystem(stores)
    for attempt in range(repeat):
        for who in in_turn(attempt):
            if who == "mlc":
                create = create_cost(stores)
                applied = apply(attempt)
                figures = {
                    "wall": applied.wall,
                    "run": applied.run,
                    "rss": applied.process.rss,
                    **cpu_figures(applied.process),
                    **(more(applied) if more is not None else {}),
                }
                keep_repetition(pair.mlc, figures)
                print(
                    f"  {pair.name}: mlc {applied.wall:.2f}s (run {applied.run:.2f}s, "
                    f"{applied.process.rss / MIB:.0f} MiB; {cpu_note(figures)}) (load {load()}, "
                    f"create {create:.0f} µs)",
                    flush=True,
                )
            else:
                figures = bare()
                keep_repetition(pair.bare, figures)
                print(
                    f"  {pair.name}: bare Ray {figures['wall']:.2f}s (import ray "
                    f"{figures['import_s']:.2f}s, ray.init "
                    f"{figures['init_s']:.2f}s, tasks {figures['dag_s']:.2f}s, total "
                    f"{figures['total_s']:.2f}s, {figures['rss'] / MIB:.0f} MiB; "
                    f"{cpu_note(figures)}) (load {load()})",
                    flush=True,
                )
    return pair


def bench_fanout(
    work: Path, stores: Path, steps: int, repeat: int, head: RayHead, env: dict[str, str]
) -> list[Pair]:
    pairs = []
    for kind in ("run", "call"):
        spec = work / "sched" / f"{kind}.mlspec"
        warm_ir_cache(spec, stores / f"{kind}-warm-up", steps, env)
        bare_ray(["fanout", kind, str(steps), head.address], steps, env)  # warm-up

        def apply(attempt: int, spec: Path = spec, kind: str = kind) -> Applied:
            applied = mlc_apply_compiled(spec, stores / f"{kind}-{attempt}", "ray", env, head)
            return expect_all(applied, "ran", steps, f"{kind} fan-out, repetition {attempt + 1}")

        def bare(kind: str = kind) -> Figures:
            return bare_ray(["fanout", kind, str(steps), head.address], steps, env, head)

        pair = Pair(f"{steps} `{kind}` steps, fan-out/fan-in", steps)
        pairs.append(compare(pair, repeat, apply, bare, stores=stores))
    return pairs


def bench_chain(
    work: Path, stores: Path, links: int, repeat: int, head: RayHead, env: dict[str, str]
) -> Pair:
    spec = work / "chain" / "chain.mlspec"
    warm_ir_cache(spec, stores / "chain-warm-up", links, env)
    bare_ray(["chain", str(links), head.address], links, env)  # warm-up

    def apply(attempt: int) -> Applied:
        applied = mlc_apply_compiled(spec, stores / f"chain-{attempt}", "ray", env, head)
        return expect_all(applied, "ran", links, f"chain, repetition {attempt + 1}")

    def bare() -> Figures:
        return bare_ray(["chain", str(links), head.address], links, env, head)

    pair = Pair(f"{links}-link chain of `call` steps", links)
    return compare(
        pair, repeat, apply, bare, lambda applied: {"span_s": chain_span(applied)}, stores=stores
    )


def chain_span(applied: Applied) -> float:
    """Seconds from the chain's first link's end to its last one's, as mlc's coordinator saw
    them (the end times its lineage records)."""
    from mlc.store import open_store
    from mlc.store.lineage import open_lineage

    lineage = open_lineage(open_store(str(applied.store)))
    try:
        ends = [step.ended_at or 0.0 for step in lineage.steps_of(str(applied.report["run_id"]))]
    finally:
        lineage.close()
    return max(ends) - min(ends)


def bench_startup(work: Path, stores: Path, repeat: int, env: dict[str, str]) -> Pair:
    """The one-step spec on `ray_local`: mlc starts (and stops) a Ray of its own."""
    spec = work / "startup" / "startup.mlspec"
    warm_ir_cache(spec, stores / "startup-warm-up", 1, env)
    code = code_fingerprint()
    again = mlc_apply(spec, stores / "startup-warm-up", "ray_local", env)  # its IR cache entry
    expect_all(again, "cached", 1, "start-up warm-up", warm_up=True)
    WARM_STORES[(spec, "ray_local")] = (stores / "startup-warm-up", code)

    def apply(attempt: int) -> Applied:
        applied = mlc_apply_compiled(spec, stores / f"startup-{attempt}", "ray_local", env)
        return expect_all(applied, "ran", 1, f"start-up, repetition {attempt + 1}")

    def bare() -> Figures:
        return bare_ray(["startup"], 1, env)

    pair = Pair("1-step pipeline, no address (a Ray started for the run)", 1)
    return compare(pair, repeat, apply, bare, stores=stores)


@dataclass
class Cached:
    """An all-cached re-apply on the Ray target against the same on the local backend."""

    name: str
    ray: Figures = field(default_factory=dict)
    """`wall` (best) and `imported` (1 if any repetition imported Ray)."""
    local: Figures = field(default_factory=dict)


def bench_cached(
    cases: Sequence[tuple[str, Path, Path, str, int]], repeat: int, env: dict[str, str]
) -> list[Cached]:
    """For each case (name, spec, a store a Ray run filled, the Ray target, steps): re-applies
    on the Ray target and on `local_run`, each going first in alternate repetitions."""
    results = []
    for name, spec, store, target, steps in cases:
        result = Cached(name)
        for attempt in range(repeat):
            order = (target, "local_run") if attempt % 2 == 0 else ("local_run", target)
            for on in order:
                applied = mlc_apply_compiled(spec, store, on, env, fresh_store=False)
                expect_all(applied, "cached", steps, f"{name}, re-applied on {on}")
                figures = result.ray if on == target else result.local
                keep_best(figures, "wall", applied.wall)
                figures["imported"] = max(figures.get("imported", 0.0), float(applied.ray_imported))
                print(
                    f"  {name}: re-apply on `{on}` {applied.wall:.3f}s, Ray imported: "
                    f"{'yes' if applied.ray_imported else 'no'} (load {load()})",
                    flush=True,
                )
        results.append(result)
    return results


@dataclass
class Memory:
    """Driver peak RSS: a wide `foreach` on Ray against an idle driver."""

    items: int
    foreach: Figures = field(default_factory=dict)
    """`rss` (largest), `wall`, `run` (best)."""
    idle: Figures = field(default_factory=dict)


def bench_memory(work: Path, stores: Path, items: int, repeat: int, env: dict[str, str]) -> Memory:
    foreach = work / "foreach" / "foreach.mlspec"
    idle = work / "startup" / "startup.mlspec"
    warm_ir_cache(foreach, stores / "foreach-warm-up", items, env)
    warm_ir_cache(idle, stores / "idle-warm-up", 1, env)
    result = Memory(items)
    for attempt in range(repeat):
        for who in in_turn(attempt):
            if who == "mlc":
                applied = mlc_apply_compiled(foreach, stores / f"foreach-{attempt}", "ray", env)
                what = f"the foreach, repetition {attempt + 1}"
                expect_all(applied, "ran", items, what)
                figures, name = result.foreach, f"foreach of {items}"
            else:
                applied = mlc_apply_compiled(idle, stores / f"idle-{attempt}", "ray", env)
                expect_all(applied, "ran", 1, f"the idle driver, repetition {attempt + 1}")
                figures, name = result.idle, "idle driver (1 step)"
            keep(figures, "rss", applied.process.rss)
            keep(figures, "wall", applied.wall)
            keep(figures, "run", applied.run)
            print(
                f"  {name}: {applied.process.rss / MIB:.0f} MiB, {applied.wall:.2f}s "
                f"(run {applied.run:.2f}s) (load {load()})",
                flush=True,
            )
    return result


def seconds(value: float) -> str:
    return f"{value:.2f} s"


def pair_rows(pair: Pair, most_ms: float, per: str, peer: str, *, judged: bool = True) -> list[Row]:
    """Wall, the run alone, and the time added per step (or link) on each; judged against
    `most_ms` unless not `judged` (start-up included, see `chain_rows`)."""
    mlc, bare, units = pair.mlc, pair.bare, pair.units
    added_wall = (mlc["wall"] - bare["wall"]) / units * 1000
    added_run = (mlc["run"] - bare["total_s"]) / units * 1000
    target = f"≤ {most_ms:.0f} ms" if judged else ""

    def verdict_if(met: bool) -> str:
        return verdict(met) if judged else ""

    return [
        Row(
            f"{pair.name}: wall (`mlc apply`, spec compiled)",
            "s",
            {"mlc": mlc["wall"]},
            f"{seconds(bare['wall'])} (the whole bare script: Python, `import ray`, "
            f"`ray.init`, {peer})",
            ratio(mlc["wall"], bare["wall"]),
        ),
        Row(
            f"{pair.name}: the run alone (report's `duration_s`, joining the cluster included)",
            "s",
            {"mlc": mlc["run"]},
            f"{seconds(bare['total_s'])} (`import ray` {seconds(bare['import_s'])} + "
            f"`ray.init` {seconds(bare['init_s'])} + tasks "
            f"{seconds(bare['dag_s'])} + `ray.shutdown`)",
            ratio(mlc["run"], bare["total_s"]),
        ),
        Row(
            f"{pair.name}: added per {per}, wall: (mlc - bare) / {units}",
            "ms",
            {"mlc": added_wall},
            target=target,
            result=verdict_if(added_wall <= most_ms),
        ),
        Row(
            f"{pair.name}: added per {per}, the run alone: (mlc - bare) / {units}",
            "ms",
            {"mlc": added_run},
            target=target,
            result=verdict_if(added_run <= most_ms),
        ),
        *cpu_rows(pair, per),
    ]


def chain_rows(pair: Pair, most_ms: float, peer: str) -> list[Row]:
    """The chain's target is judged on the links alone: from the first link's end to the last
    one's on each side, which leaves out what a run costs once (starting Python, joining the
    cluster, a new job's first Ray worker), bounded by the start-up target of its own. The
    whole runs are shown too."""
    links = pair.units
    mlc, bare = pair.mlc["span_s"], pair.bare["span_s"]
    added = (mlc - bare) / (links - 1) * 1000
    return [
        Row(
            f"{pair.name}: from the first link's end to the last one's",
            "s",
            {"mlc": mlc},
            f"{seconds(bare)} (bare Ray, as its driver sees them)",
            ratio(mlc, bare),
        ),
        Row(
            f"{pair.name}: added per link, first end to last: (mlc - bare) / {links - 1}",
            "ms",
            {"mlc": added},
            target=f"≤ {most_ms:.0f} ms",
            result=verdict(added <= most_ms),
        ),
        *pair_rows(pair, most_ms, "link", peer, judged=False),
    ]


CPU_PARTS = (
    ("cpu", "the driver"),
    ("workers_cpu", "Ray's workers (the tasks)"),
    ("ray_cpu", "Ray's own processes (GCS, raylet, agents)"),
)


def cpu_rows(pair: Pair, per: str) -> list[Row]:
    """Where the time goes: the CPU time of each side's processes (2 cores for all of them),
    and the difference per step."""
    rows = []
    for key, label in CPU_PARTS:
        if key not in pair.mlc or key not in pair.bare:
            continue
        mlc, bare = pair.mlc[key], pair.bare[key]
        rows.append(
            Row(
                f"{pair.name}: CPU time of {label}",
                "s",
                {"mlc": mlc},
                f"{seconds(bare)} (bare Ray)",
                f"{(mlc - bare) / pair.units * 1000:+.2f} ms per {per}",
            )
        )
    return rows


def startup_rows(pair: Pair) -> list[Row]:
    mlc, bare = pair.mlc, pair.bare
    most = bare["wall"] + STARTUP_SLACK_S
    return [
        Row(
            f"{pair.name}: wall",
            "s",
            {"mlc": mlc["wall"]},
            f'{seconds(bare["wall"])} (bare script: `ray.init(address="local")` '
            f"{seconds(bare['init_s'])}, one task, `ray.shutdown`)",
            ratio(mlc["wall"], bare["wall"]),
            f"≤ bare + {STARTUP_SLACK_S:.0f} s = {seconds(most)}",
            verdict(mlc["wall"] <= most),
        ),
        Row(
            f"{pair.name}: the run alone (Ray's start and stop included)",
            "s",
            {"mlc": mlc["run"]},
            f"{seconds(bare['total_s'])} (`import ray` + `ray.init` + task + `ray.shutdown`)",
            ratio(mlc["run"], bare["total_s"]),
        ),
    ]


def cached_rows(result: Cached) -> list[Row]:
    ray, local = result.ray["wall"], result.local["wall"]
    imported = result.ray["imported"]
    return [
        Row(
            f"{result.name}: re-apply, all cached, on Ray",
            "s",
            {"mlc": ray},
            f"{seconds(local)} (the same on the local backend)",
            f"{(ray - local) * 1000:+.0f} ms",
            f"≤ local + {CACHED_SLACK_S:.1f} s; Ray not imported",
            f"{verdict(ray <= local + CACHED_SLACK_S)}; {verdict(imported == 0)}",
        ),
    ]


def memory_rows(result: Memory, fanout: Sequence[Pair]) -> list[Row]:
    name = f"{result.items:,}-item `foreach` of `call` no-ops on Ray"
    rss, idle = result.foreach["rss"] / MIB, result.idle["rss"] / MIB
    rows = [
        Row(
            f"{name}: driver peak RSS",
            "MiB",
            {"mlc": rss},
            f"{idle:.0f} MiB (idle driver: a 1-step pipeline on Ray)",
            f"+{rss - idle:.0f} MiB",
            f"≤ idle + {MEMORY_SLACK_MIB:.0f} MiB",
            verdict(rss - idle <= MEMORY_SLACK_MIB),
        ),
        Row(f"{name}: wall (spec compiled)", "s", {"mlc": result.foreach["wall"]}),
        Row(
            f"{name}: the run alone, per item",
            "ms",
            {"mlc": result.foreach["run"] / result.items * 1000},
        ),
    ]
    rows += [
        Row(
            f"{pair.name}: driver peak RSS",
            "MiB",
            {"mlc": pair.mlc["rss"] / MIB},
            f"{pair.bare['rss'] / MIB:.0f} MiB (the bare Ray driver)",
            ratio(pair.mlc["rss"], pair.bare["rss"]),
        )
        for pair in fanout
    ]
    return rows


READING = """\
Reading the figures: every measured `mlc apply` and every bare-Ray script is a new process
joining the same single-node cluster (one `ray start --head` with 2 CPUs on loopback, started
by the benchmark), so each is a new Ray job that gets Ray worker processes of its own; both
sides pay that alike. The wall figures include starting Python, `import ray` and `ray.init`;
"the run alone" is mlc's report (`duration_s`, which includes importing Ray, joining and
leaving the cluster, since mlc does that when the first step must run) against the bare
script's `import ray` + `ray.init` + tasks + `ray.shutdown`, timed inside it. Each mlc step is
one Ray task running mlc's step runtime (the attempt directory, the step, its outputs and log
into the store, the cache entry), and the driver decides each step (cache key, gates, lineage)
before submitting it; bare Ray's task only returns its name (or starts `true`). Every step has
a cache key of its own, and every report is checked: the runs ran every step, the re-applies
found every step cached. The all-cached re-applies run the same spec against the same store on
the Ray target and on the local backend; the Ray one must not import Ray (the benchmark checks
it in the process). The CPU rows say on which side the added time is spent: the driver
(`os.wait4`), Ray's worker processes, which run the tasks (with the commands they start), and
Ray's own processes (GCS, raylet, agents), the last two read from `/proc` while each driver
runs, on a machine of 2 cores that all of them share. Peak RSS is that of the `mlc apply`
process alone (`os.wait4`); the Ray workers running the steps are not counted. Times are the
best of the repetitions, peak RSS the largest; the CPU times all come from each side's fastest
repetition (the best of each taken apart could come from different runs, and would not add
up).
"""


def versions() -> str:
    mlc = output_of(sys.executable, "-m", "mlc", "--version").split()
    ray = output_of(sys.executable, "-c", "import ray; print(ray.__version__)")
    return f"mlc {mlc[-1] if mlc else '?'}, Ray {ray or '?'}, Python {platform.python_version()}"


def write_docs(text: str, argv: list[str]) -> None:
    """Replaces (or appends) the `## Ray backend` section of `docs/benchmarks.md`."""
    command = "python bench/bench_ray.py " + " ".join(argv)
    body = (
        f"Measured {dt.date.today().isoformat()} on {machine()}; {versions()}; with "
        f"`{command.strip()}` (best of the repetitions; see the docstring of "
        "`bench/bench_ray.py` for what each figure is).\n\n" + text + "\n\n" + READING
    )
    write_section(DOCS, SECTION, body)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100 steps, 20 links, 1,000 items")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-fanout", action="store_true")
    parser.add_argument("--skip-chain", action="store_true")
    parser.add_argument("--skip-startup", action="store_true")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args()
    if args.quick:
        work, steps, links, items = ROOT / ".work" / "ray-quick", 100, 20, 1000
    else:
        work, steps, links, items = ROOT / ".work" / "ray", 1000, 100, 10_000
    began = time.perf_counter()
    compile_mlc(CURRENT)
    code_at_start()
    files_at_start()
    # The head's Ray workers inherit this environment: they too run from compiled bytecode.
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    print(f"{machine()}\n{versions()}\nload {load()}", flush=True)
    head = RayHead()
    # Every run gets a new store, and none is removed before the end (see `bench_local`).
    stores = work / "stores" / f"ray-{os.getpid()}"
    rows: list[Row] = []
    try:
        head.start()
        print(f"Ray head at {head.address} ({time.perf_counter() - began:.1f}s)", flush=True)
        env = driver_environment(head)
        generate(work, steps, links, items, head.address)
        fanout: list[Pair] = []
        cases: list[tuple[str, Path, Path, str, int]] = []
        if not args.skip_fanout:
            fanout = bench_fanout(work, stores, steps, args.repeat, head, env)
            for pair in fanout:
                rows += pair_rows(pair, ADDED_PER_STEP_MS, "step", f"{steps} tasks")
            call = work / "sched" / "call.mlspec"
            cases.append(
                (f"{steps} `call` steps, joined cluster", call, stores / "call-0", "ray", steps)
            )
        if not args.skip_chain:
            chain = bench_chain(work, stores, links, args.repeat, head, env)
            rows += chain_rows(chain, ADDED_PER_LINK_MS, f"{links} chained tasks")
        if not args.skip_startup:
            startup = bench_startup(work, stores, args.repeat, env)
            rows += startup_rows(startup)
            spec = work / "startup" / "startup.mlspec"
            cases.insert(
                0, ("1-step pipeline, no address", spec, stores / "startup-0", "ray_local", 1)
            )
        for result in bench_cached(cases, args.repeat, env):
            rows += cached_rows(result)
        if not args.skip_memory:
            rows += memory_rows(bench_memory(work, stores, items, args.repeat, env), fanout)
    finally:
        head.stop()
        shutil.rmtree(stores, ignore_errors=True)
    text = render(rows, ["mlc"])
    text += (
        f"\n\nLoad average (1, 5, 15 min) at the end: {load()}. The whole benchmark took "
        f"{(time.perf_counter() - began) / 60:.1f} min."
    )
    now = code_files()
    edited = sorted(p for p in {*now, *files_at_start()} if now.get(p) != files_at_start().get(p))
    measured_code = [p for p in edited if not p.startswith(NOT_IMPORTED_ON_RAY)]
    if measured_code:
        text += (
            " **mlc's code was edited while the benchmark ran: the figures may mix versions** "
            f"({', '.join(measured_code[:5])})."
        )
    elif edited:
        text += (
            f" Code a Ray run does not import ({', '.join(NOT_IMPORTED_ON_RAY)}) was edited while "
            "the benchmark ran; specs whose IR cache entry it invalidated were compiled again "
            "and measured again."
        )
    print("\n" + text)
    if args.write_docs:
        write_docs(text, sys.argv[1:])


if __name__ == "__main__":
    main()
