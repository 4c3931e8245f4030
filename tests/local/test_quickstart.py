"""The quickstart of the README, for real: `mlc apply examples/quickstart/pipeline.mlspec` trains
a random forest on scikit-learn's wine data, evaluates it, passes the gate and registers it; the
second apply is all cache hits."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.requirements import require

REPO = Path(__file__).resolve().parents[2]
SPEC = REPO / "examples" / "quickstart" / "pipeline.mlspec"

require("sklearn", "the quickstart")


def mlc(*args: str, store: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLC_")}
    env["MLC_LOCAL_GPUS"] = ""
    return subprocess.run(
        [sys.executable, "-m", "mlc", *args, "--store", str(store)],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=300,
        check=False,
    )


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("quickstart") / "store"


@pytest.fixture(scope="module")
def first_run(store: Path) -> dict[str, Any]:
    result = mlc("apply", str(SPEC), "--format", "json", store=store)
    assert result.returncode == 0, result.stderr
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def test_the_first_apply_trains_evaluates_and_registers(
    first_run: dict[str, Any], store: Path
) -> None:
    from mlc.store.uri import open_store

    steps = {s["name"]: s for s in first_run["steps"]}
    assert first_run["status"] == "succeeded"
    assert [s["status"] for s in first_run["steps"]] == ["ran"] * 4
    assert set(steps["prepare"]["outputs"]) == {"train", "test"}
    opened = open_store(store)
    try:
        metrics = json.loads(opened.read_bytes(steps["evaluate"]["outputs"]["metrics"]))
        entry = json.loads(opened.read_bytes(steps["register"]["outputs"]["entry"]))
    finally:
        opened.close()
    assert set(metrics) == {"accuracy", "f1"}
    assert metrics["accuracy"] >= 0.85  # the gate let `register` run
    assert entry["model"] == steps["train"]["outputs"]["model"]
    assert entry["metrics"] == metrics
    assert first_run["outputs"]["registry_entry"] == steps["register"]["outputs"]["entry"]


def test_the_second_apply_is_all_cached(first_run: dict[str, Any], store: Path) -> None:
    result = mlc("apply", str(SPEC), store=store)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert all(f"{name}: cached" in lines for name in ("prepare", "train", "evaluate", "register"))
    assert lines[-1].startswith("run ")
    assert " succeeded: 0 ran, 4 cached, 0 failed in " in lines[-1]


def test_plan_explains_a_changed_param(first_run: dict[str, Any], store: Path) -> None:
    result = mlc("plan", str(SPEC), "--param", "n_estimators=50", store=store)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "plan for pipeline quickstart:"
    assert lines[1].split() == ["prepare", "cached", "from", "run", first_run["run_id"]]
    assert lines[2].split(None, 3)[:3] == ["train", "will", "run"]
    assert lines[2].endswith("because param `n_estimators` changed (200 → 50)")
    assert "evaluate  will run  because input `model` comes from `train`, which will run" in (
        result.stdout
    )
    assert lines[-1] == "1 cached, 3 will run, 0 skipped"


def test_a_weak_model_is_stopped_by_the_gate(first_run: dict[str, Any], store: Path) -> None:
    # One tree of depth one scores about 0.62 on this split, below `min_accuracy` (0.85).
    result = mlc(
        "apply",
        str(SPEC),
        "--param",
        "n_estimators=1",
        "--param",
        "max_depth=1",
        "--format",
        "json",
        store=store,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    steps = {s["name"]: s for s in report["steps"]}
    assert steps["prepare"]["status"] == "cached"
    assert steps["register"]["status"] == "skipped"
    assert steps["register"]["reasons"] == [
        "its condition `evaluate.metrics.accuracy (0.6222222222222222) >= 0.85` is false"
    ]
    assert "registry_entry" not in report["outputs"]
