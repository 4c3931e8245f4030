"""Generates the Ray-backend benchmark's specs under `bench/.work/ray/` (or `ray-quick/`).

Used by `bench/bench_ray.py`, which writes them anew for every run, because a spec names the
address of the Ray head the benchmark has just started. The scheduling and `foreach` specs
are the local benchmark's (`bench/gen_local.py`, unchanged: its `local_run` target is kept)
with a Ray target added; each spec has these targets:

- `local_run`: the local backend (for the all-cached re-applies, which must cost the same);
- `ray`: the Ray backend joining the running head at `address`;
- `ray_local` (the start-up spec only): the Ray backend without an address, so mlc starts a
  Ray instance on this machine for the run.

Writes:
- `sched/run.mlspec`, `sched/call.mlspec`, `sched/noop.py`: `steps` distinct no-op steps in a
  fan-out/fan-in DAG (see `gen_local.sched_spec`);
- `chain/chain.mlspec`, `chain/chain.py`: `links` `call` steps in a chain, each reading the
  previous one's output file and writing its own (its name), each passed its own name so
  that no two share a cache key;
- `foreach/foreach.mlspec`, `foreach/item.py`: one `call` step over a list of `items` numbers;
- `startup/startup.mlspec`, `startup/noop.py`: one `call` no-op step.
"""

from __future__ import annotations

from pathlib import Path

from gen_local import ITEM_PY, NOOP_PY, foreach_spec, sched_spec, write_if_changed

CHAIN_PY = '''"""The chain benchmark's step: reads the previous link's output, writes its own."""

from pathlib import Path


def link(step: str, out: Path, prev: Path | None = None) -> None:
    """Writes the step's name after reading the previous link's output (if any)."""
    if prev is not None:
        prev.read_bytes()
    out.write_text(step)
'''


def ray_target(address: str) -> str:
    """A Ray target joining the head at `address`."""
    return f'target ray {{\n  backend = ray\n  address = "{address}"\n}}\n'


LOCAL_RAY_TARGET = "target ray_local {\n  backend = ray\n}\n"
"""A Ray target without an address: mlc starts a Ray instance for the run."""


def chain_spec(links: int, address: str) -> str:
    """`links` call steps, each reading the previous one's output."""
    lines = ["mlspec 1", "", f"pipeline chain_{links} {{"]
    for index in range(links):
        name = f"c{index:04d}"
        lines += [
            f"  step {name} {{",
            '    call = "chain:link"',
            f'    args {{ step = "{name}" }}',
            *([f"    inputs {{ prev = c{index - 1:04d}.out }}"] if index else []),
            "    outputs { out: file }",
            "  }",
        ]
    lines += [f"  outputs {{ last = c{links - 1:04d}.out }}"]
    lines += ["}", "", "target local_run {", "  backend = local", "}", ""]
    return "\n".join(lines) + "\n" + ray_target(address)


def startup_spec(address: str) -> str:
    """One call no-op step, with a local, a joined and an address-less Ray target."""
    return "\n".join(
        [
            "mlspec 1",
            "",
            "pipeline startup {",
            "  step one {",
            '    call = "noop:noop"',
            '    args { step = "one" }',
            "  }",
            "}",
            "",
            "target local_run {",
            "  backend = local",
            "}",
            "",
            ray_target(address),
            LOCAL_RAY_TARGET,
        ]
    )


def generate(work: Path, steps: int, links: int, items: int, address: str) -> None:
    """Writes every spec (see the module docstring), each with the head's `address`."""
    for kind in ("run", "call"):
        write_if_changed(
            work / "sched" / f"{kind}.mlspec", sched_spec(kind, steps) + "\n" + ray_target(address)
        )
    write_if_changed(work / "sched" / "noop.py", NOOP_PY)
    write_if_changed(work / "chain" / "chain.mlspec", chain_spec(links, address))
    write_if_changed(work / "chain" / "chain.py", CHAIN_PY)
    write_if_changed(
        work / "foreach" / "foreach.mlspec", foreach_spec(items) + "\n" + ray_target(address)
    )
    write_if_changed(work / "foreach" / "item.py", ITEM_PY)
    write_if_changed(work / "startup" / "startup.mlspec", startup_spec(address))
    write_if_changed(work / "startup" / "noop.py", NOOP_PY)
