"""What a Kubernetes target makes of a step: the Job, its pod, names, the result message, and
what each pending reason means. Pure functions: no cluster here (see
`test_kubernetes_backend.py` and `test_kubernetes_real.py` for those)."""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

import pytest
from mlc.backends.kubernetes import names
from mlc.backends.kubernetes.manifests import (
    JobIdentity,
    PodEnvironment,
    describe_request,
    job_manifest,
)
from mlc.backends.kubernetes.message import (
    ATTEMPT,
    ATTEMPT_REF,
    INLINE_ATTEMPT_LIMIT,
    MESSAGE_LIMIT,
    attempt_environment,
    attempt_from_environment,
    decode_result,
    encode_result,
)
from mlc.backends.kubernetes.pending import PodState, judge_pod, judge_warning
from mlc.backends.kubernetes.settings import KubeSettings
from mlc.ir.model import GpuRequest, Resources, Step, Target
from mlc.store import Store, open_store

from tests.runtime.builders import sh, step

IDENTITY = JobIdentity("20261204T000000.000Z-abcdef", "p", "train", "k" * 64, 1)


def settings(**values: Any) -> KubeSettings:
    accelerators = values.pop("accelerators", {"a100-80gb": "NVIDIA-A100-SXM4-80GB"})
    target = Target(
        name="prod",
        backend="kubernetes",
        namespace="ml",
        accelerators=accelerators,
        settings=values,
    )
    return KubeSettings.of(target)


def job(a_step: Step, kube: KubeSettings | None = None, **identity: Any) -> dict[str, Any]:
    who = JobIdentity(**{**IDENTITY.__dict__, **identity})
    return job_manifest(
        a_step,
        who,
        kube or settings(),
        PodEnvironment({"MLC_ATTEMPT": "x"}),
        kill_grace_seconds=10,
    )


def pod(manifest: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = manifest["spec"]["template"]["spec"]
    return spec


def container(manifest: dict[str, Any]) -> dict[str, Any]:
    (main,) = pod(manifest)["containers"]
    return dict(main)


def with_resources(**resources: Any) -> Step:
    base = step("train", sh("python train.py"), image="ghcr.io/acme/train:1")
    return base.model_copy(update={"resources": Resources(cpu_millis=2000, **resources)})


# -------------------------------------------------------------------------------- the Job


def test_an_attempt_is_one_job_that_kubernetes_never_retries_and_disruptions_do_not_fail() -> None:
    manifest = job(with_resources())
    spec = manifest["spec"]
    assert spec["backoffLimit"] == 0
    assert spec["podFailurePolicy"]["rules"] == [
        {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]}
    ]
    assert pod(manifest)["restartPolicy"] == "Never"
    assert manifest["metadata"]["namespace"] == "ml"
    assert spec["ttlSecondsAfterFinished"] == 86400


def test_the_job_is_labelled_for_the_run_and_annotated_with_what_labels_cannot_hold() -> None:
    manifest = job(with_resources(), owner={"name": "mlc-run-x", "uid": "u-1"})
    labels, notes = manifest["metadata"]["labels"], manifest["metadata"]["annotations"]
    assert labels[names.MANAGED_BY] == "mlc"
    assert labels[names.RUN] == IDENTITY.run_id
    assert labels[names.COMPONENT] == "train"
    assert notes[names.CACHE_KEY] == "k" * 64  # longer than a label value may be
    assert notes[names.INVOCATION] == "train"
    assert manifest["metadata"]["ownerReferences"] == [
        {"apiVersion": "v1", "kind": "ConfigMap", "name": "mlc-run-x", "uid": "u-1"}
    ]


def test_the_pod_runs_mlcs_step_runtime_in_the_steps_image() -> None:
    main = container(job(with_resources()))
    assert main["image"] == "ghcr.io/acme/train:1"
    assert main["command"] == ["python3", "-m", "mlc.backends.kubernetes.pod"]
    assert {"name": "MLC_ATTEMPT", "value": "x"} in main["env"]
    assert main["terminationMessagePolicy"] == "FallbackToLogsOnError"


def test_a_step_without_an_image_gets_the_targets_default_image() -> None:
    plain = step("a", sh("true"))
    assert container(job(plain, settings(image="ghcr.io/acme/base:2")))["image"] == (
        "ghcr.io/acme/base:2"
    )


def test_the_security_context_meets_the_restricted_pod_security_standard() -> None:
    manifest = job(with_resources())
    assert pod(manifest)["securityContext"] == {
        "runAsNonRoot": True,
        "runAsUser": 1000,
        "runAsGroup": 1000,
        "fsGroup": 1000,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert container(manifest)["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "runAsNonRoot": True,
    }


def test_secrets_are_secret_key_refs_never_values() -> None:
    secret = step("a", sh("true"), image="i:1", secrets={"HF_TOKEN": "huggingface/token"})
    env = container(job(secret))["env"]
    assert {
        "name": "HF_TOKEN",
        "valueFrom": {"secretKeyRef": {"name": "huggingface", "key": "token"}},
    } in env


def test_cpu_memory_and_disk_are_requests_and_memory_and_disk_also_limits() -> None:
    main = container(job(with_resources(memory_bytes=4 << 30, disk_bytes=20 << 30)))
    assert main["resources"] == {
        "requests": {"cpu": "2000m", "memory": str(4 << 30), "ephemeral-storage": str(20 << 30)},
        "limits": {"memory": str(4 << 30), "ephemeral-storage": str(20 << 30)},
    }
    scratch = pod(job(with_resources(disk_bytes=20 << 30)))["volumes"][0]
    assert scratch == {"name": "scratch", "emptyDir": {"sizeLimit": str(20 << 30)}}


def test_shm_is_a_memory_backed_volume_at_dev_shm() -> None:
    manifest = job(with_resources(shm_bytes=8 << 30))
    assert {
        "name": "dshm",
        "emptyDir": {"medium": "Memory", "sizeLimit": str(8 << 30)},
    } in pod(manifest)["volumes"]
    assert {"name": "dshm", "mountPath": "/dev/shm"} in container(manifest)["volumeMounts"]


def test_a_gpu_model_becomes_a_gpu_limit_and_the_node_selector_of_its_mapping() -> None:
    kube = settings(
        accelerators={
            "a100-80gb": {
                "node_selector": {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB"},
                "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists"}],
            }
        }
    )
    manifest = job(with_resources(gpu=GpuRequest(count=2, accelerator="a100-80gb")), kube)
    assert container(manifest)["resources"]["limits"] == {"nvidia.com/gpu": "2"}
    assert pod(manifest)["nodeSelector"] == {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB"}
    assert pod(manifest)["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists"}]
    assert not any(e["name"] == "NVIDIA_VISIBLE_DEVICES" for e in container(manifest)["env"])


def test_a_step_without_gpus_sees_none_of_the_nodes_gpus() -> None:
    env = container(job(with_resources()))["env"]
    assert {"name": "NVIDIA_VISIBLE_DEVICES", "value": "void"} in env


def test_mig_in_the_mixed_strategy_asks_for_the_profiles_own_resource() -> None:
    mig = GpuRequest(count=1, accelerator="a100-80gb", mig="3g.40gb")
    manifest = job(with_resources(gpu=mig))
    assert container(manifest)["resources"]["limits"] == {"nvidia.com/mig-3g.40gb": "1"}
    assert pod(manifest)["nodeSelector"] == {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB"}


def test_mig_in_the_single_strategy_asks_for_gpus_on_nodes_of_the_mig_product() -> None:
    mig = GpuRequest(count=1, accelerator="a100-80gb", mig="3g.40gb")
    manifest = job(with_resources(gpu=mig), settings(mig_strategy="single"))
    assert container(manifest)["resources"]["limits"] == {"nvidia.com/gpu": "1"}
    assert pod(manifest)["nodeSelector"] == {
        "nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB-MIG-3g.40gb"
    }


def test_a_request_is_described_in_the_schedulers_terms() -> None:
    gpu = GpuRequest(count=2, accelerator="a100-80gb")
    text = describe_request(with_resources(memory_bytes=1 << 30, gpu=gpu), settings())
    assert text == (
        f"cpu 2000m, memory {1 << 30}, nvidia.com/gpu 2 "
        "on nvidia.com/gpu.product=NVIDIA-A100-SXM4-80GB"
    )


def test_the_timeout_is_the_pods_deadline_with_room_to_stop_and_store_the_log() -> None:
    timed = step("a", sh("sleep 1000"), image="i:1", timeout_seconds=300)
    spec = pod(job(timed))
    assert spec["activeDeadlineSeconds"] == 300 + 15 + 30
    assert spec["terminationGracePeriodSeconds"] == 15
    assert "activeDeadlineSeconds" not in job(timed)["spec"]  # the Job's counts pending time


def test_a_kueue_queue_creates_the_job_suspended_with_the_queue_label() -> None:
    manifest = job(with_resources(), settings(queue="team-a"))
    assert manifest["spec"]["suspend"] is True
    assert manifest["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "team-a"


def test_target_settings_reach_every_pod() -> None:
    kube = settings(
        service_account="runner",
        image_pull_secrets=["registry"],
        priority_class="batch",
        node_selector={"pool": "ml"},
        tolerations=[{"key": "dedicated", "operator": "Equal", "value": "ml"}],
        env_from_secrets=["store-credentials"],
        labels={"team": "vision"},
    )
    manifest = job(with_resources(), kube)
    spec = pod(manifest)
    assert spec["serviceAccountName"] == "runner"
    assert spec["imagePullSecrets"] == [{"name": "registry"}]
    assert spec["priorityClassName"] == "batch"
    assert spec["nodeSelector"] == {"pool": "ml"}
    assert spec["tolerations"] == [{"key": "dedicated", "operator": "Equal", "value": "ml"}]
    assert container(manifest)["envFrom"] == [{"secretRef": {"name": "store-credentials"}}]
    assert manifest["metadata"]["labels"]["team"] == "vision"


def test_a_pod_template_adds_to_the_pod_containers_by_name_and_lists_appended(
    tmp_path: Path,
) -> None:
    (tmp_path / "pod.yaml").write_text(
        "hostNetwork: true\n"
        "containers:\n"
        "- name: main\n"
        "  imagePullPolicy: Never\n"
        "  volumeMounts: [{name: data, mountPath: /data}]\n"
        "volumes: [{name: data, hostPath: {path: /data}}]\n"
    )
    target = Target(name="t", backend="kubernetes", settings={"pod_template": "pod.yaml"})
    manifest = job(with_resources(), KubeSettings.of(target, str(tmp_path)))
    spec = pod(manifest)
    assert spec["hostNetwork"] is True
    assert container(manifest)["imagePullPolicy"] == "Never"
    assert [m["name"] for m in container(manifest)["volumeMounts"]] == ["scratch", "data"]
    assert [v["name"] for v in spec["volumes"]] == ["scratch", "data"]
    assert container(manifest)["command"][-1] == "mlc.backends.kubernetes.pod"


def test_items_started_together_are_one_indexed_job_whose_indexes_fail_on_their_own() -> None:
    manifest = job_manifest(
        with_resources(),
        IDENTITY,
        settings(),
        PodEnvironment({"MLC_ATTEMPT": "x"}),
        kill_grace_seconds=10,
        indexed=1000,
    )
    spec = manifest["spec"]
    assert (spec["completionMode"], spec["completions"], spec["parallelism"]) == (
        "Indexed",
        1000,
        1000,
    )
    assert (spec["backoffLimitPerIndex"], spec["maxFailedIndexes"]) == (0, 1000)
    assert "backoffLimit" not in spec


def test_the_spec_hash_identifies_the_pod_template() -> None:
    first = job(with_resources())["metadata"]["annotations"][names.SPEC_HASH]
    again = job(with_resources())["metadata"]["annotations"][names.SPEC_HASH]
    other_image = with_resources().model_copy(update={"image": "ghcr.io/acme/train:2"})
    changed = job(other_image)["metadata"]["annotations"][names.SPEC_HASH]
    assert first == again != changed


def test_invalid_settings_are_reported_together_naming_each_setting() -> None:
    with pytest.raises(ValueError) as raised:
        settings(pending_timeout="soon", tolerations="all", mig_strategy="both")
    text = str(raised.value)
    assert "`pending_timeout` must be a non-negative number" in text
    assert "`tolerations` must be a list of tables" in text
    assert "`mig_strategy` must be `single` or `mixed`" in text


# -------------------------------------------------------------------------------- names


def test_job_names_are_deterministic_per_attempt_and_fit_indexed_pod_hostnames() -> None:
    name = names.job_name("run-1", "a_very_long_step_name_" * 5 + "[12]", "key", 1)
    assert name == names.job_name("run-1", "a_very_long_step_name_" * 5 + "[12]", "key", 1)
    assert name != names.job_name("run-1", "a_very_long_step_name_" * 5 + "[12]", "key", 2)
    assert len(name) <= names.JOB_NAME_LIMIT
    assert name.startswith("mlc-a-very-long-step-name")
    assert all(c.isalnum() or c == "-" for c in name) and name == name.lower()


def test_label_values_that_are_too_long_are_shortened_with_a_digest() -> None:
    value = names.label_value("x" * 100)
    assert len(value) <= 63
    assert value != names.label_value("x" * 99)


# -------------------------------------------------------------------------------- messages


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return open_store(tmp_path / "store")


def result_value(tail: list[str]) -> dict[str, Any]:
    return {
        "collected": {"outputs": {"model": {"digest": "sha256:" + "a" * 64, "kind": "file"}}},
        "result": {"exit_code": 0, "error": None, "timed_out": False},
        "log": {"ref": "sha256:" + "b" * 64, "tail": tail, "whole": {}},
        "host": "node-1",
    }


def test_a_small_result_is_the_termination_message_itself(store: Store) -> None:
    value = result_value(["done"])
    message = encode_result(value, store)
    assert json.loads(message) == value
    assert decode_result(message, store) == value


def test_a_result_over_4_kib_goes_to_the_store_and_the_message_holds_its_digest(
    store: Store,
) -> None:
    value = result_value(["a long line of output " * 20] * 20)
    message = encode_result(value, store)
    assert len(message.encode()) <= MESSAGE_LIMIT
    assert set(json.loads(message)) == {"stored"}
    assert decode_result(message, store) == value


def test_a_message_that_is_no_result_is_none(store: Store) -> None:
    assert decode_result("", store) is None
    assert decode_result("python3: No module named mlc", store) is None
    assert decode_result('{"something": "else"}', store) is None


def test_the_attempt_travels_in_the_environment_or_through_the_store_when_large(
    store: Store,
) -> None:
    small = {"step": "a", "env": {}}
    env = attempt_environment(small, store)
    assert set(env) == {ATTEMPT}
    assert attempt_from_environment(env, store) == small
    # Random text does not compress: larger than a variable may hold.
    large = {
        "step": "a",
        "noise": [secrets.token_hex(32) for _ in range(INLINE_ATTEMPT_LIMIT // 32)],
    }
    env = attempt_environment(large, store)
    assert set(env) == {ATTEMPT_REF}
    assert attempt_from_environment(env, store) == large


# -------------------------------------------------------------------------------- pending


def pending_pod(*, waiting: dict[str, str] | None = None, unschedulable: str = "") -> Any:
    status: dict[str, Any] = {"phase": "Pending", "conditions": []}
    if unschedulable:
        status["conditions"].append(
            {
                "type": "PodScheduled",
                "status": "False",
                "reason": "Unschedulable",
                "message": unschedulable,
            }
        )
    if waiting:
        status["containerStatuses"] = [{"name": "main", "state": {"waiting": waiting}}]
    return {"metadata": {"name": "p"}, "spec": {}, "status": status}


def ended_pod(phase: str, code: int, *, reason: str = "", message: str = "", **status: Any) -> Any:
    terminated = {"exitCode": code, "reason": reason, "message": message}
    return {
        "metadata": {"name": "p"},
        "spec": {"nodeName": "n"},
        "status": {
            "phase": phase,
            "containerStatuses": [{"name": "main", "state": {"terminated": terminated}}],
            **status,
        },
    }


def test_an_invalid_image_name_fails_at_once_and_is_not_retried() -> None:
    verdict = judge_pod(
        PodState(),
        pending_pod(waiting={"reason": "InvalidImageName", "message": 'couldn\'t parse "A:"'}),
        0.0,
    )
    assert verdict.fail and not verdict.retryable
    assert "InvalidImageName" in (verdict.error or "")


def test_an_image_pull_error_is_shown_then_fails_after_the_image_pull_timeout() -> None:
    state = PodState()
    pulling = pending_pod(waiting={"reason": "ImagePullBackOff", "message": "not found"})
    verdict = judge_pod(state, pulling, 100.0)
    assert verdict.note == "its container cannot start: ImagePullBackOff: not found"
    kube = settings(image_pull_timeout=60)
    assert state.overdue(150.0, kube) is None
    failed = state.overdue(161.0, kube)
    assert failed is not None and failed.fail and failed.retryable
    assert failed.error == "its container could not start within 60s: ImagePullBackOff: not found"


def test_an_image_event_keeps_the_pods_own_more_detailed_words() -> None:
    state = PodState()
    detail = 'Back-off pulling image "registry.invalid/x:1": ErrImagePull: no such host'
    judge_pod(state, pending_pod(waiting={"reason": "ImagePullBackOff", "message": detail}), 0.0)
    event = {"reason": "Failed", "message": "Error: ImagePullBackOff"}
    assert judge_warning(state, event, 1.0).note is None
    failed = state.overdue(1000.0, settings())
    assert failed is not None and detail in (failed.error or "")


def test_an_unschedulable_pod_shows_the_schedulers_reason_and_fails_after_pending_timeout() -> None:
    state = PodState()
    why = "0/3 nodes are available: 3 Insufficient nvidia.com/gpu."
    verdict = judge_pod(state, pending_pod(unschedulable=why), 10.0)
    assert verdict.note == f"waiting for a node: {why}"
    kube = settings(pending_timeout=300)
    assert state.overdue(300.0, kube) is None
    failed = state.overdue(311.0, kube)
    assert failed is not None and failed.fail and not failed.retryable
    assert failed.error == f"no node could run it within 300s: {why}"


def test_a_pod_that_starts_running_is_no_longer_waiting() -> None:
    state = PodState()
    judge_pod(state, pending_pod(unschedulable="0/1 nodes"), 0.0)
    running = {"metadata": {}, "spec": {"nodeName": "gpu-1"}, "status": {"phase": "Running"}}
    assert judge_pod(state, running, 1.0).note == "running on gpu-1"
    assert state.overdue(10_000.0, settings()) is None


def test_a_pod_security_rejection_fails_at_once_and_a_quota_waits() -> None:
    refused = judge_warning(
        PodState(),
        {"reason": "FailedCreate", "message": 'pods "x" is forbidden: violates PodSecurity'},
        0.0,
    )
    assert refused.fail and not refused.retryable
    assert refused.error == (
        'Kubernetes refused to create its pod: pods "x" is forbidden: violates PodSecurity'
    )
    state = PodState()
    quota = judge_warning(
        state, {"reason": "FailedCreate", "message": "exceeded quota: q, requested: cpu=2"}, 0.0
    )
    assert quota.note == "waiting for quota: exceeded quota: q, requested: cpu=2" and not quota.fail
    assert state.overdue(1e6, settings()) is not None


def test_an_ended_pod_hands_over_its_termination_message() -> None:
    verdict = judge_pod(PodState(), ended_pod("Succeeded", 0, message='{"collected": {}}'), 0.0)
    assert verdict.ended and verdict.message == '{"collected": {}}'
    assert verdict.stopped is None


def test_a_pod_stopped_at_its_deadline_is_a_timed_out_attempt() -> None:
    pod_ = ended_pod("Failed", 137, reason="Error")
    pod_["status"]["reason"] = "DeadlineExceeded"
    verdict = judge_pod(PodState(), pod_, 0.0, timeout_seconds=60)
    assert verdict.ended and verdict.stopped is not None
    assert verdict.stopped.timed_out and verdict.stopped.error == "timed out after 60s"


def test_an_out_of_memory_kill_says_so() -> None:
    verdict = judge_pod(PodState(), ended_pod("Failed", 137, reason="OOMKilled"), 0.0)
    assert verdict.ended
    assert verdict.error == "its container ran out of memory (OOMKilled, exit code 137)"


def test_a_disrupted_pod_is_replaced_without_ending_the_attempt() -> None:
    disrupted = ended_pod(
        "Failed",
        137,
        conditions=[
            {"type": "DisruptionTarget", "status": "True", "reason": "PreemptionByScheduler"}
        ],
    )
    verdict = judge_pod(PodState(), disrupted, 0.0)
    assert not verdict.ended and not verdict.fail
    assert (
        verdict.note
        == "its pod was stopped by the cluster (PreemptionByScheduler); it starts again"
    )


def test_any_other_warning_about_the_pod_is_shown() -> None:
    event = {"reason": "FailedMount", "message": 'MountVolume.SetUp failed for volume "data"'}
    verdict = judge_warning(PodState(), event, 0.0)
    assert verdict.note == 'FailedMount: MountVolume.SetUp failed for volume "data"'
    assert not verdict.fail
