"""The Kubernetes backend against the test control plane's fake (kwok) nodes.

Every run is a real `mlc apply` process against the real API server, scheduler and Job
controller. kwok plays the kubelet: annotations on the pod template (set through the target's
`annotations`) say how each pod ends, with which exit code and termination message (see
`stages.yaml`). Pods that must really run mlc's runtime are in `test_kubernetes_real.py`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.k8s.cluster import ControlPlane
from tests.store.conftest import S3Server, s3_server

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

__all__ = ["s3_server"]  # the S3 test server's fixture, used here too

pytestmark = pytest.mark.k8s

MLC = [sys.executable, "-m", "mlc"]
APPLY_TIMEOUT_S = 120.0
#: What a pod's runtime writes when its attempt succeeded and produced no outputs.
SUCCESS = json.dumps(
    {
        "collected": {"outputs": {}, "error": None},
        "result": {"exit_code": 0, "error": None, "timed_out": False, "peak_memory_bytes": None},
        "log": {},
        "host": "kwok",
    }
)


def failure(exit_code: int) -> str:
    """What a pod's runtime writes when the step's command exited with `exit_code`."""
    return json.dumps(
        {
            "collected": {"outputs": None, "error": None},
            "result": {"exit_code": exit_code, "error": None, "timed_out": False},
            "log": {},
            "host": "kwok",
        }
    )


def target(namespace: str, **settings: Any) -> str:
    """A Kubernetes target on the test cluster whose pods end as `settings["annotations"]`
    say (kwok), for steps with no outputs."""
    annotations = {"mlc.test/termination-message": SUCCESS, **settings.pop("annotations", {})}
    settings = {"image": "registry.invalid/mlc/step:1", "annotations": annotations, **settings}
    lines = "\n".join(f"    {key} = {_value(value)}" for key, value in settings.items())
    return (
        f'target k8s {{\n  backend = kubernetes\n  namespace = "{namespace}"\n'
        f'  accelerators {{\n    "a100-80gb" = "NVIDIA-A100-SXM4-80GB"\n    "t4" = "Tesla-T4"\n  }}\n'
        f"  kubernetes {{\n{lines}\n  }}\n}}\n"
    )


def _value(value: Any) -> str:
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{json.dumps(k)} = {_value(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    return json.dumps(value)


def write_spec(tmp_path: Path, steps: str, target_text: str) -> Path:
    spec = tmp_path / "pipeline.mlspec"
    spec.write_text(f"mlspec 1\n\npipeline p {{\n{steps}\n}}\n\n{target_text}\n")
    return spec


def environ(cluster: ControlPlane, s3: S3Server, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLC_", "AWS_"))}
    env.update(
        KUBECONFIG=str(cluster.kubeconfig),
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_ENDPOINT_URL=s3.endpoint,
        MLC_IR_CACHE="0",
        MLC_KILL_GRACE_SECONDS="1",
    )
    env.update(extra)
    return env


class Runner:
    """`mlc apply` of one spec against the test cluster and a fresh S3 prefix."""

    def __init__(self, tmp_path: Path, cluster: ControlPlane, s3: S3Server) -> None:
        self.tmp_path = tmp_path
        self.store = f"s3://{s3.bucket}/{uuid.uuid4().hex}"
        self.env = environ(cluster, s3)

    def args(self, spec: Path, *options: str) -> list[str]:
        return [
            *MLC,
            "apply",
            str(spec),
            "--target",
            "k8s",
            "--store",
            self.store,
            "--format",
            "json",
            *options,
        ]

    def start(self, spec: Path, *options: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            self.args(spec, *options),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=self.env,
            cwd=spec.parent,
        )

    def finish(self, process: subprocess.Popen[str]) -> tuple[int, dict[str, Any], str]:
        try:
            stdout, stderr = process.communicate(timeout=APPLY_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            stdout, stderr = process.communicate()
            raise AssertionError(f"mlc apply did not end:\n{stdout}\n{stderr}") from None
        assert "Traceback" not in stderr, stderr
        try:
            report = json.loads(stdout)
        except json.JSONDecodeError:
            raise AssertionError(f"no report ({process.returncode}):\n{stdout}\n{stderr}") from None
        return process.returncode, report, stderr

    def apply(self, spec: Path, *options: str) -> tuple[int, dict[str, Any], str]:
        return self.finish(self.start(spec, *options))


@pytest.fixture
def runner(tmp_path: Path, kube_cluster: ControlPlane, s3_server: S3Server) -> Runner:
    return Runner(tmp_path, kube_cluster, s3_server)


def steps_of(report: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {step["name"]: step for step in report["steps"]}


def jobs(client: ApiClient, namespace: str) -> list[Any]:
    from kubernetes.client import BatchV1Api

    return list(BatchV1Api(client).list_namespaced_job(namespace).items)


def wait_for_jobs(client: ApiClient, namespace: str, seconds: float = 60.0) -> list[Any]:
    """The namespace's Jobs, once there is one (fails after `seconds` without any)."""
    deadline = time.monotonic() + seconds
    while not (made := jobs(client, namespace)):
        assert time.monotonic() < deadline, f"no Job was created within {seconds:g}s"
        time.sleep(0.1)
    return made


def pods(client: ApiClient, namespace: str) -> list[Any]:
    from kubernetes.client import CoreV1Api

    return list(CoreV1Api(client).list_namespaced_pod(namespace).items)


def test_each_step_is_one_job_and_dependents_start_after_their_upstream_pod_ends(
    runner: Runner, kube_client: ApiClient, kube_namespace: str
) -> None:
    spec = write_spec(
        runner.tmp_path,
        'step a { run = "true" }\n  step b { run = "true"\n after = [a] }',
        target(kube_namespace),
    )
    code, report, stderr = runner.apply(spec)
    assert code == 0, stderr
    assert {n: s["status"] for n, s in steps_of(report).items()} == {"a": "ran", "b": "ran"}
    made = jobs(kube_client, kube_namespace)
    assert len(made) == 2
    (a,) = [j for j in made if j.metadata.annotations["mlc.dev/invocation"] == "a"]
    (b,) = [j for j in made if j.metadata.annotations["mlc.dev/invocation"] == "b"]
    assert a.spec.backoff_limit == 0
    assert a.metadata.owner_references[0].kind == "ConfigMap"
    assert b.metadata.creation_timestamp >= a.metadata.creation_timestamp


def test_gpu_steps_land_on_the_node_with_their_gpu_model(
    runner: Runner, kube_client: ApiClient, kube_namespace: str
) -> None:
    spec = write_spec(
        runner.tmp_path,
        'step big { run = "true"\n resources { gpu = 2 of "a100-80gb" } }\n'
        '  step small { run = "true"\n resources { gpu = 1 of "t4" } }\n'
        '  step plain { run = "true" }',
        target(kube_namespace),
    )
    code, _report, stderr = runner.apply(spec)
    assert code == 0, stderr
    nodes = {
        p.metadata.labels["app.kubernetes.io/component"]: p.spec.node_name
        for p in pods(kube_client, kube_namespace)
    }
    assert nodes["big"] == "gpu-a100-0"
    assert nodes["small"] == "gpu-t4-0"
    by_step = {
        p.metadata.labels["app.kubernetes.io/component"]: p
        for p in pods(kube_client, kube_namespace)
    }
    assert by_step["big"].spec.containers[0].resources.limits["nvidia.com/gpu"] == "2"
    plain_env = {e.name: e.value for e in by_step["plain"].spec.containers[0].env}
    assert plain_env["NVIDIA_VISIBLE_DEVICES"] == "void"


def test_an_unschedulable_step_shows_the_scheduler_reason_and_fails_after_pending_timeout(
    runner: Runner, kube_namespace: str
) -> None:
    spec = write_spec(
        runner.tmp_path,
        'step huge { run = "true"\n resources { gpu = 16 of "a100-80gb" } }',
        target(kube_namespace, pending_timeout=3),
    )
    started = time.monotonic()
    code, report, _stderr = runner.apply(spec)
    assert code == 1
    step = steps_of(report)["huge"]
    assert step["status"] == "failed"
    assert "no node could run it within 3s" in step["error"]
    assert "Insufficient nvidia.com/gpu" in step["error"]
    assert "(it asks for cpu 1000m, nvidia.com/gpu 16 on nvidia.com/gpu.product=" in step["error"]
    assert time.monotonic() - started < 60


def test_a_step_whose_pod_fails_keeps_its_exit_code_and_is_retried_as_a_new_job(
    runner: Runner, kube_client: ApiClient, kube_namespace: str
) -> None:
    spec = write_spec(
        runner.tmp_path,
        'step flaky { run = "true"\n retries = 1\n backoff = 1s }',
        target(
            kube_namespace,
            annotations={
                "mlc.test/outcome": "fail",
                "mlc.test/exit-code": "3",
                "mlc.test/termination-message": failure(3),
            },
        ),
    )
    code, report, _stderr = runner.apply(spec)
    assert code == 1
    step = steps_of(report)["flaky"]
    assert step["status"] == "failed"
    assert step["error"] == "exited with code 3"
    attempts = sorted(
        j.metadata.labels["mlc.dev/attempt"] for j in jobs(kube_client, kube_namespace)
    )
    assert attempts == ["1", "2"]


def test_ctrl_c_deletes_the_running_jobs_and_cancels_the_run(
    runner: Runner, kube_client: ApiClient, kube_namespace: str
) -> None:
    spec = write_spec(
        runner.tmp_path,
        'step forever { run = "true" }',
        target(kube_namespace, annotations={"mlc.test/outcome": "hang"}),
    )
    process = runner.start(spec)
    wait_for_jobs(kube_client, kube_namespace)
    time.sleep(1.0)
    process.send_signal(signal.SIGINT)
    _code, report, stderr = runner.finish(process)
    assert report["status"] == "cancelled", stderr
    deadline = time.monotonic() + 30
    while jobs(kube_client, kube_namespace) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert jobs(kube_client, kube_namespace) == []


def test_after_kill_9_of_apply_the_next_apply_adopts_the_running_job_and_duplicates_nothing(
    runner: Runner, kube_client: ApiClient, kube_namespace: str
) -> None:
    spec = write_spec(
        runner.tmp_path,
        'step a { run = "true" }\n  step b { run = "true"\n after = [a] }',
        # Long enough to be still running when the next apply starts on a loaded machine.
        target(kube_namespace, annotations={"mlc.test/run-for": "15s"}),
    )
    process = runner.start(spec)
    wait_for_jobs(kube_client, kube_namespace)
    process.kill()
    process.communicate()
    (first,) = jobs(kube_client, kube_namespace)

    code, report, stderr = runner.apply(spec)
    assert code == 0, stderr
    assert "`a` is still running from run" in stderr
    assert {n: s["status"] for n, s in steps_of(report).items()} == {"a": "ran", "b": "ran"}
    made = jobs(kube_client, kube_namespace)
    assert sorted(j.metadata.annotations["mlc.dev/invocation"] for j in made) == ["a", "b"]
    assert first.metadata.name in {j.metadata.name for j in made}


def test_an_api_server_restart_mid_run_is_ridden_out_without_duplicate_jobs(
    runner: Runner, kube_cluster: ControlPlane, kube_client: ApiClient, kube_namespace: str
) -> None:
    spec = write_spec(
        runner.tmp_path,
        'step a { run = "true" }\n  step b { run = "true"\n after = [a] }\n'
        '  step c { run = "true"\n after = [b] }',
        target(kube_namespace, annotations={"mlc.test/run-for": "2s"}),
    )
    process = runner.start(spec)
    wait_for_jobs(kube_client, kube_namespace)
    kube_cluster.restart_apiserver(down_seconds=3.0)
    code, report, stderr = runner.finish(process)
    assert code == 0, stderr
    assert {n: s["status"] for n, s in steps_of(report).items()} == {
        "a": "ran",
        "b": "ran",
        "c": "ran",
    }
    made = jobs(kube_client, kube_namespace)
    assert sorted(j.metadata.annotations["mlc.dev/invocation"] for j in made) == ["a", "b", "c"]


def restrict(client: ApiClient, namespace: str) -> None:
    from kubernetes.client import CoreV1Api

    CoreV1Api(client).patch_namespace(
        namespace, {"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "restricted"}}}
    )


def test_pods_meet_the_restricted_pod_security_standard_as_they_are(
    runner: Runner, kube_client: ApiClient, kube_namespace: str
) -> None:
    restrict(kube_client, kube_namespace)
    spec = write_spec(runner.tmp_path, 'step a { run = "true" }', target(kube_namespace))
    code, _report, stderr = runner.apply(spec)
    assert code == 0, stderr


def test_a_pod_security_rejection_fails_the_step_at_once_with_the_api_servers_reason(
    runner: Runner, kube_client: ApiClient, kube_namespace: str
) -> None:
    restrict(kube_client, kube_namespace)
    (runner.tmp_path / "pod.yaml").write_text("hostNetwork: true\n")
    spec = write_spec(
        runner.tmp_path,
        'step a { run = "true"\n retries = 2 }',
        target(kube_namespace, pod_template="pod.yaml"),
    )
    code, report, _stderr = runner.apply(spec)
    assert code == 1
    step = steps_of(report)["a"]
    assert step["attempts"] == 1
    assert step["error"].startswith("Kubernetes refused to create its pod:")
    assert "violates PodSecurity" in step["error"]
    assert "hostNetwork=true" in step["error"]


def test_an_exceeded_quota_is_shown_and_fails_after_pending_timeout(
    runner: Runner, kube_client: ApiClient, kube_namespace: str
) -> None:
    from kubernetes.client import CoreV1Api

    core = CoreV1Api(kube_client)
    core.create_namespaced_resource_quota(
        kube_namespace,
        {"metadata": {"name": "small"}, "spec": {"hard": {"requests.cpu": "1"}}},
    )
    # Admission enforces a quota once its controller has filled in its status (until then it
    # lets pods through): wait for that, as an administrator's quota would long have been.
    deadline = time.monotonic() + 60
    while not (core.read_namespaced_resource_quota("small", kube_namespace).status.hard or {}):
        assert time.monotonic() < deadline, "the quota controller never filled in the quota"
        time.sleep(0.1)
    spec = write_spec(
        runner.tmp_path,
        'step big { run = "true"\n resources { cpu = 2 } }',
        target(kube_namespace, pending_timeout=3),
    )
    code, report, _stderr = runner.apply(spec)
    assert code == 1
    error = steps_of(report)["big"]["error"]
    assert error.startswith("no quota was left within 3s:")
    assert "exceeded quota: small" in error


def plan(runner: Runner, spec: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*MLC, "plan", str(spec), "--target", "k8s", "--store", runner.store],
        capture_output=True,
        text=True,
        env=runner.env,
        cwd=spec.parent,
        timeout=APPLY_TIMEOUT_S,
        check=False,
    )


def test_plan_reports_what_the_api_server_would_refuse_at_the_steps_line(
    runner: Runner, kube_client: ApiClient, kube_namespace: str
) -> None:
    (runner.tmp_path / "pod.yaml").write_text(
        'containers: [{name: main, resources: {limits: {cpu: "1"}}}]\n'
    )
    spec = write_spec(
        runner.tmp_path,
        'step fine { run = "true"\n resources { cpu = 1 } }\n'
        '  step greedy {\n    run = "true"\n    resources { cpu = 2 }\n  }',
        target(kube_namespace, pod_template="pod.yaml"),
    )
    planned = plan(runner, spec)
    assert planned.returncode != 0
    assert "pipeline.mlspec:6:3: step `greedy`: the cluster refuses its Job:" in planned.stderr
    assert "must be less than or equal to cpu limit of 1" in planned.stderr
    assert "step `fine`" not in planned.stderr
    assert "Traceback" not in planned.stderr
    assert jobs(kube_client, kube_namespace) == []


def test_plan_shows_the_api_servers_warnings_such_as_a_pod_security_level(
    runner: Runner, kube_client: ApiClient, kube_namespace: str
) -> None:
    from kubernetes.client import CoreV1Api

    CoreV1Api(kube_client).patch_namespace(
        kube_namespace, {"metadata": {"labels": {"pod-security.kubernetes.io/warn": "baseline"}}}
    )
    (runner.tmp_path / "pod.yaml").write_text("hostNetwork: true\n")
    spec = write_spec(
        runner.tmp_path, 'step a { run = "true" }', target(kube_namespace, pod_template="pod.yaml")
    )
    planned = plan(runner, spec)
    assert planned.returncode == 0, planned.stderr
    assert 'would violate PodSecurity "baseline:latest": host namespaces' in planned.stdout


def test_a_mig_slice_lands_on_a_node_of_the_mixed_strategy_and_too_many_slices_wait(
    runner: Runner, kube_cluster: ControlPlane, kube_client: ApiClient, kube_namespace: str
) -> None:
    from kubernetes.client import CoreV1Api

    node = f"mig-{uuid.uuid4().hex[:6]}"
    slices = "nvidia.com/mig-3g.40gb"
    capacity = {"cpu": "32", "memory": "256Gi", "pods": "110", slices: "2"}
    core = CoreV1Api(kube_client)
    core.create_node(
        {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": node,
                "annotations": {"kwok.x-k8s.io/node": "fake"},
                "labels": {
                    "kubernetes.io/hostname": node,
                    "type": "kwok",
                    "nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB",
                },
            },
            "status": {"capacity": capacity, "allocatable": capacity},
        }
    )
    try:
        spec = write_spec(
            runner.tmp_path,
            'step one { run = "true"\n resources { gpu = 1 of "a100-80gb/3g.40gb" } }\n'
            '  step three { run = "true"\n resources { gpu = 3 of "a100-80gb/3g.40gb" } }',
            target(kube_namespace, pending_timeout=3),
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # kwok makes the node Ready
            status = core.read_node(node).status
            if any(c.type == "Ready" and c.status == "True" for c in status.conditions or []):
                break
            time.sleep(0.2)
        _code, report, _stderr = runner.apply(spec, "--keep-going")
        steps = steps_of(report)
        assert steps["one"]["status"] == "ran"
        assert steps["three"]["status"] == "failed"
        assert f"Insufficient {slices}" in steps["three"]["error"]
        (pod,) = [
            p
            for p in pods(kube_client, kube_namespace)
            if p.metadata.labels["app.kubernetes.io/component"] == "one"
        ]
        assert pod.spec.node_name == node
        assert pod.spec.containers[0].resources.limits == {slices: "1"}
    finally:
        core.delete_node(node)


def test_the_items_of_a_foreach_step_are_one_indexed_job(
    runner: Runner, kube_client: ApiClient, kube_namespace: str
) -> None:
    spec = write_spec(
        runner.tmp_path,
        'step sweep foreach lr in [1, 2, 3, 4, 5] {\n    run = "true"\n  }\n'
        '  step after { run = "true"\n after = [sweep] }',
        target(kube_namespace),
    )
    code, report, stderr = runner.apply(spec)
    assert code == 0, stderr
    statuses = {n: s["status"] for n, s in steps_of(report).items()}
    assert statuses == {**{f"sweep[{i}]": "ran" for i in range(5)}, "after": "ran"}
    made = {
        j.metadata.labels["app.kubernetes.io/component"]: j
        for j in jobs(kube_client, kube_namespace)
    }
    assert sorted(made) == ["after", "sweep"]
    sweep = made["sweep"]
    assert (sweep.spec.completion_mode, sweep.spec.completions) == ("Indexed", 5)
    assert sweep.spec.backoff_limit_per_index == 0
    assert json.loads(sweep.metadata.annotations["mlc.dev/invocations"]) == [
        f"sweep[{i}]" for i in range(5)
    ]
