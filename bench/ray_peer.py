"""Bare Ray running the Ray benchmark's DAGs, for `bench/bench_ray.py`: the peer of `mlc apply`.

Run by the same interpreter as mlc (the one Ray is installed in):

    python bench/ray_peer.py fanout {call,run} STEPS ADDRESS
    python bench/ray_peer.py chain LINKS ADDRESS
    python bench/ray_peer.py startup

- `fanout`: the scheduling DAG of `gen_local.sched_spec` as Ray tasks: the source, then
  STEPS - 2 tasks submitted together once it has ended, the driver reacting to each end in a
  `ray.wait(num_returns=1)` loop (as a scheduler does), then the sink. A `call` task returns
  its name; a `run` task starts `true NAME` with `subprocess.run`, as mlc's `run` step does.
- `chain`: LINKS tasks, each passed the previous one's result as an ObjectRef (Ray hands the
  value over through its object store), each returning its own name and the count of links
  so far; all submitted at once, then the driver waits for the first link's end and the last
  one's.
- `startup`: `ray.init(address="local")` (a Ray instance started for the script) and one
  task, as `mlc apply` of a one-step pipeline without an address does.

The driver joins the cluster (or starts one) with the options mlc's driver uses
(`log_to_driver=False`, `configure_logging=False`, no dashboard), and ends with
`ray.shutdown()`, as `mlc apply` does. Every task asks for 1 CPU and no retries, as an mlc
step without `resources` does.

Prints one `ray_peer: KEY=VALUE` line per figure on stdout:
- `import_s`: `import ray`;
- `init_s`: `ray.init` (joining, or starting a local Ray);
- `dag_s`: from the first submission to the last result;
- `shutdown_s`: `ray.shutdown()`;
- `total_s`: `import_s + init_s + dag_s + shutdown_s`, what `mlc apply`'s report counts as its
  run (mlc imports Ray when its first step must run, inside the run);
- `span_s` (`chain`): from the first link's end to the last one's, as the driver sees them;
- `ran`: how many distinct tasks returned (the benchmark checks it is STEPS, LINKS or 1).
"""

from __future__ import annotations

import subprocess
import sys
import time

start = time.perf_counter()
import ray  # noqa: E402 (the import is timed)

imported = time.perf_counter()
OPTIONS = {"log_to_driver": False, "configure_logging": False}


@ray.remote(num_cpus=1, max_retries=0)
def noop(name: str) -> str:
    """Does nothing with its name (the `call` variant)."""
    return name


@ray.remote(num_cpus=1, max_retries=0)
def true(name: str) -> str:
    """Starts `true NAME` (the `run` variant)."""
    subprocess.run(["true", name], check=True)
    return name


@ray.remote(num_cpus=1, max_retries=0)
def link(name: str, previous: tuple[str, int] | None) -> tuple[str, int]:
    """One link: reads the previous link's result, returns its own."""
    return name, (previous[1] if previous else 0) + 1


def fanout(kind: str, steps: int) -> int:
    task = true if kind == "run" else noop
    names = ["src", *(f"m{index:04d}" for index in range(steps - 2)), "sink"]
    ran = {ray.get(task.remote(names[0]))}
    pending = [task.remote(name) for name in names[1:-1]]
    while pending:
        ready, pending = ray.wait(pending, num_returns=1)
        ran.update(ray.get(ready))
    ran.add(ray.get(task.remote(names[-1])))
    return len(ran)


SPAN: dict[str, float] = {}


def chain(links: int) -> int:
    refs = []
    for index in range(links):
        refs.append(link.remote(f"c{index:04d}", refs[-1] if refs else None))
    ray.wait(refs[:1])
    first = time.perf_counter()
    _, count = ray.get(refs[-1])
    SPAN["span_s"] = time.perf_counter() - first
    return int(count)


def main() -> None:
    mode, args = sys.argv[1], sys.argv[2:]
    address = args[-1] if mode != "startup" else "local"
    options = OPTIONS | ({"include_dashboard": False} if address == "local" else {})
    began = time.perf_counter()
    ray.init(address=address, **options)
    joined = time.perf_counter()
    if mode == "fanout":
        ran = fanout(args[0], int(args[1]))
    elif mode == "chain":
        ran = chain(int(args[0]))
    else:
        ran = len({ray.get(noop.remote("one"))})
    finished = time.perf_counter()
    ray.shutdown()
    ended = time.perf_counter()
    figures = {
        "import_s": imported - start,
        "init_s": joined - began,
        "dag_s": finished - joined,
        "shutdown_s": ended - finished,
        "total_s": ended - start,
        **SPAN,
        "ran": ran,
    }
    for name, value in figures.items():
        print(f"ray_peer: {name}={value}", flush=True)


if __name__ == "__main__":
    main()
