"""Checks of the control plane's setup that need no cluster: pins, stages, node manifests."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from tests.k8s import node, plugin
from tests.k8s.cluster import (
    A100_NODE,
    BUILD_COMMAND,
    DEFAULT_NODES,
    GPU_PRODUCT_LABEL,
    STAGES_FILE,
    T4_NODE,
    NodeSpec,
    missing_prerequisites,
    pinned_versions,
)
from tests.k8s.helpers import python_job_manifest

GO_MOD = Path(__file__).with_name("testenv") / "go.mod"


def test_build_script_and_wrapper_module_pin_the_same_release() -> None:
    versions = pinned_versions()
    go_mod = GO_MOD.read_text()
    assert re.search(rf"^\s*k8s\.io/kubernetes {re.escape(versions.kubernetes)}\b", go_mod, re.M)
    staging = "v0." + versions.kubernetes.removeprefix("v1.")
    replaced = re.findall(r"^replace (k8s\.io/\S+) => \1 (\S+)$", go_mod, re.M)
    assert len(replaced) > 20
    assert {version for _, version in replaced} == {staging}


def test_stages_cover_every_outcome() -> None:
    stages = list(yaml.safe_load_all(STAGES_FILE.read_text()))
    names = {stage["metadata"]["name"] for stage in stages}
    assert names == {
        "mlc-node-ready",
        "mlc-node-heartbeat",
        "mlc-pod-running",
        "mlc-pod-succeeded",
        "mlc-pod-failed",
        "mlc-pod-delete",
    }
    assert all(stage["kind"] == "Stage" for stage in stages)


def test_default_inventory_has_two_gpu_models_and_a_cpu_node() -> None:
    products = {node.gpu_product for node in DEFAULT_NODES if node.gpus}
    assert products == {"NVIDIA-A100-SXM4-80GB", "Tesla-T4"}
    assert any(node.gpus == 0 for node in DEFAULT_NODES)
    assert (A100_NODE.gpus, T4_NODE.gpus) == (8, 4)


def test_gpu_node_manifest_carries_capacity_and_model_label() -> None:
    manifest = NodeSpec("n", gpus=2, gpu_product="Tesla-T4", taints=(("k", "v", "NoSchedule"),))
    node = manifest.manifest()
    assert node["status"]["capacity"]["nvidia.com/gpu"] == "2"
    assert node["status"]["allocatable"] == node["status"]["capacity"]
    assert node["metadata"]["labels"][GPU_PRODUCT_LABEL] == "Tesla-T4"
    assert node["spec"]["taints"] == [{"key": "k", "value": "v", "effect": "NoSchedule"}]


def test_missing_binaries_name_the_build_command(tmp_path: Path) -> None:
    problems = missing_prerequisites(tmp_path)
    assert any(BUILD_COMMAND in problem for problem in problems)


def test_missing_control_plane_fails_in_ci_and_skips_elsewhere(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for ci in ("true", "1", "yes"):
        monkeypatch.setenv("CI", ci)
        with pytest.raises(pytest.fail.Exception, match="build"):
            plugin._unavailable(f"build them with `{BUILD_COMMAND}`")
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match="build"):
        plugin._unavailable(f"build them with `{BUILD_COMMAND}`")


def test_real_node_names_each_missing_prerequisite(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(node.os, "geteuid", lambda: 1000)
    monkeypatch.setattr(node.shutil, "which", lambda name: None)

    problems = node.missing_prerequisites(tmp_path)

    assert any(p.startswith("the real node needs root") and "uid 1000" in p for p in problems)
    assert any(f"the kubelet is not in {tmp_path}/bin" in p for p in problems)
    assert any(p.startswith("containerd, containerd-shim-runc-v2, ctr, runc") for p in problems)
    assert any("pause.tar, step.tar" in p and BUILD_COMMAND in p for p in problems)


def test_missing_real_node_fails_in_ci_and_skips_elsewhere(monkeypatch: pytest.MonkeyPatch) -> None:
    what = "the real Kubernetes test node"
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=f"^{what} unavailable: .*needs root"):
        plugin._unavailable("the real node needs root", what)
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match=f"^{what} unavailable: .*needs root"):
        plugin._unavailable("the real node needs root", what)


def test_real_node_pods_select_and_tolerate_only_the_real_node() -> None:
    job = python_job_manifest("j", "pass")
    spec = job["spec"]["template"]["spec"]
    key, value, effect = node.REAL_NODE_TAINT
    assert spec["tolerations"] == [
        {"key": key, "operator": "Equal", "value": value, "effect": effect}
    ]
    assert spec["nodeSelector"] == dict([node.REAL_NODE_LABEL])
    mounts = {m["mountPath"]: m for m in spec["containers"][0]["volumeMounts"]}
    assert mounts[str(node.REPOSITORY)]["readOnly"] is True
    env = {e["name"]: e["value"] for e in spec["containers"][0]["env"]}
    assert env["MLC_SITE_DIRS"] == str(node.site_packages())
    # Fake nodes never carry the real node's label, so fake-node Jobs cannot land there.
    assert all(
        node.REAL_NODE_LABEL[0] not in n.manifest()["metadata"]["labels"] for n in DEFAULT_NODES
    )


def test_host_snapshot_survives_the_registry_for_a_later_cleanup() -> None:
    snapshot = node.HostSnapshot(
        existing_directories={
            Path("/var/lib/kubelet"): None,
            Path("/run/containerd"): frozenset({"s"}),
        },
        settings={"kernel/panic": "1", "vm/overcommit_memory": None},
        iptables_chains={("filter", "INPUT")},
    )

    again = node.HostSnapshot.from_json(json.loads(json.dumps(snapshot.to_json())))

    assert again == snapshot
