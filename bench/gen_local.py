"""Generates the local-backend benchmark's specs and data under `bench/.work/local/`.

Run: `.venv/bin/python bench/gen_local.py [--steps 1000] [--dirs 1000] [--files-per-dir 10]
[--file-kb 100] [--foreach-items 10000]`

Writes:
- `sched/run.mlspec`: `steps` no-op `run` steps in a fan-out/fan-in DAG (one source, `steps - 2`
  parallel steps `after` it, one sink `after` all of them), each `true` with its own name as
  an argument, so that every step has a cache key of its own (identical steps would share one:
  one would run and the others find its cache entry);
- `sched/call.mlspec` and `sched/noop.py`: the same DAG of `call` steps of a Python no-op, each
  passed its own name in `args` for the same reason;
- `foreach/foreach.mlspec` and `foreach/item.py`: one `call` step fanned out over a list param
  of `foreach_items` numbers (10,000 by default), each item a Python no-op;
- `reapply/data/dNNNN/fNN.bin`: `dirs` directories of `files_per_dir` files of `file_kb` KB
  (1 GB by default), each a dataset;
- `reapply/reapply.mlspec`: one step per directory, reading that directory's dataset and
  writing a small file (the first bytes of its first file), so that re-applying has a cache
  to check for every step;
- `reapply/dvc.yaml` (+ a `git init`ed, `dvc init`ed project around the same data): the
  equivalent DVC DAG, one stage per directory with the directory as a dependency.

The data are rewritten only when missing or of the wrong size, so the files keep their inodes
and mtimes from run to run (the stat caches of both tools stay valid).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent
WORK = ROOT / ".work" / "local"

NOOP_PY = '''"""A no-op step function for the scheduling benchmark."""


def noop(step: str) -> None:
    """Does nothing with the name of its step (which only makes the step's cache key its own)."""
'''


def sched_step(kind: str, name: str, after: str | None) -> list[str]:
    """One no-op step whose command names the step, so that no two steps share a cache key."""
    if kind == "run":
        body = [f'    run = "true {name}"']
    else:
        body = ['    call = "noop:noop"', f'    args {{ step = "{name}" }}']
    return [f"  step {name} {{", *body, *([f"    after = {after}"] if after else []), "  }"]


def sched_spec(kind: str, steps: int) -> str:
    """A fan-out/fan-in DAG of `steps` distinct no-op steps of one kind (`run` or `call`)."""
    middle = [f"m{index:04d}" for index in range(steps - 2)]
    lines = ["mlspec 1", "", f"pipeline sched_{kind} {{"]
    lines += sched_step(kind, "src", None)
    for name in middle:
        lines += sched_step(kind, name, "src")
    lines += sched_step(kind, "sink", f"[{', '.join(middle)}]")
    lines += ["}", "", "target local_run {", "  backend = local", "}", ""]
    return "\n".join(lines)


ITEM_PY = '''"""A no-op step function for each item of the foreach benchmark."""


def noop(i: int) -> None:
    """Does nothing with its item."""
'''


def foreach_spec(items: int) -> str:
    """One `call` step over a list param of `items` numbers."""
    numbers = ", ".join(str(number) for number in range(items))
    return "\n".join(
        [
            "mlspec 1",
            "",
            f"pipeline foreach_{items} {{",
            f"  params {{ items: list[int] = [{numbers}] }}",
            "  step work foreach i in params.items {",
            '    call = "item:noop"',
            "  }",
            "}",
            "",
            "target local_run {",
            "  backend = local",
            "}",
            "",
        ]
    )


def reapply_spec(dirs: int, digests: dict[str, str] | None = None) -> str:
    """One step per data directory; each reads its directory as a `latest` dataset."""
    lines = ["mlspec 1", "", "pipeline reapply {"]
    for index in range(dirs):
        lines += [
            f"  dataset d{index:04d} {{",
            f'    uri = "data/d{index:04d}"',
            "    version = latest",
            "  }",
        ]
    for index in range(dirs):
        lines += [
            f"  step s{index:04d} {{",
            '    run = "head -c 16 {{ inputs.data }}/f00.bin > {{ outputs.head }}"',
            "    shell = true",
            f"    inputs {{ data = d{index:04d} }}",
            "    outputs { head: file }",
            "  }",
        ]
    lines += ["  outputs {"]
    lines += [f"    h{index:04d} = s{index:04d}.head" for index in range(dirs)]
    lines += ["  }", "}", "", "target local_run {", "  backend = local", "}", ""]
    return "\n".join(lines)


def dvc_yaml(dirs: int) -> str:
    """The same DAG as a DVC pipeline: one stage per directory."""
    lines = ["stages:"]
    for index in range(dirs):
        lines += [
            f"  s{index:04d}:",
            f"    cmd: head -c 16 data/d{index:04d}/f00.bin > out/h{index:04d}",
            "    deps:",
            f"    - data/d{index:04d}",
            "    outs:",
            f"    - out/h{index:04d}",
        ]
    return "\n".join(lines) + "\n"


def make_data(directory: Path, dirs: int, per_dir: int, size: int) -> int:
    """Writes the files that are missing or of the wrong size; returns how many it wrote."""
    written = 0
    for index in range(dirs):
        sub = directory / f"d{index:04d}"
        sub.mkdir(parents=True, exist_ok=True)
        for number in range(per_dir):
            path = sub / f"f{number:02d}.bin"
            try:
                if path.stat().st_size == size:
                    continue
            except FileNotFoundError:
                pass
            path.write_bytes(os.urandom(size))
            written += 1
    return written


def write_if_changed(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


def generate(
    work: Path, steps: int, dirs: int, per_dir: int, file_kb: int, foreach_items: int = 10_000
) -> None:
    sched = work / "sched"
    write_if_changed(sched / "run.mlspec", sched_spec("run", steps))
    write_if_changed(sched / "call.mlspec", sched_spec("call", steps))
    write_if_changed(sched / "noop.py", NOOP_PY)
    write_if_changed(work / "foreach" / "foreach.mlspec", foreach_spec(foreach_items))
    write_if_changed(work / "foreach" / "item.py", ITEM_PY)
    reapply = work / "reapply"
    written = make_data(reapply / "data", dirs, per_dir, file_kb * 1000)
    write_if_changed(reapply / "reapply.mlspec", reapply_spec(dirs))
    write_if_changed(reapply / "dvc.yaml", dvc_yaml(dirs))
    (reapply / "out").mkdir(exist_ok=True)
    print(
        f"generated under {work}: {steps} scheduling steps, a {foreach_items}-item foreach, "
        f"{dirs} x {per_dir} files of {file_kb} KB ({written} written)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--dirs", type=int, default=1000)
    parser.add_argument("--files-per-dir", type=int, default=10)
    parser.add_argument("--file-kb", type=int, default=100)
    parser.add_argument("--foreach-items", type=int, default=10_000)
    parser.add_argument("--work-dir", type=Path, default=WORK)
    args = parser.parse_args()
    generate(
        args.work_dir,
        args.steps,
        args.dirs,
        args.files_per_dir,
        args.file_kb,
        args.foreach_items,
    )


if __name__ == "__main__":
    main()
