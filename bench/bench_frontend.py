"""Front-end benchmarks: how long `mlc lint` and `mlc compile --target ir` take, cold.

    .venv/bin/python bench/bench_frontend.py            # everything (about 12 minutes on 2 cores)
    .venv/bin/python bench/bench_frontend.py --quick    # skip the 20,000-step case
    .venv/bin/python bench/bench_frontend.py --profile  # also cProfile and -X importtime

Every figure is a fresh process, as a user or a CI job meets it: wall time measured with
`time.perf_counter` around the subprocess, peak RSS from `os.wait4` (that child alone).
Small cases report the median of `--repeat` runs, large ones of `--large-repeat`. The KFP
comparison runs the same 20-step pipeline (`kfp_pipeline.py`) with the KFP SDK in its own
environment, `bench/.envs/kfp`, created on first use (`python3 -m venv` + `pip install kfp`).

The figures are printed next to the targets; nothing here fails on timing. Write the latest
results into `docs/benchmarks.md`, with the machine they ran on.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import os
import platform
import pstats
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
WORK = BENCH / ".work"
KFP_ENV = BENCH / ".envs" / "kfp"
KFP_PYTHON = KFP_ENV / "bin" / "python"
MLC_ENV = BENCH / ".envs" / "mlc"
MLC_PYTHON = Path(sys.executable)
MLC = MLC_PYTHON.parent / "mlc"
QUICKSTART = ROOT / "examples" / "quickstart" / "pipeline.mlspec"

sys.path.insert(0, str(BENCH))
import gen_specs  # noqa: E402 - a sibling script, not a package
from peers import peer_bin  # noqa: E402 - a sibling script, not a package

GIB = 1024**3


@dataclass
class Run:
    """One finished child process."""

    seconds: float
    cpu_seconds: float  # user + system time of the child
    peak_rss: int  # bytes
    returncode: int
    stderr: str


@dataclass
class Figure:
    """One line of the results table."""

    label: str
    value: str
    target: str = ""
    met: bool | None = None  # None: no target, or not measured

    @property
    def verdict(self) -> str:
        return {True: "met", False: "MISSED", None: ""}[self.met]


def run_cold(argv: Sequence[str], *, timeout: float | None = None) -> Run:
    """Runs `argv` once in a fresh process; stdout is discarded, stderr kept."""
    with tempfile.TemporaryFile(mode="w+", encoding="utf-8") as stderr:
        started = time.perf_counter()
        child = subprocess.Popen(
            argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=stderr, start_new_session=True
        )
        deadline = None if timeout is None else started + timeout
        while True:
            pid, status, usage = os.wait4(child.pid, os.WNOHANG if deadline else 0)
            if pid:
                break
            if deadline and time.perf_counter() > deadline:
                os.killpg(child.pid, signal.SIGTERM)
                pid, status, usage = os.wait4(child.pid, 0)
                break
            time.sleep(0.05)
        seconds = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)
        stderr.seek(0)
        cpu = usage.ru_utime + usage.ru_stime
        return Run(seconds, cpu, usage.ru_maxrss * 1024, child.returncode, stderr.read())


def median_run(
    argv: Sequence[str], repeat: int, *, warmup: bool = True, ok: tuple[int, ...] = (0,)
) -> tuple[Run, list[Run]]:
    """The median run (by wall time) of `repeat` cold runs, after one unmeasured warm-up run
    that fills the OS page cache (so "cold" means a new process, not a cold disk)."""
    if warmup:
        run_cold(argv)
    runs = [run_cold(argv) for _ in range(repeat)]
    for run in runs:
        if run.returncode not in ok:
            raise SystemExit(f"`{' '.join(argv)}` failed ({run.returncode}):\n{run.stderr}")
    ordered = sorted(runs, key=lambda r: r.seconds)
    return ordered[len(ordered) // 2], runs


def use_installed_mlc() -> None:
    """Measures mlc as users install it: a regular (not editable) install in `bench/.envs/mlc`,
    reinstalled from the working tree on every run. An editable install adds an import hook
    to every start-up that users never pay."""
    global MLC_PYTHON, MLC
    python = MLC_ENV / "bin" / "python"
    if not python.exists():
        python3 = shutil.which("python3") or sys.executable
        subprocess.run([python3, "-m", "venv", str(MLC_ENV)], check=True)
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--force-reinstall", "--no-deps", str(ROOT)],
        check=True,
    )
    subprocess.run([str(python), "-m", "pip", "install", "-q", str(ROOT)], check=True)
    MLC_PYTHON, MLC = python, MLC_ENV / "bin" / "mlc"


def ensure_kfp_env() -> None:
    """Creates `bench/.envs/kfp` with the KFP SDK unless it exists."""
    peer_bin("kfp")


def _seconds(value: float) -> str:
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


def _mib(value: int) -> str:
    return f"{value / 2**20:.0f} MiB"


def _wall(run: Run, runs: list[Run]) -> str:
    """The median wall time, its CPU time, and the spread of wall times."""
    text = f"{_seconds(run.seconds)} (cpu {_seconds(run.cpu_seconds)}"
    times = [r.seconds for r in runs]
    if len(times) > 1:
        text += f"; min {_seconds(min(times))}, max {_seconds(max(times))}, n={len(times)}"
    return text + ")"


# -- the measurements ----------------------------------------------------------------------------


def bench_cold_start(specs: dict[str, Path], repeat: int, kfp: bool) -> tuple[list[Figure], float]:
    """(a) and (b): `mlc --version`, `mlc lint` of the 20-step spec, the same in KFP."""
    figures: list[Figure] = []
    version, runs = median_run([str(MLC), "--version"], repeat)
    figures.append(
        Figure("`mlc --version`, cold", _wall(version, runs), "<= 60 ms", version.seconds <= 0.060)
    )
    lint, runs = median_run([str(MLC), "lint", str(specs["realistic20"])], repeat)
    figures.append(
        Figure(
            "`mlc lint` 20-step spec, cold",
            _wall(lint, runs),
            "<= 0.3 s (stretch 0.15 s)",
            lint.seconds <= 0.3,
        )
    )
    figures.append(
        Figure("  stretch target", _seconds(lint.seconds), "<= 0.15 s", lint.seconds <= 0.15)
    )
    figures.append(Figure("  peak RSS", _mib(lint.peak_rss)))
    quickstart, runs = median_run([str(MLC), "lint", str(QUICKSTART)], repeat, ok=(0, 1))
    figures.append(Figure("`mlc lint` quickstart (local target), cold", _wall(quickstart, runs)))
    interpreter, runs = median_run([str(MLC_PYTHON), "-c", "pass"], repeat)
    figures.append(Figure("  floor: `python -c pass` (mlc's venv)", _wall(interpreter, runs)))
    if not kfp:
        return figures, lint.seconds
    out = WORK / "kfp" / "churn.yaml"
    out.parent.mkdir(parents=True, exist_ok=True)
    kfp_run, runs = median_run([str(KFP_PYTHON), str(BENCH / "kfp_pipeline.py"), str(out)], repeat)
    kfp_import, import_runs = median_run(
        [str(KFP_PYTHON), "-c", "import kfp.dsl, kfp.compiler"], repeat
    )
    speedup = kfp_run.seconds / lint.seconds
    figures += [
        Figure("KFP SDK: same 20 steps compiled to YAML, cold", _wall(kfp_run, runs)),
        Figure("  peak RSS", _mib(kfp_run.peak_rss)),
        Figure("  of which `import kfp.dsl, kfp.compiler`", _wall(kfp_import, import_runs)),
        Figure(
            "mlc lint / KFP compile",
            f"{lint.seconds / kfp_run.seconds:.2f} "
            f"(mlc {speedup:.1f}x faster; in cpu time "
            f"{kfp_run.cpu_seconds / lint.cpu_seconds:.1f}x)",
            ">= 4x faster",
            speedup >= 4,
        ),
    ]
    return figures, lint.seconds


def bench_explicit(
    specs: dict[str, Path], sizes: Sequence[int], repeat: int, *, lint_max: int, limit: float
) -> list[Figure]:
    """(c): lint and compile to IR of N explicit steps; a run over `limit` seconds is stopped.

    Above `lint_max` steps only the compile is measured (it checks everything lint does)."""
    figures: list[Figure] = []
    targets = {1_000: 2.0, 10_000: 15.0}
    compile_times: dict[int, Run] = {}
    for size in sizes:
        spec = str(specs[f"steps_{size}"])
        out = WORK / "ir" / f"steps_{size}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        commands = {"compile --target ir": ["compile", spec, "--target", "ir", "-o", str(out)]}
        if size <= lint_max:
            commands = {"lint": ["lint", spec], **commands}
        target = targets.get(size)
        for name, argv in commands.items():
            runs = [run_cold([str(MLC), *argv], timeout=limit) for _ in range(repeat)]
            run = sorted(runs, key=lambda r: r.seconds)[len(runs) // 2]
            label = f"{size:,} steps: `mlc {name}`"
            if run.returncode != 0:
                if run.seconds < limit:
                    raise SystemExit(f"`mlc {' '.join(argv)}` failed:\n{run.stderr}")
                value = f"did not finish in {limit:g} s (cpu {_seconds(run.cpu_seconds)})"
                figures.append(
                    _show(
                        Figure(
                            label,
                            value,
                            f"<= {target:g} s" if target else "",
                            False if target or name != "lint" else None,
                        )
                    )
                )
            else:
                is_compile = name != "lint"
                figures.append(
                    _show(
                        Figure(
                            label,
                            _wall(run, runs),
                            f"<= {target:g} s" if target and is_compile else "",
                            run.seconds <= target if target and is_compile else None,
                        )
                    )
                )
            figures.append(
                _show(
                    Figure(
                        f"  peak RSS{' so far' if run.returncode else ''}",
                        _mib(run.peak_rss),
                        "< 1 GiB",
                        run.peak_rss < GIB,
                    )
                )
            )
            if name != "lint":
                compile_times[size] = run
    if 10_000 in compile_times and 20_000 in compile_times:
        ten, twenty = compile_times[10_000], compile_times[20_000]
        ratio = twenty.seconds / ten.seconds
        cpu_ratio = twenty.cpu_seconds / ten.cpu_seconds
        bound = ">" if twenty.returncode else ""
        figures.append(
            _show(
                Figure(
                    "20,000 / 10,000 steps compile time",
                    f"{bound}{ratio:.2f}x (cpu time {bound}{cpu_ratio:.2f}x)",
                    "<= 2.2x",
                    not twenty.returncode and ratio <= 2.2,
                )
            )
        )
    return figures


def _show(figure: Figure) -> Figure:
    """Prints a figure as soon as it is measured, so a long run shows partial results."""
    print(f"  {figure.label}: {figure.value} {figure.target} {figure.verdict}", flush=True)
    return figure


def bench_foreach(specs: dict[str, Path], repeat: int) -> list[Figure]:
    """(d): a 10,000-wide `foreach` over a literal list param."""
    spec = str(specs[f"foreach_{gen_specs.FOREACH_WIDTH}"])
    out = WORK / "ir" / "foreach.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    comp, runs = median_run([str(MLC), "compile", spec, "--target", "ir", "-o", str(out)], repeat)
    return [
        Figure(
            f"{gen_specs.FOREACH_WIDTH:,}-wide foreach: `mlc compile --target ir`",
            _wall(comp, runs),
            "<= 2 s",
            comp.seconds <= 2.0,
        ),
        Figure("  peak RSS", _mib(comp.peak_rss), "< 1 GiB", comp.peak_rss < GIB),
    ]


def bench_kfp_large(tasks: int, limit: float) -> list[Figure]:
    """(e): the KFP SDK defining and compiling `tasks` tasks, stopped after `limit` seconds."""
    out = WORK / "kfp" / f"steps_{tasks}.yaml"
    out.parent.mkdir(parents=True, exist_ok=True)
    run = run_cold(
        [str(KFP_PYTHON), str(BENCH / "kfp_pipeline.py"), str(out), "--steps", str(tasks)],
        timeout=limit,
    )
    progress = [line for line in run.stderr.splitlines() if line.startswith("[")]
    if run.returncode == 0:
        value = f"{_wall(run, [run])}, peak RSS {_mib(run.peak_rss)}"
    else:
        last = progress[-1] if progress else "no progress reported"
        value = f"stopped after {_seconds(run.seconds)}; last: {last}"
    return [Figure(f"KFP SDK: {tasks:,} tasks compiled to YAML", value, f"(limit {limit:g} s)")]


# -- profiles ------------------------------------------------------------------------------------


def profile_in_process(argv: list[str], top: int) -> str:
    """cProfile of `mlc ARGV` run in this process (imports already paid)."""
    from mlc.cli.main import main

    profiler = cProfile.Profile()
    profiler.enable()
    with contextlib.suppress(SystemExit):
        main(argv)
    profiler.disable()
    return _hot_spots(pstats.Stats(profiler), top)


def profile_subprocess(argv: Sequence[str], top: int) -> str:
    """cProfile of a cold `mlc` process, imports included (`python -m cProfile`)."""
    script = WORK / "mlc_entry.py"
    script.parent.mkdir(parents=True, exist_ok=True)
    script.write_text(
        "import sys\nfrom mlc.cli.main import main\n\nsys.exit(main(sys.argv[1:]))\n",
        encoding="utf-8",
    )
    output = WORK / "cold.prof"
    subprocess.run(
        [str(MLC_PYTHON), "-m", "cProfile", "-o", str(output), str(script), *argv],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=False,
    )
    return _hot_spots(pstats.Stats(str(output)), top)


def _hot_spots(stats: pstats.Stats, top: int) -> str:
    """Top functions by own time, top mlc functions by cumulative time, own time by module."""
    total = stats.total_tt  # type: ignore[attr-defined]
    rows: list[tuple[float, float, int, str]] = []
    modules: dict[str, float] = {}
    for (filename, line, name), entry in stats.stats.items():  # type: ignore[attr-defined]
        _, calls, own, cumulative, _ = entry
        where = _module_of(filename)
        rows.append((own, cumulative, calls, f"{where}:{name}:{line}"))
        modules[where] = modules.get(where, 0.0) + own
    lines = [
        f"total {total:.2f} s under cProfile (which slows Python code down ~2x)",
        "",
        f"{'own':>7} {'share':>6} {'cumul':>7} {'calls':>9}  function, by own time",
    ]
    for own, cumulative, calls, where in sorted(rows, reverse=True)[:top]:
        lines.append(f"{own:7.2f} {own / total:6.1%} {cumulative:7.2f} {calls:9d}  {where}")
    ours = [r for r in rows if r[3].startswith("mlc.") and not r[3].startswith("mlc.cli.main")]
    lines += [
        "",
        f"{'cumul':>7} {'share':>6} {'own':>7} {'calls':>9}  mlc function, by cumulative time",
    ]
    for own, cumulative, calls, where in sorted(ours, key=lambda r: -r[1])[:top]:
        lines.append(f"{cumulative:7.2f} {cumulative / total:6.1%} {own:7.2f} {calls:9d}  {where}")
    lines += ["", f"{'own':>7} {'share':>6}  module (own time of its functions, summed)"]
    for where, own in sorted(modules.items(), key=lambda kv: -kv[1])[:top]:
        lines.append(f"{own:7.2f} {own / total:6.1%}  {where}")
    return "\n".join(lines)


def _module_of(filename: str) -> str:
    if filename.startswith("<") or filename == "~":
        return "builtins"
    path = Path(filename)
    for marker, package in ((ROOT / "compiler", "mlc"), (ROOT / "backends", "mlc.backends")):
        if path.is_relative_to(marker):
            parts = path.relative_to(marker).with_suffix("").parts
            return ".".join((package, *parts)).removesuffix(".__init__")
    if "site-packages" in path.parts:
        parts = path.parts[path.parts.index("site-packages") + 1 :]
        return ".".join(Path(*parts).with_suffix("").parts).removesuffix(".__init__")
    return f"stdlib.{path.stem}"


def import_costs(argv: Sequence[str], top: int) -> str:
    """`python -X importtime` of a cold `mlc` command: the costliest imports, cumulative."""
    code = "import sys; from mlc.cli.main import main; sys.exit(main(sys.argv[1:]))"
    done = subprocess.run(
        [str(MLC_PYTHON), "-X", "importtime", "-c", code, *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    pattern = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)")
    rows = []
    for line in done.stderr.splitlines():
        match = pattern.match(line)
        if match:
            own, cumulative, indent, name = match.groups()
            rows.append((int(cumulative), int(own), (len(indent) - 1) // 2, name))
    top_level = sum(c for c, _, depth, _ in rows if depth == 0)
    lines = [
        f"all imports: {top_level / 1e3:.0f} ms (sum of top-level cumulative times)",
        f"{'cumul':>8} {'own':>8} depth  module",
    ]
    for cumulative, own, depth, name in sorted(rows, reverse=True)[:top]:
        lines.append(f"{cumulative / 1e3:6.1f}ms {own / 1e3:6.1f}ms {depth:5d}  {name}")
    packages: dict[str, int] = {}
    for _, own, _, name in rows:
        root = name.split(".")[0]
        packages[root] = packages.get(root, 0) + own
    lines += ["", "own time by top-level package:"]
    for name, own in sorted(packages.items(), key=lambda kv: -kv[1])[:top]:
        lines.append(f"{own / 1e3:6.1f}ms  {name}")
    return "\n".join(lines)


# -- the report ----------------------------------------------------------------------------------


def machine() -> list[str]:
    """Where and with what the figures were taken."""
    cpu = "unknown"
    with open("/proc/cpuinfo", encoding="utf-8") as info:
        for line in info:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / GIB
    mlc_version = subprocess.run(
        [str(MLC), "--version"], capture_output=True, text=True, check=False
    ).stdout.strip()
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    kfp_version = "not installed"
    if KFP_PYTHON.exists():
        kfp_version = subprocess.run(
            [str(KFP_PYTHON), "-c", "import kfp; print(kfp.__version__)"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
    return [
        f"date (UTC): {time.strftime('%Y-%m-%d %H:%M', time.gmtime())}",
        f"machine: {os.cpu_count()} CPUs ({cpu}), {memory:.1f} GiB RAM, {platform.system()} "
        f"{platform.release()}",
        f"versions: {mlc_version} (commit {commit}), kfp {kfp_version}, Python "
        f"{platform.python_version()}",
    ]


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def table(figures: list[Figure]) -> str:
    width = max(len(f.label) for f in figures)
    value_width = max(len(f.value) for f in figures)
    target_width = max(len(f.target) for f in figures)
    lines = [
        f"| {'measure':<{width}} | {'figure':<{value_width}} | {'target':<{target_width}} "
        f"| result |",
        f"|{'-' * (width + 2)}|{'-' * (value_width + 2)}|{'-' * (target_width + 2)}|--------|",
    ]
    lines += [
        f"| {f.label:<{width}} | {f.value:<{value_width}} | {f.target:<{target_width}} "
        f"| {f.verdict:<6} |"
        for f in figures
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=7, help="runs of each small case")
    parser.add_argument(
        "--large-repeat", type=int, default=1, help="runs of each 1,000-20,000-step case"
    )
    parser.add_argument("--quick", action="store_true", help="skip the 20,000-step case")
    parser.add_argument(
        "--sizes",
        type=int,
        nargs="*",
        default=list(gen_specs.EXPLICIT_SIZES),
        help="explicit-step cases to measure (of 1000, 10000, 20000)",
    )
    parser.add_argument(
        "--lint-max", type=int, default=10_000, help="above this many steps, measure compile only"
    )
    parser.add_argument(
        "--large-limit",
        type=float,
        default=900.0,
        help="stop a 1,000-20,000-step run after this many seconds",
    )
    parser.add_argument(
        "--skip",
        nargs="*",
        default=[],
        choices=("cold", "explicit", "foreach", "kfp-large"),
        help="sections to leave out",
    )
    parser.add_argument("--no-kfp", action="store_true", help="skip the KFP comparison")
    parser.add_argument("--kfp-tasks", type=int, default=10_000)
    parser.add_argument(
        "--kfp-limit",
        type=float,
        default=60.0,
        help="stop KFP compiling --kfp-tasks tasks after this many seconds",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="also profile the 10,000-step compile and the cold lint",
    )
    parser.add_argument("--only-profile", action="store_true", help="profile, measure nothing")
    parser.add_argument(
        "--profile-steps",
        type=int,
        default=10_000,
        help="size of the explicit-step compile to profile",
    )
    parser.add_argument("--top", type=int, default=15, help="rows of each profile")
    parser.add_argument(
        "--editable",
        action="store_true",
        help="measure the mlc of the running venv instead of a regular install",
    )
    args = parser.parse_args()
    if not args.editable:
        use_installed_mlc()

    specs = gen_specs.generate()
    kfp = not args.no_kfp
    if kfp:
        ensure_kfp_env()
    print("\n".join(machine()))
    print(f"load average before: {load()}")

    sizes = [s for s in args.sizes if not (args.quick and s > 10_000)]
    sections: list[tuple[str, Callable[[], list[Figure]]]] = [
        ("cold", lambda: bench_cold_start(specs, args.repeat, kfp)[0]),
        ("foreach", lambda: bench_foreach(specs, args.repeat)),
        ("kfp-large", lambda: bench_kfp_large(args.kfp_tasks, args.kfp_limit) if kfp else []),
        (
            "explicit",
            lambda: bench_explicit(
                specs, sizes, args.large_repeat, lint_max=args.lint_max, limit=args.large_limit
            ),
        ),
    ]
    if args.only_profile:
        sections = []
    sections = [(name, measure) for name, measure in sections if name not in args.skip]
    figures: list[Figure] = []
    for name, measure in sections:
        print(f"measuring {name} … (load average {load()})", flush=True)
        figures += measure()
    if figures:
        print()
        print(table(figures))
        missed = [f.label.strip() for f in figures if f.met is False]
        print()
        print("targets missed: " + ("; ".join(missed) if missed else "none"))
    print(f"load average after: {load()}")

    if args.profile or args.only_profile:
        lint_argv = ["lint", str(specs["realistic20"])]
        print("\n## cold `mlc lint` of the 20-step spec, profiled (cumulative, imports included)")
        print(profile_subprocess(lint_argv, args.top))
        print("\n## imports of `mlc lint` (-X importtime)")
        print(import_costs(lint_argv, args.top))
        steps = args.profile_steps
        print(f"\n## `mlc compile --target ir` of {steps:,} steps, profiled")
        spec = WORK / "specs" / f"steps_{steps}.mlspec"
        spec.write_text(gen_specs.explicit_steps(steps), encoding="utf-8")
        compile_argv = [
            "compile",
            str(spec),
            "--target",
            "ir",
            "-o",
            str(WORK / "ir" / f"steps_{steps}.profiled.json"),
        ]
        print(profile_in_process(compile_argv, args.top))


if __name__ == "__main__":
    main()
