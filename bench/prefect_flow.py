"""The local benchmark's scheduling DAG as a Prefect 3 flow, for `bench/bench_local.py`.

Run by the Prefect peer's interpreter (`bench/.envs/prefect`, made by `bench/peers.py`):

    bench/.envs/prefect/bin/python bench/prefect_flow.py {call,run} TASKS

The flow has TASKS no-op tasks in a fan-out/fan-in DAG, like mlc's scheduling specs: one
source, TASKS - 2 tasks that wait for it, one sink that waits for all of them, each submitted to
the flow's default task runner and passed its own name (as each mlc step is). A `call` task
returns at once; a `run` task starts `true` with `subprocess.run`. Prefect runs as a new user
gets it: no API URL, so the first client starts the ephemeral API server (a subprocess serving
a SQLite database in `PREFECT_HOME`), and logs go to the console and to the API.

Prints one `prefect_flow: KEY=VALUE` line per figure on stdout:
- `import_s`: importing Prefect;
- `server_s`: starting the ephemeral API server (done by the first client, here before the
  flow, so that the flow's figure does not include it);
- `flow_s`: the flow, from the call that creates its run to its return (every task finished);
- `completed`: how many tasks ended in a `Completed` state, and `ran`: how many distinct tasks'
  bodies ran (the benchmark checks that both are TASKS).
"""

from __future__ import annotations

import subprocess
import sys
import time

start = time.perf_counter()
from prefect import flow, task  # noqa: E402 (the import is timed)
from prefect.client.orchestration import get_client  # noqa: E402

imported = time.perf_counter()
ran: list[str] = []  # the name of every task whose body ran (appending is thread-safe)


@task
def noop(name: str) -> None:
    """Does nothing with its name (the `call` variant)."""
    ran.append(name)


@task
def true(name: str) -> None:
    """Runs `true NAME` (the `run` variant)."""
    subprocess.run(["true", name], check=True)
    ran.append(name)


@flow
def fan_out_fan_in(kind: str, tasks: int) -> list[bool]:
    """The DAG; returns, for every task, whether it completed."""
    step = noop if kind == "call" else true
    source = step.submit("src")
    middle = [step.submit(f"m{index:04d}", wait_for=[source]) for index in range(tasks - 2)]
    sink = step.submit("sink", wait_for=middle)
    sink.wait()
    everything = [source, *middle, sink]
    for future in everything:
        future.wait()
    return [future.state.is_completed() for future in everything]


def main() -> None:
    kind, tasks = sys.argv[1], int(sys.argv[2])
    if kind not in ("call", "run") or tasks < 3:
        sys.exit("usage: prefect_flow.py {call,run} TASKS (at least 3)")
    before_server = time.perf_counter()
    with get_client(sync_client=True) as client:
        client.hello()
    before_flow = time.perf_counter()
    completed = fan_out_fan_in(kind, tasks)
    after_flow = time.perf_counter()
    print(f"prefect_flow: import_s={imported - start:.3f}")
    print(f"prefect_flow: server_s={before_flow - before_server:.3f}")
    print(f"prefect_flow: flow_s={after_flow - before_flow:.3f}")
    print(f"prefect_flow: completed={sum(completed)}")
    print(f"prefect_flow: ran={len(set(ran))}", flush=True)


if __name__ == "__main__":
    main()
