"""Long input: memory and time to parse a 1 MiB string, long string, comment or run of escapes,
and how much `mlc lint` prints for one error on a 1 MB line.

    .venv/bin/python bench/bench_long_input.py

Memory is the peak that `tracemalloc` sees while one parse runs (in this process, after a
warm-up parse); time is wall time around another parse, without tracing. Nothing here fails on a figure; write
the latest results into `docs/benchmarks.md`.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

from mlc.front.parser import parse

SIZE = 2**20


def cases() -> dict[str, str]:
    step = "mlspec 1\npipeline p {{\n  step a {{\n    run = {}\n  }}\n}}\n"
    return {
        "1 MiB string": step.format('"' + "x" * SIZE + '"'),
        "1 MiB triple-quoted string": step.format('"""' + "x\n" * (SIZE // 2) + '"""'),
        "1 MiB of escapes (`\\n`)": step.format('"' + "\\n" * (SIZE // 2) + '"'),
        "1 MiB comment": "mlspec 1\n#" + "c" * SIZE + "\n" + step.format('"x"')[9:],
    }


def measure(text: str) -> tuple[float, float]:
    """Peak traced memory of one parse, and wall time of another without tracing (which
    slows Python code down several times)."""
    started = time.perf_counter()
    parse(text, "bench.mlspec")
    elapsed = time.perf_counter() - started
    tracemalloc.start()
    parse(text, "bench.mlspec")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 2**20, elapsed


def lint_output_bytes() -> int:
    line = '    env { X = "' + "x" * 10**6 + '", Y = nope }'
    text = f'mlspec 1\npipeline p {{\n  step a {{\n    run = "x"\n{line}\n  }}\n}}\n'
    with tempfile.TemporaryDirectory() as folder:
        spec = Path(folder) / "long.mlspec"
        spec.write_text(text, encoding="utf-8")
        done = subprocess.run(
            [str(Path(sys.executable).with_name("mlc")), "lint", str(spec)],
            capture_output=True,
            check=False,
        )
    return len(done.stdout) + len(done.stderr)


def main() -> None:
    parse("mlspec 1\n", "warm.mlspec")
    print(f"{'input':32} {'peak MiB':>9} {'seconds':>8}")
    for name, text in cases().items():
        peak, elapsed = measure(text)
        print(f"{name:32} {peak:9.1f} {elapsed:8.2f}")
    print(f"`mlc lint` output for one error on a 1 MB line: {lint_output_bytes()} bytes")


if __name__ == "__main__":
    main()
