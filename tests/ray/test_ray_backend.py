"""The Ray backend on a real Ray cluster (`ray_cluster`): placement, GPU isolation, timeouts
and failures kept by mlc, steps that wait for a busy cluster, and a run that resumes on Ray
and is cached on the local backend.

Every run is a real `mlc apply` process, the Ray driver; the cluster is one `ray start --head`
with 2 CPUs, 2 fake GPUs and `accelerator_type:T4`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from mlc.store import open_store, parse_digest

from tests.ray.cluster import RayHead
from tests.store.conftest import S3Server, s3_server  # noqa: F401 (the fixture)

MLC = [sys.executable, "-m", "mlc"]
STEPS = """
import os, signal, time
from pathlib import Path

def visible(out):
    out.write_text(os.environ.get("CUDA_VISIBLE_DEVICES", "<unset>"))

def crash_once(out, state: str):
    marker = Path(state) / "crashed"
    if not marker.exists():
        marker.write_text("x")
        os.kill(os.getpid(), signal.SIGKILL)
    out.write_text("survived")

def nap(out, seconds: float):
    time.sleep(seconds)
    out.write_text("woke")

def chatty(out, state: str):
    print("hello from the step", flush=True)
    (Path(state) / "chatty.started").write_text("x")
    deadline = time.monotonic() + 60
    while not (Path(state) / "chatty.release").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    out.write_text("done")

def hold(out, state: str, name: str):
    (Path(state) / (name + ".started")).write_text("x")
    deadline = time.monotonic() + 120
    while not (Path(state) / (name + ".release")).exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    out.write_text(name)

def slow_note(out, state: str, name: str, seconds: float, data=None):
    with open(Path(state) / "runs", "a") as runs:
        runs.write(name + "\\n")
    (Path(state) / (name + ".started")).write_text("x")
    time.sleep(seconds)
    out.write_text(name)
"""


def project(tmp_path: Path, body: str, target: str) -> Path:
    """A spec directory: `steps.py`, `state/`, and `pipeline.mlspec` (`body` + `target`)."""
    work = tmp_path / "spec"
    (work / "state").mkdir(parents=True)
    (work / "steps.py").write_text(STEPS)
    spec = work / "pipeline.mlspec"
    spec.write_text(f"mlspec 1\n\npipeline p {{\n{body}\n}}\n\n{target}\n")
    return spec


def ray_target(cluster: RayHead, extra: str = "") -> str:
    return f'target ray {{\n  backend = ray\n  address = "{cluster.address}"\n{extra}}}\n'


def environ(cluster: RayHead, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLC_", "RAY_"))}
    env.update(cluster.driver_environ())
    env.update({"MLC_IR_CACHE": "0", "MLC_KILL_GRACE_SECONDS": "1"}, **extra)
    return env


def apply(
    spec: Path, store: str, env: dict[str, str], *args: str, target: str = "ray"
) -> tuple[int, dict[str, Any]]:
    done = subprocess.run(
        [*MLC, "apply", str(spec), "--target", target, "--store", store, "--format", "json", *args],
        env=env,
        cwd=spec.parent,
        capture_output=True,
        text=True,
        timeout=300,
    )
    try:
        report = json.loads(done.stdout)
    except json.JSONDecodeError:
        raise AssertionError(
            f"no report (exit {done.returncode}):\n{done.stdout}\n{done.stderr}"
        ) from None
    return done.returncode, report


def start_apply(
    spec: Path, store: str, env: dict[str, str], *, stdout: int = subprocess.DEVNULL
) -> subprocess.Popen[str]:
    """`mlc apply --target ray --format json` in the background (its stderr in a pipe)."""
    return subprocess.Popen(
        [*MLC, "apply", str(spec), "--target", "ray", "--store", store, "--format", "json"],
        env=env,
        cwd=spec.parent,
        stdout=stdout,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_note(note: Path, driver: subprocess.Popen[str], timeout: float = 120.0) -> None:
    """Waits until a step leaves `note`, failing with the driver's errors if it ends first."""
    deadline = time.monotonic() + timeout
    while not note.exists():
        if driver.poll() is not None or time.monotonic() > deadline:
            driver.kill()
            raise AssertionError(f"no `{note.name}` from the step:\n{driver.communicate()[1]}")
        time.sleep(0.1)


def steps(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {step["name"]: step for step in report["steps"]}


def read(store: str, digest: str) -> str:
    opened = open_store(store)
    try:
        with opened.open_bytes(parse_digest(digest)) as data:
            return data.read().decode()
    finally:
        opened.close()


pytestmark = pytest.mark.ray


def test_cpu_steps_see_no_gpu_and_gpu_steps_their_own(ray_cluster: RayHead, tmp_path: Path) -> None:
    body = """
  step cpu {
    call = "steps:visible"
    outputs { out: file }
  }
  step gpu {
    call = "steps:visible"
    outputs { out: file }
    resources { gpu = 1 of "t4" }
  }
  step both {
    call = "steps:visible"
    outputs { out: file }
    resources { gpu = 2 of "t4" }
  }"""
    spec = project(tmp_path, body, ray_target(ray_cluster, '  accelerators { "t4" = "T4" }\n'))
    store = str(tmp_path / "store")
    env = environ(ray_cluster)
    code, report = apply(spec, store, env)
    assert code == 0, report
    ran = steps(report)
    seen = {name: read(store, ran[name]["outputs"]["out"]) for name in ran}
    assert seen["cpu"] == ""
    assert seen["gpu"] in {"0", "1"}
    assert sorted(seen["both"].split(",")) == ["0", "1"]


def test_a_request_no_node_can_satisfy_fails_at_once_without_retries(
    ray_cluster: RayHead, tmp_path: Path
) -> None:
    body = """
  step big {
    call = "steps:visible"
    outputs { out: file }
    resources { gpu = 1 of "a100-80gb" }
    retries = 3
  }"""
    target = ray_target(ray_cluster, '  accelerators { "a100-80gb" = "A100-80G" }\n')
    spec = project(tmp_path, body, target)
    code, report = apply(spec, str(tmp_path / "store"), environ(ray_cluster))
    assert code == 1
    big = steps(report)["big"]
    assert (big["status"], big["attempts"]) == ("failed", 1)
    assert "accelerator_type:A100-80G, which no node of the Ray cluster" in big["error"]
    assert "accelerator_type:T4" in big["error"]  # what the cluster has


def test_timeouts_are_kept_for_commands_and_calls(ray_cluster: RayHead, tmp_path: Path) -> None:
    body = """
  step command {
    run = "sleep 60"
    timeout = 2s
  }
  step function {
    call = "steps:nap"
    args { seconds = 60 }
    outputs { out: file }
    timeout = 2s
  }"""
    spec = project(tmp_path, body, ray_target(ray_cluster))
    started = time.monotonic()
    code, report = apply(spec, str(tmp_path / "store"), environ(ray_cluster), "--keep-going")
    assert code == 1
    assert time.monotonic() - started < 50  # far below the 60 s the steps would sleep
    for name in ("command", "function"):
        step = steps(report)[name]
        assert (step["status"], step["error"]) == ("failed", "timed out after 2s"), step


def test_a_worker_killed_mid_step_is_retried_by_mlc(ray_cluster: RayHead, tmp_path: Path) -> None:
    body = """
  step fragile {
    call = "steps:crash_once"
    args { state = "state" }
    outputs { out: file }
    retries = 1
    backoff = 1s
  }"""
    spec = project(tmp_path, body, ray_target(ray_cluster))
    code, report = apply(spec, str(tmp_path / "store"), environ(ray_cluster))
    assert code == 0, report
    fragile = steps(report)["fragile"]
    assert (fragile["status"], fragile["attempts"]) == ("ran", 2)


def test_a_killed_driver_is_resumed_without_running_finished_steps_again(
    ray_cluster: RayHead, tmp_path: Path
) -> None:
    body = """
  step first {
    call = "steps:slow_note"
    args { state = "state", name = "first", seconds = 0 }
    outputs { out: file }
  }
  step second {
    call = "steps:slow_note"
    args { state = "state", name = "second", seconds = 30 }
    inputs { data = first.out }
    outputs { out: file }
  }"""
    spec = project(tmp_path, body, ray_target(ray_cluster))
    store = str(tmp_path / "store")
    env = environ(ray_cluster)
    state = spec.parent / "state"
    driver = start_apply(spec, store, env)
    wait_for_note(state / "second.started", driver)
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    (state / "second.started").unlink()
    code, report = apply(spec, store, env)
    assert code == 0, report
    assert {n: s["status"] for n, s in steps(report).items()} == {
        "first": "cached",
        "second": "ran",
    }
    assert (state / "runs").read_text().splitlines().count("first") == 1


def test_a_run_on_ray_is_cached_on_the_local_backend_with_a_shared_s3_store(
    ray_cluster: RayHead,
    s3_server: S3Server,  # noqa: F811
    tmp_path: Path,
) -> None:
    body = """
  step make {
    call = "steps:visible"
    outputs { out: file }
  }
  step copy {
    run = "cp {{ inputs.data }} {{ outputs.out }}"
    inputs { data = make.out }
    outputs { out: file }
  }"""
    spec = project(
        tmp_path, body, ray_target(ray_cluster) + "\ntarget laptop { backend = local }\n"
    )
    store = f"s3://{s3_server.bucket}/ray-{uuid.uuid4().hex}"
    env = environ(
        ray_cluster,
        AWS_ENDPOINT_URL=s3_server.endpoint,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-east-1",
    )
    code, on_ray = apply(spec, store, env)
    assert code == 0, on_ray
    assert [s["status"] for s in on_ray["steps"]] == ["ran", "ran"]
    code, on_laptop = apply(spec, store, env, target="laptop")
    assert code == 0, on_laptop
    assert [s["status"] for s in on_laptop["steps"]] == ["cached", "cached"]
    for ray_step, local_step in zip(on_ray["steps"], on_laptop["steps"], strict=True):
        assert ray_step["cache_key"] == local_step["cache_key"]
        assert ray_step["outputs"] == local_step["outputs"]


def test_the_log_of_a_step_running_on_ray_can_be_read_before_it_ends(
    ray_cluster: RayHead, tmp_path: Path
) -> None:
    body = """
  step chatty {
    call = "steps:chatty"
    args { state = "state" }
    outputs { out: file }
  }"""
    spec = project(tmp_path, body, ray_target(ray_cluster))
    store = str(tmp_path / "store")
    env = environ(ray_cluster)
    state = spec.parent / "state"
    driver = start_apply(spec, store, env, stdout=subprocess.PIPE)
    try:
        wait_for_note(state / "chatty.started", driver)
        runs = subprocess.run(
            [*MLC, "runs", "--store", store, "--format", "json"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        (run,) = json.loads(runs.stdout)
        assert (run["status"], run["backend"]) == ("running", "ray")
        logs = subprocess.run(
            [*MLC, "logs", run["run_id"], "chatty", "--store", store],
            env=env,
            capture_output=True,
            text=True,
        )
        assert logs.returncode == 0, logs.stderr
        assert "hello from the step" in logs.stdout
        assert "is still running" in logs.stderr
    finally:
        (state / "chatty.release").write_text("x")
        out, _ = driver.communicate(timeout=120)
    report = json.loads(out)
    assert report["status"] == "succeeded"
    stored = subprocess.run(
        [*MLC, "logs", report["run_id"], "chatty", "--store", store],
        env=env,
        capture_output=True,
        text=True,
    )
    assert "hello from the step" in stored.stdout  # and, once it ended, from the store


T4 = '  accelerators { "t4" = "T4" }\n'
HOG = """
  step hog {
    call = "steps:hold"
    args { state = "state", name = "hog" }
    outputs { out: file }
    resources { gpu = 2 of "t4" }
  }"""
"""A step that holds both GPUs of the cluster until the test releases it."""


def read_until(driver: subprocess.Popen[str], text: str, timeout: float = 120.0) -> list[str]:
    """The driver's output lines until one contains `text` (failing if it ends first)."""
    assert driver.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = driver.stdout.readline()
        if not line:
            break
        lines.append(line)
        if text in line:
            return lines
    driver.kill()
    raise AssertionError(f"no `{text}` in the output:\n{''.join(lines)}{driver.communicate()[1]}")


def human_apply(spec: Path, store: str, env: dict[str, str]) -> subprocess.Popen[str]:
    """`mlc apply --target ray` with its line-per-change progress on stdout."""
    return subprocess.Popen(
        [*MLC, "apply", str(spec), "--target", "ray", "--store", store],
        env=env,
        cwd=spec.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_a_step_waiting_for_a_busy_cluster_says_why_and_its_timeout_counts_only_running_time(
    ray_cluster: RayHead, tmp_path: Path
) -> None:
    env = environ(ray_cluster)
    hog_spec = project(tmp_path / "hog", HOG, ray_target(ray_cluster, T4))
    hog = start_apply(hog_spec, str(tmp_path / "hog-store"), env)
    released = hog_spec.parent / "state" / "hog.release"
    try:
        wait_for_note(hog_spec.parent / "state" / "hog.started", hog)
        body = """
  step late {
    call = "steps:nap"
    args { seconds = 1 }
    outputs { out: file }
    resources { gpu = 1 of "t4" }
    timeout = 3s
  }"""
        spec = project(tmp_path / "late", body, ray_target(ray_cluster, T4))
        late = human_apply(spec, str(tmp_path / "store"), env)
        lines = read_until(late, "waiting for a Ray node")
        note = lines[-1]
        assert "it asks for 1 CPU, 1 GPU, accelerator_type:T4" in note, note
        assert "0 GPUs" in note and "free now" in note, note  # what the cluster has
        time.sleep(2.5)  # it has now waited longer than its timeout, without running
        released.write_text("x")
        out, err = late.communicate(timeout=120)
        assert late.returncode == 0, "".join(lines) + out + err
        assert "late: ran" in out
    finally:
        released.write_text("x")
        hog.communicate(timeout=120)
    assert hog.returncode == 0


def test_a_step_still_waiting_after_the_pending_timeout_fails_saying_what_the_cluster_has(
    ray_cluster: RayHead, tmp_path: Path
) -> None:
    env = environ(ray_cluster)
    hog_spec = project(tmp_path / "hog", HOG, ray_target(ray_cluster, T4))
    hog = start_apply(hog_spec, str(tmp_path / "hog-store"), env)
    released = hog_spec.parent / "state" / "hog.release"
    try:
        wait_for_note(hog_spec.parent / "state" / "hog.started", hog)
        body = """
  step late {
    call = "steps:visible"
    outputs { out: file }
    resources { gpu = 1 of "t4" }
    retries = 1
    backoff = 1s
  }"""
        target = ray_target(ray_cluster, T4 + "  ray { pending_timeout = 3s }\n")
        spec = project(tmp_path / "late", body, target)
        code, report = apply(spec, str(tmp_path / "store"), env)
    finally:
        released.write_text("x")
        hog.communicate(timeout=120)
    assert code == 1, report
    late = steps(report)["late"]
    # A node could hold it (the cluster was busy): it was retried, and waited in vain again.
    assert (late["status"], late["attempts"]) == ("failed", 2), late
    assert late["error"].startswith("it waited 3s for a Ray node (`pending_timeout`): "), late
    assert "it asks for 1 CPU, 1 GPU, accelerator_type:T4" in late["error"]
    assert "0 GPUs free now" in late["error"]


def test_a_pending_timeout_that_is_not_a_duration_is_refused_before_anything_runs(
    ray_cluster: RayHead, tmp_path: Path
) -> None:
    body = """
  step one {
    call = "steps:visible"
    outputs { out: file }
  }"""
    target = ray_target(ray_cluster, '  ray { pending_timeout = "soon" }\n')
    spec = project(tmp_path, body, target)
    done = subprocess.run(
        [*MLC, "apply", str(spec), "--target", "ray", "--store", str(tmp_path / "store")],
        env=environ(ray_cluster),
        cwd=spec.parent,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "`pending_timeout = soon` is not a duration above zero" in done.stdout + done.stderr


def test_with_a_pending_timeout_a_request_no_node_has_waits_for_one_then_fails_without_retries(
    ray_cluster: RayHead, tmp_path: Path
) -> None:
    body = """
  step big {
    call = "steps:visible"
    outputs { out: file }
    resources { gpu = 1 of "a100-80gb" }
    retries = 3
  }"""
    extra = '  accelerators { "a100-80gb" = "A100-80G" }\n  ray { pending_timeout = 3s }\n'
    spec = project(tmp_path, body, ray_target(ray_cluster, extra))
    code, report = apply(spec, str(tmp_path / "store"), environ(ray_cluster))
    assert code == 1
    big = steps(report)["big"]
    # It waited (an autoscaler could have added such a node), then failed, not retried.
    assert (big["status"], big["attempts"]) == ("failed", 1), big
    assert big["error"].startswith("it waited 3s for a Ray node (`pending_timeout`): "), big
    assert "accelerator_type:A100-80G, which no live node of the Ray cluster" in big["error"]
    assert "accelerator_type:T4" in big["error"]  # what the cluster has
