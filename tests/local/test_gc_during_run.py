"""`mlc gc` while `mlc apply` runs: a live run's objects are kept whatever the grace period
(its lease, `mlc.store.leases`), and are collected like any others once it ended."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]

MLC = (sys.executable, "-m", "mlc")
DATA = b"rows that only the running apply refers to\n"

SPEC = """mlspec 1

pipeline gated {{
  dataset raw {{
    uri = "raw.txt"
    version = "{digest}"
  }}
  step hold {{
    run = ["sh", "-c", "touch held; while [ ! -e go ]; do sleep 0.05; done"]
  }}
  step use {{
    after = [hold]
    run = ["cp", "{{{{ inputs.raw }}}}", "{{{{ outputs.copy }}}}"]
    inputs {{ raw = raw }}
    outputs {{ copy: file }}
  }}
  outputs {{ copy = use.copy }}
}}
"""


def environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLC_")}
    env["MLC_LOCAL_GPUS"] = ""
    env["MLC_IR_CACHE"] = "0"
    return env


def mlc(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*MLC, *args],
        capture_output=True,
        text=True,
        env=environment(),
        cwd=cwd,
        check=False,
        timeout=120,
    )


def wait_for(path: Path, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert time.monotonic() < deadline, f"timed out waiting for {path}"
        time.sleep(0.02)


def gc_now(elsewhere: Path, store: Path) -> dict[str, Any]:
    """`mlc gc --grace 0s` from a folder without an `mlc.lock` (which would be a root)."""
    collected = mlc(elsewhere, "gc", "--grace", "0s", "--store", str(store), "--format", "json")
    assert collected.returncode == 0, collected.stderr
    report: dict[str, Any] = json.loads(collected.stdout)
    return report


def test_gc_with_no_grace_during_a_run_keeps_what_the_run_uses(tmp_path: Path) -> None:
    project, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    project.mkdir()
    elsewhere.mkdir()
    store = tmp_path / "store"
    (project / "raw.txt").write_bytes(DATA)
    digest = "sha256:" + hashlib.sha256(DATA).hexdigest()
    (project / "pipeline.mlspec").write_text(SPEC.format(digest=digest))
    apply = subprocess.Popen(
        [*MLC, "apply", "pipeline.mlspec", "--store", str(store), "--format", "json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment(),
        cwd=project,
    )
    try:
        # The dataset is in the store, and nothing but the running apply refers to it yet.
        wait_for(project / "held")
        during = gc_now(elsewhere, store)
        assert len(during["live_runs"]) == 1
    finally:
        (project / "go").touch()
        stdout, stderr = apply.communicate(timeout=120)
    assert apply.returncode == 0, stderr
    report = json.loads(stdout)
    assert report["status"] == "succeeded"
    assert report["outputs"]["copy"] == digest
    assert gc_now(elsewhere, store)["live_runs"] == []  # its lease went with it
