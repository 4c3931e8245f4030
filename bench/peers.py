"""The peers the benchmarks compare with, each installed from PyPI into a virtual environment
of its own under `bench/.envs/` on first use (so their dependencies never meet mlc's)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ENVS = Path(__file__).resolve().parent / ".envs"


def peer_bin(name: str, package: str | None = None) -> Path:
    """The `bin/` directory of `bench/.envs/NAME`, created with `pip install PACKAGE` (the
    name by default) unless it exists."""
    env = ENVS / name
    python = env / "bin" / "python"
    if not python.exists():
        print(f"creating {env} (python3 -m venv; pip install {package or name}) …", file=sys.stderr)
        python3 = shutil.which("python3") or sys.executable
        subprocess.run([python3, "-m", "venv", str(env)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", package or name], check=True)
    return env / "bin"
