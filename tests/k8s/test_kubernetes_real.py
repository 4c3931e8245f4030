"""The Kubernetes backend end to end: pods on the real test node run mlc's step runtime.

Containers really start (containerd and a kubelet, `node.py`), import mlc from the mounted
repository, fetch inputs from the S3 test server, run the step, put outputs back and report
through their termination message. What they leave in the store is the same as a local run's:
a local apply on the same store afterwards is all cache hits.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.k8s.cluster import ControlPlane
from tests.k8s.real_target import (
    client_environ,
    create_store_secret,
    real_target,
    write_pod_template,
)
from tests.store.conftest import S3Server, s3_server

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

__all__ = ["s3_server"]

pytestmark = [pytest.mark.k8s, pytest.mark.k8s_real]

REPOSITORY = Path(__file__).resolve().parents[2]
MLC = [sys.executable, "-m", "mlc"]
TIMEOUT_S = 300.0


def mlc(
    args: list[str], cwd: Path, env: dict[str, str], timeout: float = TIMEOUT_S
) -> tuple[int, Any, str]:
    completed = subprocess.run(
        [*MLC, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert "Traceback" not in completed.stderr, completed.stderr
    try:
        report = json.loads(completed.stdout) if completed.stdout.strip() else None
    except json.JSONDecodeError:
        report = completed.stdout
    return completed.returncode, report, completed.stderr


@pytest.fixture
def cluster_env(
    kube_cluster: ControlPlane, kube_client: ApiClient, kube_namespace: str, s3_server: S3Server
) -> dict[str, str]:
    create_store_secret(kube_client, kube_namespace)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLC_", "AWS_"))}
    env.update(client_environ(kube_cluster.kubeconfig, s3_server))
    env.update(MLC_IR_CACHE="0", MLC_KILL_GRACE_SECONDS="2")
    return env


def test_the_quickstart_runs_as_jobs_and_a_local_apply_then_finds_it_all_cached(
    tmp_path: Path, kube_namespace: str, s3_server: S3Server, cluster_env: dict[str, str]
) -> None:
    spec_dir = tmp_path / "quickstart"
    shutil.copytree(REPOSITORY / "examples" / "quickstart", spec_dir)
    template = write_pod_template(tmp_path, tmp_path)
    spec = spec_dir / "pipeline.mlspec"
    spec.write_text(spec.read_text() + "\n" + real_target("cluster", kube_namespace, template))
    store = f"s3://{s3_server.bucket}/{uuid.uuid4().hex}"

    code, report, stderr = mlc(
        ["apply", "pipeline.mlspec", "--target", "cluster", "--store", store, "--format", "json"],
        spec_dir,
        cluster_env,
    )
    assert code == 0, f"{report}\n{stderr}"
    statuses = {s["name"]: s["status"] for s in report["steps"]}
    assert statuses == {"prepare": "ran", "train": "ran", "evaluate": "ran", "register": "ran"}

    code, again, stderr = mlc(
        ["apply", "pipeline.mlspec", "--target", "laptop", "--store", store, "--format", "json"],
        spec_dir,
        cluster_env,
    )
    assert code == 0, stderr
    assert {s["name"]: s["status"] for s in again["steps"]} == {name: "cached" for name in statuses}

    code, _log, stderr = mlc(
        ["logs", report["run_id"], "train", "--store", store], spec_dir, cluster_env
    )
    assert code == 0, stderr


def test_an_image_that_cannot_be_pulled_is_shown_then_fails_with_the_kubelets_message(
    tmp_path: Path, kube_namespace: str, s3_server: S3Server, cluster_env: dict[str, str]
) -> None:
    template = write_pod_template(tmp_path, tmp_path)
    spec = tmp_path / "pipeline.mlspec"
    spec.write_text(
        "mlspec 1\n\npipeline p {\n"
        '  step missing {\n    image = "registry.invalid/mlc/missing:1"\n    run = "true"\n  }\n'
        '  step malformed {\n    image = "UPPER/Case::bad"\n    run = "true"\n  }\n'
        "}\n\n" + real_target("cluster", kube_namespace, template, "    image_pull_timeout = 5\n")
    )
    store = f"s3://{s3_server.bucket}/{uuid.uuid4().hex}"
    code, report, stderr = mlc(
        [
            "apply",
            "pipeline.mlspec",
            "--target",
            "cluster",
            "--store",
            store,
            "--format",
            "json",
            "--keep-going",
        ],
        tmp_path,
        cluster_env,
    )
    assert code == 1, stderr
    steps = {s["name"]: s for s in report["steps"]}
    assert steps["malformed"]["error"].startswith("its image cannot be used: InvalidImageName")
    missing = steps["missing"]["error"]
    assert missing.startswith("its container could not start within 5s: "), missing
    assert "registry.invalid/mlc/missing:1" in missing


CHATTY = """
import time
from pathlib import Path

def chatty(out, state: str):
    print("hello from the pod", flush=True)
    (Path(state) / "started").write_text("x")
    deadline = time.monotonic() + 60
    while not (Path(state) / "release").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    out.write_text("done")
"""


def test_mlc_logs_shows_a_running_steps_log_from_its_pod(
    tmp_path: Path, kube_namespace: str, s3_server: S3Server, cluster_env: dict[str, str]
) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (tmp_path / "steps.py").write_text(CHATTY)
    template = write_pod_template(tmp_path, tmp_path)
    (tmp_path / "pipeline.mlspec").write_text(
        "mlspec 1\n\npipeline p {\n"
        f'  step chatty {{\n    call = "steps:chatty"\n    args {{ state = "{state}" }}\n'
        "    outputs { out: file }\n  }\n}\n\n" + real_target("cluster", kube_namespace, template)
    )
    store = f"s3://{s3_server.bucket}/{uuid.uuid4().hex}"
    apply = subprocess.Popen(
        [*MLC, "apply", "pipeline.mlspec", "--target", "cluster", "--store", store],
        cwd=tmp_path,
        env=cluster_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not (state / "started").exists():
            assert time.monotonic() < deadline and apply.poll() is None, apply.communicate()
            time.sleep(0.2)
        code, runs, stderr = mlc(
            ["runs", "--store", store, "--format", "json"], tmp_path, cluster_env
        )
        assert code == 0, stderr
        (run,) = runs
        code, log, stderr = mlc(
            ["logs", run["run_id"], "chatty", "--store", store], tmp_path, cluster_env
        )
        assert code == 0, stderr
        assert "hello from the pod" in log
        assert "is still running" in stderr
    finally:
        (state / "release").write_text("x")
        _stdout, stderr = apply.communicate(timeout=TIMEOUT_S)
    assert apply.returncode == 0, stderr
