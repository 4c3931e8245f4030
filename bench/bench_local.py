"""Benchmark of the local backend against its targets, side by side with peers and, with
`--baseline REV`, with mlc as of an earlier git revision.

Run: `.venv/bin/python bench/bench_local.py [--quick] [--repeat 3] [--baseline REV]
[--no-prefect] [--no-dvc] [--skip-sched] [--skip-foreach] [--skip-reapply] [--write-docs]`

Data and specs come from `bench/gen_local.py` (under `bench/.work/local/`, or
`bench/.work/local-quick/` with `--quick`: 100 steps, 100 directories of 10 x 10 KB).

1. Scheduling: 1,000 no-op steps in a fan-out/fan-in DAG (1 source, 998 parallel, 1 sink),
   once as `run` steps (`true NAME`) and once as `call` steps (a Python no-op passed NAME).
   Each step names itself in its command, so every step has a cache key of its own. Each
   repetition measures, for each kind:
   - "wall": the whole `mlc apply` process (interpreter start-up, compiling the spec with the
     IR cache off, the store, the run) into a new store; its JSON report must say that every
     step `ran`;
   - "wall, spec compiled before (IR cache)": the same into another new store, with the IR
     cache holding the compiled spec (filled by one apply before the repetitions): a first run
     of a spec compiled before; every step must have `ran`;
   - "re-apply, all cached": `mlc apply` again into that second store, nothing changed; every
     step must be `cached`;
   - "the run alone": the run's own duration from the report (from its first decision to its
     last lineage write), of either run that ran every step;
   - the bare pool: a `concurrent.futures.ProcessPoolExecutor` of 2 workers running the same
     DAG (`subprocess.run(["true", NAME])` for `run`, the no-op function for `call`), pool
     start-up included;
   - Prefect, the peer a user would otherwise pick for local pipelines: the same DAG as a
     Prefect 3 flow of one task per step (`bench/prefect_flow.py`), on Prefect's default local
     setup: its default task runner (threads) and the ephemeral API server started by the
     first client, with `PREFECT_HOME` in `bench/.work/prefect-home` (made anew and warmed up
     by a 3-task flow before the repetitions). Two figures: the wall time of the whole
     `python prefect_flow.py` process, and the flow alone, measured inside the script (from
     the call that creates the flow run to its return, the API server already started). The
     script's output must count every task completed and run. Prefect comes from PyPI into
     `bench/.envs/prefect`, made on first use by `bench/peers.py`.
   "Added per step" is (the run alone - the pool) / steps. Stores are kept until every run is
   done (see `bench_sched`).
2. A wide `foreach`: one `call` step over a list param of 10,000 numbers (1,000 with
   `--quick`), each item a Python no-op: `mlc apply` into a new store (the spec compiled
   before), then again with every item cached (the reports must say so). Per item, the run
   should cost what a step costs in (1); no peer runs it.
3. No-op re-apply: 1,000 steps over 10,000 files of 100 KB (1 GB, 1,000 directory datasets,
   `version = latest` resolved by `mlc.lock`), everything cached (the compiled IR too):
   `mlc apply` with a counter of files whose content the store read and hashed (must be 0 in
   every repetition), against `dvc status` on the same files and the equivalent `dvc.yaml`
   (1,000 stages; DVC from PyPI in `bench/.envs/dvc`, made on first use by `bench/peers.py`;
   the DVC project is populated once by running the stage commands and `dvc commit`), in the
   same repetitions.

With `--baseline REV` every mlc figure is also measured with mlc as of git revision REV (a
worktree and a virtual environment of its own, made by `bench/baseline.py`), in the same
repetitions, the two taking turns to go first, so that the machine's load weighs on both
alike; the table shows the baseline next to each mlc figure, with the change in percent.

mlc runs as installed: its modules are compiled to bytecode first, and every mlc process
(workers included) runs without `PYTHONDONTWRITEBYTECODE`, which would make each of them
compile mlc from source at start-up. Its IR cache lives in `bench/.work/ir-cache`.

Targets: the whole `mlc apply` of the 1,000 scheduling steps <= 2 s; the run alone adds
<= 1 ms per `call` step and <= 2 ms per `run` step to the pool's time; the no-op re-apply
<= 2 s, 0 files hashed, faster than `dvc status`. Figures are the best of `--repeat` runs (the
machine may be shared); the load average is printed next to them. With `--write-docs` the
results replace the `## Local backend` section of `docs/benchmarks.md`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from baseline import baseline
from docs_section import write_section
from gen_local import generate
from peers import peer_bin

ROOT = Path(__file__).resolve().parent
REPO = ROOT.parent
DOCS = REPO / "docs" / "benchmarks.md"
SECTION = "## Local backend"
DVC = ROOT / ".envs" / "dvc" / "bin" / "dvc"  # made by `peer_bin("dvc")` unless --no-dvc
PREFECT = ROOT / ".envs" / "prefect" / "bin" / "python"  # made by `peer_bin("prefect", ...)`
PREFECT_PACKAGE = "prefect>=3,<4"
PREFECT_FLOW = ROOT / "prefect_flow.py"
PREFECT_HOME = ROOT / ".work" / "prefect-home"
IR_CACHE = ROOT / ".work" / "ir-cache"
POOL_WORKERS = 2

# Runs the mlc CLI in this interpreter and prints, at exit, how many files the stores it
# opened read and hashed (the store's own counter).
COUNTING_MLC = r"""
import atexit, sys
from mlc.store import local
opened = []
original = local.LocalStore.__init__
def tracking(self, *args, **kwargs):
    original(self, *args, **kwargs)
    opened.append(self)
local.LocalStore.__init__ = tracking
atexit.register(lambda: print(
    f"MLC_HASHED_FILES={sum(s.hashed_files for s in opened)}", file=sys.stderr))
from mlc.cli.main import entry
sys.argv = ["mlc", *sys.argv[1:]]
entry()
"""


@dataclass(frozen=True)
class Mlc:
    """One mlc to measure: the current checkout (in `.venv`) or a baseline revision."""

    label: str
    """`mlc` for the current one, the short commit id for a baseline."""
    python: Path
    source: Path
    """The checkout whose `compiler/` and `backends/` it runs."""


CURRENT = Mlc("mlc", Path(sys.executable), REPO)

Figures = dict[str, float]
"""Figures by name, each the best (smallest) of the repetitions unless said otherwise."""


def keep_best(figures: Figures, name: str, value: float) -> None:
    figures[name] = min(figures.get(name, math.inf), value)


def user_environment(**extra: str) -> dict[str, str]:
    """The environment mlc runs in here: a user's, whose Python reads (and writes) compiled
    bytecode. With `PYTHONDONTWRITEBYTECODE` set, as in some shells and CI images, every
    process, the workers included, would compile mlc's modules from source at each start."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    return env | extra


def compile_mlc(mlc: Mlc) -> None:
    """Compiles mlc's modules to bytecode once, as installing a package does."""
    sources = [str(mlc.source / "compiler"), str(mlc.source / "backends")]
    subprocess.run([str(mlc.python), "-m", "compileall", "-q", *sources], check=True)


def in_turn(mlcs: Sequence[Mlc], attempt: int) -> list[Mlc]:
    """The mlcs in the order they run in this repetition: each goes first in turn."""
    shift = attempt % len(mlcs)
    return [*mlcs[shift:], *mlcs[:shift]]


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def machine() -> str:
    model = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    memory = "?"
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal"):
            memory = f"{int(line.split()[1]) / 2**20:.0f} GiB"
    return (
        f"{os.cpu_count()} CPUs ({model}), {memory} RAM, {platform.system()} {platform.release()}"
    )


def output_of(*command: str) -> str:
    return subprocess.run(command, capture_output=True, text=True, check=False).stdout.strip()


def prefect_version() -> str:
    if not PREFECT.exists():
        return "not installed"
    return output_of(
        str(PREFECT), "-c", "from importlib.metadata import version; print(version('prefect'))"
    )


def versions(mlcs: Sequence[Mlc]) -> str:
    mlc = output_of(sys.executable, "-m", "mlc", "--version").split()
    parts = [f"mlc {mlc[-1] if mlc else '?'}"]
    parts += [f"baseline mlc as of {other.label}" for other in mlcs if other is not CURRENT]
    parts.append(f"DVC {output_of(str(DVC), '--version') if DVC.exists() else 'not installed'}")
    parts.append(f"Prefect {prefect_version()}")
    return ", ".join(parts) + f", Python {platform.python_version()}"


@dataclass(frozen=True)
class Applied:
    """One `mlc apply`: its wall time, JSON report and the count of files its stores hashed."""

    wall: float
    report: dict[str, object]
    hashed: int

    @property
    def run(self) -> float:
        """The run's own duration, from the report."""
        return float(self.report["duration_s"])  # type: ignore[arg-type]


def mlc_environment(ir_cache: bool = True) -> dict[str, str]:
    return user_environment(MLC_IR_CACHE="1" if ir_cache else "0", MLC_IR_CACHE_DIR=str(IR_CACHE))


def mlc_apply(mlc: Mlc, spec: Path, store: Path, *extra: str, ir_cache: bool = True) -> Applied:
    """Runs one `mlc apply --format json` and reads its report."""
    start = time.perf_counter()
    done = subprocess.run(
        [
            str(mlc.python),
            "-c",
            COUNTING_MLC,
            "apply",
            spec.name,
            "--store",
            str(store),
            "--format",
            "json",
            *extra,
        ],
        cwd=spec.parent,
        capture_output=True,
        text=True,
        check=False,
        env=mlc_environment(ir_cache),
    )
    elapsed = time.perf_counter() - start
    try:
        report = json.loads(done.stdout)
    except json.JSONDecodeError:
        sys.exit(f"{mlc.label} apply {spec} printed no report:\n{done.stderr[-2000:]}")
    hashed = -1
    for line in done.stderr.splitlines():
        if line.startswith("MLC_HASHED_FILES="):
            hashed = int(line.split("=", 1)[1])
    return Applied(elapsed, report, hashed)


def statuses(report: dict[str, object]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for step in report.get("steps", []):  # type: ignore[attr-defined]
        counts[step["status"]] = counts.get(step["status"], 0) + 1
    return counts


def expect_all(applied: Applied, status: str, steps: int, what: str) -> Applied:
    """Exits unless the run succeeded and every one of its `steps` steps has `status` (`ran`
    or `cached`): a figure that says it runs steps must not be made of cache hits, and one
    that says all cached must not have run anything."""
    counts = statuses(applied.report)
    if applied.report.get("status") != "succeeded" or counts != {status: steps}:
        sys.exit(
            f"{what}: expected {steps} steps {status}, the report says "
            f"{applied.report.get('status')} with {counts}"
        )
    return applied


def noop_pool(kind: str, steps: int, sched: Path) -> float:
    """The same fan-out/fan-in DAG on a bare ProcessPoolExecutor of 2 workers."""
    names = ["src", *(f"m{index:04d}" for index in range(steps - 2)), "sink"]
    sys.path.insert(0, str(sched))
    noop = importlib.import_module("noop")  # the steps' function, from `sched/noop.py`
    start = time.perf_counter()
    with ProcessPoolExecutor(POOL_WORKERS) as pool:

        def submit(name: str) -> Future[object]:
            if kind == "run":
                return pool.submit(subprocess.run, ["true", name])
            return pool.submit(noop.noop, name)

        submit(names[0]).result()
        for future in [submit(name) for name in names[1:-1]]:
            future.result()
        submit(names[-1]).result()
    return time.perf_counter() - start


def prefect_environment() -> dict[str, str]:
    """A new user's Prefect settings (none of ours leak in), its home inside `bench/.work`."""
    env = {k: v for k, v in user_environment().items() if not k.startswith("PREFECT_")}
    return env | {"PREFECT_HOME": str(PREFECT_HOME)}


def prefect_flow(kind: str, tasks: int) -> Figures:
    """Runs `prefect_flow.py` once: its wall time and the figures it prints (see its
    docstring); exits unless it completed and ran every task."""
    start = time.perf_counter()
    done = subprocess.run(
        [str(PREFECT), str(PREFECT_FLOW), kind, str(tasks)],
        cwd=PREFECT_HOME,
        capture_output=True,
        text=True,
        check=False,
        env=prefect_environment(),
    )
    figures = {"wall": time.perf_counter() - start}
    for line in done.stdout.splitlines():
        if line.startswith("prefect_flow: "):
            name, value = line.removeprefix("prefect_flow: ").split("=", 1)
            figures[name] = float(value)
    if done.returncode != 0 or figures.get("completed") != tasks or figures.get("ran") != tasks:
        sys.exit(
            f"the Prefect flow ({kind}, {tasks} tasks) did not complete every task: {figures}, "
            f"exit code {done.returncode}\n{done.stderr[-2000:]}"
        )
    return figures


def prepare_prefect() -> None:
    """A new `PREFECT_HOME`, its database made by one small flow (not measured)."""
    shutil.rmtree(PREFECT_HOME, ignore_errors=True)
    PREFECT_HOME.mkdir(parents=True)
    figures = prefect_flow("call", 3)
    print(f"  Prefect warm-up (a 3-task flow): {figures['wall']:.2f}s", flush=True)


@dataclass
class SchedResult:
    """The scheduling figures of one kind of step (`run` or `call`)."""

    kind: str
    mlc: dict[str, Figures]
    """By mlc label: `wall`, `ir_cache`, `cached` and `run` (see the module docstring)."""
    pool: float = math.inf
    prefect: Figures = field(default_factory=dict)
    """`wall` and what `prefect_flow.py` prints (`flow_s`, `server_s`, …); empty when Prefect
    was not run."""


def bench_sched(
    work: Path,
    steps: int,
    repeat: int,
    mlcs: Sequence[Mlc],
    with_prefect: bool,
    store_dir: Path | None = None,
) -> list[SchedResult]:
    sched = work / "sched"
    results = []
    # Every run gets a new store, and no store is removed until all runs are done: on ext4
    # without a journal, creating an inode scans past every inode deleted in the last minutes,
    # so removing one run's thousands of files right before the next would slow that one.
    stores = (store_dir or work / "stores") / f"sched-{os.getpid()}"
    try:
        if with_prefect:
            prepare_prefect()
        for kind in ("run", "call"):
            spec = sched / f"{kind}.mlspec"
            for mlc in mlcs:  # fills the IR cache
                warm_up = mlc_apply(mlc, spec, stores / f"{kind}-{mlc.label}-warm-up")
                expect_all(warm_up, "ran", steps, f"{mlc.label}: the {kind} warm-up")
            result = SchedResult(kind, {mlc.label: {} for mlc in mlcs})
            for attempt in range(repeat):
                for mlc in in_turn(mlcs, attempt):
                    what = f"{mlc.label}: {kind} steps, repetition {attempt + 1}"
                    new = stores / f"{kind}-{mlc.label}-{attempt}"
                    compiled = expect_all(
                        mlc_apply(mlc, spec, new / "compiled", ir_cache=False), "ran", steps, what
                    )
                    ran = expect_all(mlc_apply(mlc, spec, new / "ir-cache"), "ran", steps, what)
                    again = mlc_apply(mlc, spec, new / "ir-cache")
                    expect_all(again, "cached", steps, f"{what}, re-applied")
                    figures = result.mlc[mlc.label]
                    keep_best(figures, "wall", compiled.wall)
                    keep_best(figures, "ir_cache", ran.wall)
                    keep_best(figures, "cached", again.wall)
                    keep_best(figures, "run", min(compiled.run, ran.run))
                    print(
                        f"  {kind}: {mlc.label} {compiled.wall:.2f}s (run {compiled.run:.2f}s), "
                        f"IR cache {ran.wall:.2f}s (run {ran.run:.2f}s), "
                        f"all cached {again.wall:.2f}s",
                        flush=True,
                    )
                pool = noop_pool(kind, steps, sched)
                result.pool = min(result.pool, pool)
                line = f"  {kind}: pool {pool:.2f}s"
                if with_prefect:
                    prefect = prefect_flow(kind, steps)
                    for name, value in prefect.items():
                        keep_best(result.prefect, name, value)
                    line += (
                        f", Prefect {prefect['wall']:.2f}s (flow {prefect['flow_s']:.2f}s, "
                        f"server start {prefect['server_s']:.2f}s, import {prefect['import_s']:.2f}s)"
                    )
                print(f"{line} (load {load()})", flush=True)
            results.append(result)
    finally:
        shutil.rmtree(stores, ignore_errors=True)
    return results


def dvc_ready(reapply: Path, dirs: int) -> bool:
    lock = reapply / "dvc.lock"
    return lock.exists() and lock.read_text().count("\n  s") >= dirs


def prepare_dvc(reapply: Path, dirs: int) -> None:
    """A DVC project over the re-apply data, its `dvc.lock` up to date."""
    if not (reapply / ".dvc").exists():
        subprocess.run([str(DVC), "init", "--no-scm", "-q"], cwd=reapply, check=True)
        subprocess.run([str(DVC), "config", "core.analytics", "false"], cwd=reapply, check=True)
    if not dvc_ready(reapply, dirs):
        # `dvc repro` of 1,000 stages takes tens of minutes (it rewrites dvc.lock after each
        # stage); running the stage commands and committing them all is equivalent.
        print("  populating dvc.lock (stage commands, then dvc commit) …", flush=True)
        (reapply / "dvc.lock").unlink(missing_ok=True)
        for index in range(dirs):
            head = (reapply / f"data/d{index:04d}/f00.bin").read_bytes()[:16]
            (reapply / f"out/h{index:04d}").write_bytes(head)
        subprocess.run([str(DVC), "commit", "-f", "-q"], cwd=reapply, check=True)
    subprocess.run([str(DVC), "status", "-q"], cwd=reapply, check=False)  # warm


def dvc_status(reapply: Path) -> float:
    start = time.perf_counter()
    done = subprocess.run(
        [str(DVC), "status"], cwd=reapply, capture_output=True, text=True, check=False
    )
    took = time.perf_counter() - start
    if "up to date" not in done.stdout:
        sys.exit(f"dvc status does not say up to date:\n{done.stdout[-2000:]}")
    return took


@dataclass
class ReapplyResult:
    """The no-op re-apply's figures."""

    mlc: dict[str, Figures]
    """By mlc label: `wall` (best) and `hashed` (the most files hashed by any repetition)."""
    dvc: float | None = None


def bench_reapply(
    work: Path, dirs: int, repeat: int, mlcs: Sequence[Mlc], use_dvc: bool
) -> ReapplyResult:
    reapply = work / "reapply"
    spec = reapply / "reapply.mlspec"
    stores = {
        mlc.label: work / "stores" / ("reapply" if mlc is CURRENT else f"reapply-{mlc.label}")
        for mlc in mlcs
    }
    for mlc in mlcs:  # each snapshots the data into its own store, then warms its cache
        subprocess.run(
            [str(mlc.python), "-m", "mlc", "lock", spec.name, "--store", str(stores[mlc.label])],
            cwd=reapply,
            check=True,
            capture_output=True,
            env=mlc_environment(),
        )
        warm = mlc_apply(mlc, spec, stores[mlc.label])
        print(
            f"  {mlc.label} warm-up apply: {warm.wall:.2f}s, {statuses(warm.report)}, "
            f"{warm.hashed} files hashed",
            flush=True,
        )
    result = ReapplyResult({mlc.label: {"hashed": -1.0} for mlc in mlcs})  # -1: no count
    with_dvc = use_dvc and DVC.exists()
    if with_dvc:
        prepare_dvc(reapply, dirs)
    for attempt in range(repeat):
        for mlc in in_turn(mlcs, attempt):
            applied = mlc_apply(mlc, spec, stores[mlc.label])
            expect_all(applied, "cached", dirs, f"{mlc.label}: the re-apply")
            figures = result.mlc[mlc.label]
            keep_best(figures, "wall", applied.wall)
            figures["hashed"] = max(figures["hashed"], applied.hashed)
            print(
                f"  {mlc.label} apply (all cached): {applied.wall:.2f}s, {applied.hashed} files "
                f"hashed (load {load()})",
                flush=True,
            )
        if with_dvc:
            took = dvc_status(reapply)
            result.dvc = min(result.dvc or math.inf, took)
            print(f"  dvc status: {took:.2f}s (load {load()})", flush=True)
    return result


@dataclass
class ForeachResult:
    """The wide `foreach`'s figures."""

    items: int
    mlc: dict[str, Figures]
    """By mlc label: `wall`, `run` and `cached`."""


def bench_foreach(work: Path, items: int, repeat: int, mlcs: Sequence[Mlc]) -> ForeachResult:
    """A `foreach` of `items` call no-ops: the run, then the all-cached re-apply (best of
    `repeat`, each into a new store; stores are kept until the end, as in `bench_sched`)."""
    spec = work / "foreach" / "foreach.mlspec"
    stores = work / "stores" / f"foreach-{os.getpid()}"
    result = ForeachResult(items, {mlc.label: {} for mlc in mlcs})
    try:
        for mlc in mlcs:  # fills the IR cache: the compile is not measured
            warm_up = mlc_apply(mlc, spec, stores / f"{mlc.label}-warm-up")
            expect_all(warm_up, "ran", items, f"{mlc.label}: the foreach warm-up")
        for attempt in range(repeat):
            for mlc in in_turn(mlcs, attempt):
                store = stores / f"{mlc.label}-{attempt}"
                what = f"{mlc.label}: the foreach, repetition {attempt + 1}"
                ran = expect_all(mlc_apply(mlc, spec, store), "ran", items, what)
                again = mlc_apply(mlc, spec, store)
                expect_all(again, "cached", items, f"{what}, re-applied")
                figures = result.mlc[mlc.label]
                keep_best(figures, "wall", ran.wall)
                keep_best(figures, "run", ran.run)
                keep_best(figures, "cached", again.wall)
                print(
                    f"  foreach {items}: {mlc.label} {ran.wall:.2f}s (run {ran.run:.2f}s), "
                    f"all cached {again.wall:.2f}s (load {load()})",
                    flush=True,
                )
    finally:
        shutil.rmtree(stores, ignore_errors=True)
    return result


def verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def ratio(mlc: float, peer: float) -> str:
    value = mlc / peer
    return f"{value:.2f}x" if value < 1 else f"{value:.1f}x"


@dataclass(frozen=True)
class Row:
    """One line of the table: an mlc figure for each mlc measured, against a peer and a target."""

    name: str
    unit: str
    """`s`, `ms`, or empty for a count."""
    mlc: dict[str, float]
    peer: str = ""
    ratio: str = ""
    target: str = ""
    result: str = ""


def shown(value: float, unit: str) -> str:
    if not unit:
        return f"{value:.0f}"
    return f"{value:.2f} {unit}"


def change(value: float, base: float, unit: str) -> str:
    """In percent of the baseline; for a count, the difference."""
    if not unit:
        return f"{value - base:+.0f}" if value != base else ""
    if base <= 0:
        return ""
    return f"{(value - base) / base * 100:+.1f}%"


def render(rows: Sequence[Row], labels: Sequence[str]) -> str:
    """The rows as a Markdown table; with a baseline, its figure and the change after mlc's."""
    baselines = labels[1:]
    head = ["benchmark", "mlc"]
    for label in baselines:
        head += [f"mlc as of {label}", "change"]
    head += ["peer", "ratio", "target", "result"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        current = row.mlc[labels[0]]
        cells = [row.name, shown(current, row.unit)]
        for label in baselines:
            base = row.mlc[label]
            cells += [shown(base, row.unit), change(current, base, row.unit)]
        cells += [row.peer, row.ratio, row.target, row.result]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


ADDED_PER_STEP_MS = {"call": 1.0, "run": 2.0}


def sched_rows(result: SchedResult, steps: int) -> list[Row]:
    """The table's rows for one kind of scheduling step."""
    name = f"{steps} `{result.kind}` steps, fan-out/fan-in"
    pool = result.pool
    figures = result.mlc
    labels = list(figures)

    def figure(key: str) -> dict[str, float]:
        return {label: figures[label][key] for label in labels}

    current = figures[labels[0]]
    wall = figure("wall")
    run = figure("run")
    added = {label: (run[label] - pool) / steps * 1000 for label in labels}
    most = ADDED_PER_STEP_MS[result.kind]
    pool_peer = f"{pool:.2f} s (ProcessPoolExecutor, {POOL_WORKERS} workers)"
    rows = [
        Row(
            f"{name}: wall (`mlc apply`, spec compiled)",
            "s",
            wall,
            pool_peer,
            ratio(current["wall"], pool),
            "≤ 2 s",
            verdict(current["wall"] <= 2),
        )
    ]
    prefect = result.prefect
    if prefect:
        rows.append(
            Row(
                f"{name}: wall, against Prefect",
                "s",
                wall,
                f"{prefect['wall']:.2f} s (Prefect: the whole `python prefect_flow.py`, "
                f"of which {prefect['server_s']:.2f} s starting its API server)",
                ratio(current["wall"], prefect["wall"]),
            )
        )
    for key, label in (
        ("ir_cache", "wall, spec compiled before (IR cache)"),
        ("cached", "re-apply, all cached"),
    ):
        rows.append(
            Row(
                f"{name}: {label}",
                "s",
                figure(key),
                target="(≤ 2 s)",
                result=verdict(current[key] <= 2),
            )
        )
    rows.append(Row(f"{name}: the run alone", "s", run, pool_peer, ratio(current["run"], pool)))
    if prefect:
        rows.append(
            Row(
                f"{name}: the run alone, against Prefect's flow alone",
                "s",
                run,
                f"{prefect['flow_s']:.2f} s (Prefect: the flow, timed inside the script)",
                ratio(current["run"], prefect["flow_s"]),
            )
        )
    rows.append(
        Row(
            f"{name}: added per step, (the run alone - pool) / steps",
            "ms",
            added,
            target=f"≤ {most:.0f} ms",
            result=verdict(added[labels[0]] <= most),
        )
    )
    return rows


def foreach_rows(result: ForeachResult) -> list[Row]:
    name = f"{result.items:,}-item `foreach` of `call` no-ops"
    labels = list(result.mlc)

    def figure(key: str, scale: float = 1.0) -> dict[str, float]:
        return {label: result.mlc[label][key] * scale for label in labels}

    return [
        Row(f"{name}: wall (spec compiled before)", "s", figure("wall")),
        Row(f"{name}: the run alone", "s", figure("run")),
        Row(f"{name}: the run alone, per item", "ms", figure("run", 1000 / result.items)),
        Row(f"{name}: re-apply, all cached", "s", figure("cached")),
    ]


def reapply_rows(result: ReapplyResult, dirs: int) -> list[Row]:
    labels = list(result.mlc)
    wall = {label: result.mlc[label]["wall"] for label in labels}
    hashed = {label: result.mlc[label]["hashed"] for label in labels}
    current = wall[labels[0]]
    dvc = result.dvc
    return [
        Row(
            f"re-apply, {dirs} steps over {dirs} directories, all cached: wall",
            "s",
            wall,
            f"{dvc:.2f} s (`dvc status`)" if dvc is not None else "(DVC not run)",
            ratio(current, dvc) if dvc is not None else "",
            "≤ 2 s; faster than DVC",
            f"{verdict(current <= 2)}; "
            + (verdict(current < dvc) if dvc is not None else "not measured"),
        ),
        Row(
            "re-apply: files re-hashed (the most in any repetition)",
            "",
            hashed,
            target="0",
            result=verdict(hashed[labels[0]] == 0),
        ),
    ]


def table(
    labels: Sequence[str],
    sched: Sequence[SchedResult],
    foreach: ForeachResult | None,
    reapply: ReapplyResult | None,
    steps: int,
    dirs: int,
) -> str:
    rows = [row for result in sched for row in sched_rows(result, steps)]
    if foreach is not None:
        rows += foreach_rows(foreach)
    if reapply is not None:
        rows += reapply_rows(reapply, dirs)
    return render(rows, labels)


READING = """\
Reading the figures: every scheduling step names itself in its command, so each has a cache
key of its own; a run into a new store runs all of them and writes as many cache entries, and
the re-apply finds every one cached (the benchmark checks the statuses in each report). The
coordinator hands each attempt, through the local executor, to a long-lived worker process, which prepares the attempt
directory, starts the command (`posix_spawn`) or calls the function, stores the outputs and
writes the cache entry; a worker appends the logs of its attempts to one file, and the
executor stores them in batches and writes lineage in batched transactions. What is left per
step is work the bare pool does not do: the cache key and the cache entry, the log, the
hand-over between the coordinator and the worker and the coordinator's accounting. The wall
figures also include starting Python and importing mlc and, without the IR cache, compiling
the 1,000-step spec, none of which the pool does; a `call` no-op in the pool is a pickled
function call of well under 0.1 ms. The Prefect flow runs its tasks in threads of its own
process (its default task runner) and records every task's states through its API server;
its wall figure includes importing Prefect and starting the ephemeral API server, which a
user pays at every `python flow.py` unless they run a server of their own. mlc runs with
compiled bytecode, as installed: with `PYTHONDONTWRITEBYTECODE` set, every mlc process,
workers included, compiles its modules at start. On ext4 without a journal (this machine),
creating a file scans past every inode deleted in the last minutes, which is why the benchmark
keeps its stores until every run is done.
"""


def write_docs(text: str, argv: list[str], mlcs: Sequence[Mlc]) -> None:
    command = "python bench/bench_local.py " + " ".join(argv)
    body = (
        f"Measured {dt.date.today().isoformat()} on {machine()}; {versions(mlcs)}; "
        f"with `{command.strip()}` (best of the repetitions; see the docstring of "
        "`bench/bench_local.py` for what each figure is).\n\n" + text + "\n\n" + READING
    )
    write_section(DOCS, SECTION, body)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small smoke run")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--baseline",
        metavar="REV",
        help="also measure every mlc figure with mlc as of git revision REV, side by side",
    )
    parser.add_argument("--no-prefect", action="store_true")
    parser.add_argument("--no-dvc", action="store_true")
    parser.add_argument("--skip-sched", action="store_true")
    parser.add_argument("--skip-foreach", action="store_true")
    parser.add_argument("--skip-reapply", action="store_true")
    parser.add_argument("--write-docs", action="store_true")
    parser.add_argument(
        "--sched-store-dir",
        type=Path,
        help="where the scheduling runs put their stores (e.g. /dev/shm, to see what the "
        "disk's flushes cost)",
    )
    args = parser.parse_args()
    if args.quick:
        work, steps, dirs, per_dir, kb = ROOT / ".work" / "local-quick", 100, 100, 10, 10
    else:
        work, steps, dirs, per_dir, kb = ROOT / ".work" / "local", 1000, 1000, 10, 100
    items = 10 * steps
    generate(work, steps, dirs, per_dir, kb, items)
    mlcs = [CURRENT]
    if args.baseline:
        short, python, tree = baseline(args.baseline)
        mlcs.append(Mlc(short, python, tree))
    for mlc in mlcs:
        compile_mlc(mlc)
    with_prefect = not args.no_prefect and not args.skip_sched
    if with_prefect:
        peer_bin("prefect", PREFECT_PACKAGE)
    if not args.no_dvc and not args.skip_reapply:
        peer_bin("dvc")
    print(f"{machine()}\n{versions(mlcs)}\nload {load()}", flush=True)
    sched = (
        []
        if args.skip_sched
        else bench_sched(work, steps, args.repeat, mlcs, with_prefect, args.sched_store_dir)
    )
    foreach = None if args.skip_foreach else bench_foreach(work, items, args.repeat, mlcs)
    reapply = (
        None if args.skip_reapply else bench_reapply(work, dirs, args.repeat, mlcs, not args.no_dvc)
    )
    text = table([mlc.label for mlc in mlcs], sched, foreach, reapply, steps, dirs)
    text += f"\n\nLoad average (1, 5, 15 min) at the end: {load()}."
    print("\n" + text)
    if args.write_docs:
        write_docs(text, sys.argv[1:], mlcs)


if __name__ == "__main__":
    main()
