"""`mlc logs -f RUN STEP` for an item of a running `foreach` that has not started yet waits for
it to start, then follows it to its end; without `-f` it says the item has not started.

A real run on the local backend: two items, one at a time; the first waits for a file the
test creates once `mlc logs -f` has said it is waiting, so the second item cannot start
before. Nothing here depends on timing: every wait is for an event, with a bound only so that
a broken build fails instead of hanging.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

SPEC = """mlspec 1

pipeline waits {
  step work foreach i in [0, 1] {
    parallelism = 1
    run = ["sh", "-c", "echo started {{ i }}; touch started-{{ i }}; while [ ! -e release ]; do sleep 0.05; done; echo item {{ i }} done"]
    resources { cpu = 1, memory = 64Mi }
  }
}
"""

BOUND = 120.0
"""Seconds after which a wait that should have ended fails the test."""


def mlc_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "mlc", *args]


def environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLC_")}
    env["MLC_LOCAL_GPUS"] = ""
    env["MLC_IR_CACHE"] = "0"
    return env


def wait_for_a_start(project: Path, apply: subprocess.Popen[str]) -> int:
    """The item that started first."""
    deadline = time.monotonic() + BOUND
    while time.monotonic() < deadline:
        started = sorted(project.glob("started-*"))
        if started:
            return int(started[0].name.removeprefix("started-"))
        assert apply.poll() is None, apply.communicate()
        time.sleep(0.05)
    raise AssertionError("no item started")


def test_following_an_item_that_has_not_started_waits_for_it_then_follows_it(
    tmp_path: Path,
) -> None:
    (tmp_path / "pipeline.mlspec").write_text(SPEC)
    env = environment()
    apply = subprocess.Popen(
        mlc_command("apply", "pipeline.mlspec"),
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    follower: subprocess.Popen[str] | None = None
    try:
        first = wait_for_a_start(tmp_path, apply)
        waiting = f"work[{1 - first}]"
        runs = subprocess.run(
            mlc_command("runs", "--format", "json"),
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=BOUND,
        )
        (run,) = json.loads(runs.stdout)
        assert run["status"] == "running"
        run_id = run["run_id"]

        once = subprocess.run(
            mlc_command("logs", run_id, waiting),
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=BOUND,
        )
        assert once.returncode == 1
        assert once.stderr == (
            f"error: `{waiting}` of run `{run_id}` has not started yet (the run is still "
            f"going): `mlc logs -f {run_id} {waiting}` follows it once it runs\n"
        )

        follower = subprocess.Popen(
            mlc_command("logs", "-f", run_id, waiting),
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert follower.stderr is not None
        assert follower.stderr.readline() == (
            f"note: `{waiting}` of run `{run_id}` has not started yet; waiting for it to "
            "start, then following it (Ctrl-C to stop)\n"
        )
        assert follower.poll() is None  # still waiting: the item cannot start yet

        (tmp_path / "release").touch()
        out, err = follower.communicate(timeout=BOUND)
        assert follower.returncode == 0, err
        assert f"started {1 - first}\n" in out
        assert out.endswith(f"item {1 - first} done\n")
        assert f"item {first}" not in out
        assert apply.wait(timeout=BOUND) == 0
    finally:
        for process in (follower, apply):
            if process is not None and process.poll() is None:
                process.kill()
                process.communicate()
