"""Runs submitted to a Ray cluster through the Jobs API (`address = "http://HEAD:8265"`): the
driver runs on the cluster as one Ray Job, and `mlc apply` follows it.

One head with the dashboard (which the Jobs API needs) for this module.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.ray.cluster import RayHead
from tests.ray.plugin import S3_CREDENTIALS
from tests.ray.test_ray_backend import (
    MLC,
    apply,
    environ,
    project,
    start_apply,
    steps,
    wait_for_note,
)
from tests.store.conftest import S3Server, s3_server  # noqa: F401 (the fixture)

pytestmark = [pytest.mark.ray, pytest.mark.slow]

CHAIN = """
  step first {
    call = "steps:slow_note"
    args { state = "state", name = "first", seconds = 0 }
    outputs { out: file }
  }
  step second {
    run = "cat {{ inputs.data }}"
    inputs { data = first.out }
  }"""


@pytest.fixture(scope="module")
def jobs_cluster() -> Iterator[RayHead]:
    head = RayHead(environ=S3_CREDENTIALS, dashboard=True)
    head.start()
    try:
        yield head
    finally:
        head.stop()


def jobs_target(cluster: RayHead) -> str:
    return f'target ray {{\n  backend = ray\n  address = "{cluster.jobs_address}"\n}}\n'


def test_a_run_submitted_as_a_ray_job_is_followed_to_its_report(
    jobs_cluster: RayHead, tmp_path: Path
) -> None:
    spec = project(
        tmp_path, CHAIN, jobs_target(jobs_cluster) + "target laptop { backend = local }\n"
    )
    store = str(tmp_path / "store")
    env = environ(jobs_cluster)
    code, report = apply(spec, store, env)
    assert code == 0, report
    assert {n: s["status"] for n, s in steps(report).items()} == {"first": "ran", "second": "ran"}
    runs = json.loads(
        subprocess.run(
            [*MLC, "runs", "--store", store, "--format", "json"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    assert [(r["run_id"], r["backend"], r["status"]) for r in runs] == [
        (report["run_id"], "ray", "succeeded")  # the job's submission id is the run id
    ]
    code, again = apply(spec, store, env, target="laptop")
    assert [s["status"] for s in again["steps"]] == ["cached", "cached"]


def test_a_detached_run_goes_on_without_mlc_apply(jobs_cluster: RayHead, tmp_path: Path) -> None:
    spec = project(tmp_path, CHAIN, jobs_target(jobs_cluster))
    store = str(tmp_path / "store")
    env = environ(jobs_cluster)
    code, report = apply(spec, store, env, "--detach")
    assert (code, report["status"]) == (0, "submitted")
    deadline = time.monotonic() + 120
    while True:
        runs = subprocess.run(
            [*MLC, "runs", "--store", store, "--format", "json"],
            env=env,
            capture_output=True,
            text=True,
        )
        found = {r["run_id"]: r["status"] for r in json.loads(runs.stdout or "[]")}
        if found.get(report["run_id"]) == "succeeded":
            break
        assert time.monotonic() < deadline, f"the detached run did not finish: {found}"
        time.sleep(0.5)


def test_applying_again_while_the_job_runs_follows_it_instead_of_submitting_another(
    jobs_cluster: RayHead, tmp_path: Path
) -> None:
    # The first `mlc apply` is gone (detached here; killed is the same to the cluster) while
    # its job runs: the step holds until the test releases it.
    state = tmp_path / "notes"
    state.mkdir()
    body = f"""
  step held {{
    call = "steps:hold"
    args {{ state = "{state}", name = "held" }}
    outputs {{ out: file }}
  }}"""
    spec = project(tmp_path, body, jobs_target(jobs_cluster))
    store = str(tmp_path / "store")
    env = environ(jobs_cluster)
    code, first = apply(spec, store, env, "--detach")
    assert (code, first["status"]) == (0, "submitted")
    again = start_apply(spec, store, env, stdout=subprocess.PIPE)
    try:
        assert again.stderr is not None
        said = ""
        while "following it" not in said:
            line = again.stderr.readline()
            assert line, f"mlc apply ended without following the job:\n{said}"
            said += line
        assert f"run {first['run_id']}" in said
        (state / "held.release").write_text("x")
        out, err = again.communicate(timeout=240)
    finally:
        (state / "held.release").write_text("x")
        if again.poll() is None:
            again.kill()
    assert again.returncode == 0, err
    report = json.loads(out)
    assert (report["run_id"], report["status"]) == (first["run_id"], "succeeded")
    assert steps(report)["held"]["status"] == "ran"
    runs = subprocess.run(
        [*MLC, "runs", "--store", store, "--format", "json"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert [r["run_id"] for r in json.loads(runs.stdout)] == [first["run_id"]]  # no second job


def test_what_the_driver_refuses_before_running_is_an_error_here(
    jobs_cluster: RayHead, tmp_path: Path
) -> None:
    body = """
  step needs_secret {
    run = "true"
    secrets { TOKEN = "vault/token" }
  }"""
    spec = project(tmp_path, body, jobs_target(jobs_cluster))
    done = subprocess.run(
        [*MLC, "apply", str(spec), "--target", "ray", "--store", str(tmp_path / "store")],
        env=environ(jobs_cluster),
        cwd=spec.parent,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 1
    assert "error: secrets are missing from the environment" in done.stderr
    assert "MLC_SECRET_VAULT_TOKEN" in done.stderr
    assert "Traceback" not in done.stderr


def test_ctrl_c_stops_the_job_and_the_run_is_cancelled(
    jobs_cluster: RayHead, tmp_path: Path
) -> None:
    # The job runs in a copy of the project on the cluster: the step leaves its note where the
    # test can see it, by an absolute path.
    state = tmp_path / "notes"
    state.mkdir()
    body = f"""
  step long {{
    call = "steps:slow_note"
    args {{ state = "{state}", name = "long", seconds = 120 }}
    outputs {{ out: file }}
  }}"""
    spec = project(tmp_path, body, jobs_target(jobs_cluster))
    client = start_apply(
        spec, str(tmp_path / "store"), environ(jobs_cluster), stdout=subprocess.PIPE
    )
    wait_for_note(state / "long.started", client)
    client.send_signal(signal.SIGINT)
    out, err = client.communicate(timeout=120)
    assert client.returncode == 130, err
    report = json.loads(out)
    assert (report["status"], report["steps"][0]["status"]) == ("cancelled", "cancelled")


def test_compile_writes_a_job_that_ray_job_submit_runs(
    jobs_cluster: RayHead,
    s3_server: S3Server,  # noqa: F811
    tmp_path: Path,
) -> None:
    store = f"s3://{s3_server.bucket}/jobs-{uuid.uuid4().hex}"
    target = f"""target ray {{
  backend = ray
  address = "{jobs_cluster.jobs_address}"
  store = "{store}"
  ray {{
    runtime_env = {{ env_vars = {{ "AWS_ENDPOINT_URL" = "{s3_server.endpoint}" }} }}
  }}
}}

target laptop {{
  backend = local
  store = "{store}"
}}
"""
    spec = project(tmp_path, CHAIN, target)
    env = environ(
        jobs_cluster,
        AWS_ENDPOINT_URL=s3_server.endpoint,
        AWS_DEFAULT_REGION="us-east-1",
        PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        **S3_CREDENTIALS,
    )
    compiled = subprocess.run(
        [*MLC, "compile", str(spec), "--target", "ray", "--output", "build/ray"],
        env=env,
        cwd=spec.parent,
        capture_output=True,
        text=True,
    )
    assert compiled.returncode == 0, compiled.stderr
    build = spec.parent / "build" / "ray"
    assert sorted(p.name for p in build.iterdir()) == [
        "pipeline.ir.json",
        "runtime_env.json",
        "submit.sh",
    ]
    submitted = subprocess.run(
        [str(build / "submit.sh")], env=env, capture_output=True, text=True, timeout=300
    )
    assert submitted.returncode == 0, submitted.stdout + submitted.stderr
    assert "succeeded" in submitted.stdout  # the driver's events, as the job's log
    code, report = apply(spec, store, env, target="laptop")
    assert code == 0, report
    assert [s["status"] for s in report["steps"]] == ["cached", "cached"]
