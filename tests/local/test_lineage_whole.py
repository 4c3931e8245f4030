"""`mlc lineage` shows where an output came from, whole: for each step on the path its params,
code (digests, git commit and dirty state), backend, host and image, and the pinned datasets at
the leaves; `--format json` holds the same; `--format openlineage` writes OpenLineage run
events, checked against the OpenLineage 2-0-2 RunEvent rules and mlc's own facet schema.

The official `spec/OpenLineage.json` is not shipped in any PyPI package (openlineage-python's
wheel and sdist, openlineage-integration-common, openlineage-sql, openlineage-airflow and the
Airflow provider were looked through), so the events are checked against
`tests/store/schemas/openlineage-run-event-2-0-2.json`, the spec's rules for a RunEvent and the
standard facets mlc emits, written down for this test.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.parse
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.requirements import require

REPO = Path(__file__).resolve().parents[2]
RUN_EVENT_SCHEMA = REPO / "tests" / "store" / "schemas" / "openlineage-run-event-2-0-2.json"
MLC_FACET_SCHEMA = REPO / "docs" / "openlineage" / "MlcStepRunFacet.json"

SPEC = """mlspec 1

pipeline iris {
  params { scale: int = 2, lr: float = 0.1, unused_by_train: str = "x" }
  dataset raw { uri = "raw.csv", version = latest }
  step prepare {
    call = "steps.work:prepare"
    args { scale = params.scale, tag = params.unused_by_train }
    inputs { raw = raw }
    outputs { splits: file }
  }
  step train {
    call = "steps.work:train"
    args { lr = params.lr }
    inputs { splits = prepare.splits }
    outputs { model: model }
  }
  outputs { model = train.model }
}
"""

STEPS = """
def prepare(raw, splits, scale, tag):
    splits.write_text(raw.read_text() * scale)


def train(splits, model, lr):
    model.write_text(f"model {lr} {len(splits.read_text())}")
"""


def mlc(cwd: Path, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLC_")}
    env["MLC_LOCAL_GPUS"] = ""
    env["MLC_IR_CACHE"] = "0"
    completed = subprocess.run(
        [sys.executable, "-m", "mlc", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        check=False,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr
    return completed.stdout


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.email=t@example.com", "-c", "user.name=t", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


@pytest.fixture
def applied(tmp_path: Path) -> tuple[Path, str, str]:
    """A project in a git repository with uncommitted changes, applied once: (folder, commit,
    run id)."""
    (tmp_path / "raw.csv").write_text("a,b\n1,2\n")
    (tmp_path / "steps").mkdir()
    (tmp_path / "steps" / "__init__.py").write_text("")
    (tmp_path / "steps" / "work.py").write_text(STEPS)
    (tmp_path / "pipeline.mlspec").write_text(SPEC)
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-qm", "pipeline")
    (tmp_path / "raw.csv").write_text("a,b\n1,2\n3,4\n")  # dirty
    report = json.loads(mlc(tmp_path, "apply", "pipeline.mlspec", "--format", "json"))
    assert report["status"] == "succeeded"
    return tmp_path, git(tmp_path, "rev-parse", "HEAD"), report["run_id"]


def test_lineage_shows_each_step_whole_and_the_pinned_dataset(
    applied: tuple[Path, str, str],
) -> None:
    root, commit, run_id = applied
    lines = mlc(root, "lineage", f"{run_id}:train.model").splitlines()
    assert lines[0].endswith(f"<- step {run_id} train.model")
    assert lines[1] == "│     params: lr=0.1"
    assert lines[2].startswith("│     code: module steps sha256:")
    assert ", module steps.work sha256:" in lines[2]
    assert lines[2].endswith(f"; commit {commit[:10]}+dirty")
    assert lines[3].startswith("│     ran on local at ") and lines[3].endswith("; image -")
    assert lines[4].startswith("└── splits: sha256:") and lines[4].endswith("prepare.splits")
    assert lines[5] == "    │     params: scale=2, unused_by_train='x'"
    raw = lines[-1]
    assert raw.startswith("    └── raw: sha256:") and raw.endswith(
        " (file)  <- dataset raw <raw.csv>"
    )
    assert len(raw.split()[2]) == len("sha256:") + 64  # the pinned version, whole


def test_lineage_json_holds_the_same(applied: tuple[Path, str, str]) -> None:
    root, commit, run_id = applied
    tree = json.loads(mlc(root, "lineage", f"{run_id}:train.model", "--format", "json"))
    train = tree["produced_by"]
    assert train["params"] == {"lr": 0.1}
    assert set(train["code"]) == {"module steps", "module steps.work"}
    assert (train["git_commit"], train["git_dirty"]) == (commit, True)
    assert (train["backend"], train["pipeline"], train["step"]) == ("local", "iris", "train")
    assert train["host"] and train["image"] == ""
    prepare = tree["inputs"]["splits"]["produced_by"]
    assert prepare["params"] == {"scale": 2, "unused_by_train": "x"}
    (raw,) = tree["inputs"]["splits"]["inputs"]["raw"]["datasets"]
    assert (raw["name"], raw["uri"]) == ("raw", "raw.csv")
    assert raw["digest"] == tree["inputs"]["splits"]["inputs"]["raw"]["digest"]


def _validator() -> Any:
    jsonschema = require("jsonschema", "checking OpenLineage events")
    referencing = require("referencing", "checking OpenLineage events")
    run_event = json.loads(RUN_EVENT_SCHEMA.read_text())
    mlc_facet = json.loads(MLC_FACET_SCHEMA.read_text())
    registry = referencing.Registry().with_resources(
        [
            (
                "https://openlineage.io/spec/2-0-2/OpenLineage.json",
                referencing.Resource.from_contents(run_event),
            ),
            (mlc_facet["$id"], referencing.Resource.from_contents(mlc_facet)),
        ]
    )
    checker = jsonschema.FormatChecker()

    @checker.checks("uri")
    def is_uri(value: object) -> bool:
        return isinstance(value, str) and bool(urllib.parse.urlsplit(value).scheme)

    schema = {
        "allOf": [
            {"$ref": "https://openlineage.io/spec/2-0-2/OpenLineage.json"},
            {
                "properties": {
                    "run": {
                        "properties": {
                            "facets": {"properties": {"mlc_step": {"$ref": mlc_facet["$id"]}}}
                        }
                    }
                }
            },
        ]
    }
    return jsonschema.Draft202012Validator(schema, registry=registry, format_checker=checker)


def test_openlineage_export_is_one_valid_run_event_per_step_upstream_first(
    applied: tuple[Path, str, str],
) -> None:
    root, commit, run_id = applied
    text = mlc(root, "lineage", f"{run_id}:train.model", "--format", "openlineage")
    events = [json.loads(line) for line in text.splitlines()]
    validator = _validator()
    for event in events:
        errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(event)]
        assert errors == []
    # The schemas can fail: no run id, a facet without `_producer`, mlc's facet without params.
    broken = json.loads(json.dumps(events[0]))
    del broken["run"]["runId"]
    del broken["job"]["facets"]["jobType"]["_producer"]
    del broken["run"]["facets"]["mlc_step"]["params"]
    assert len(list(validator.iter_errors(broken))) == 3

    prepare, train = events
    assert [e["job"]["name"] for e in events] == ["iris.prepare", "iris.train"]
    assert {e["eventType"] for e in events} == {"COMPLETE"}
    assert prepare["run"]["facets"]["parent"]["run"] == train["run"]["facets"]["parent"]["run"]
    assert str(uuid.UUID(train["run"]["runId"])) == train["run"]["runId"]
    # An output of one event is an input of the next, by namespace, name and version.
    assert prepare["outputs"][0] == train["inputs"][0]
    assert prepare["outputs"][0]["name"] == "iris/prepare.splits"
    (raw,) = prepare["inputs"]
    assert raw["name"] == "dataset/raw" and raw["facets"]["dataSource"]["uri"] == "file:raw.csv"
    facet = train["run"]["facets"]["mlc_step"]
    assert (facet["runId"], facet["gitCommit"], facet["gitDirty"]) == (run_id, commit, True)
    assert facet["params"] == {"lr": 0.1}


def test_lineage_of_a_runs_output_is_that_runs_own_even_when_it_was_a_cache_hit(
    applied: tuple[Path, str, str],
) -> None:
    root, commit, first = applied
    second = json.loads(mlc(root, "apply", "pipeline.mlspec", "--format", "json"))["run_id"]
    assert second != first

    lines = mlc(root, "lineage", f"{second}:train.model").splitlines()
    assert lines[0].endswith(f"<- step {second} train.model [cached]")
    assert lines[1] == f"│     cached from run {first} (`mlc lineage {first}:train.model`)"
    assert lines[2] == "│     params: lr=0.1"
    assert lines[3].endswith(f"; commit {commit[:10]}+dirty")
    assert lines[5].endswith(f"<- step {second} prepare.splits [cached]")
    assert lines[6] == f"    │     cached from run {first} (`mlc lineage {first}:prepare.splits`)"
    # The run that made the output shows its own execution, which ran.
    made = mlc(root, "lineage", f"{first}:train.model").splitlines()
    assert made[0].endswith(f"<- step {first} train.model")
    assert "cached from" not in "\n".join(made)

    tree = json.loads(mlc(root, "lineage", f"{second}:train.model", "--format", "json"))
    assert (tree["produced_by"]["run_id"], tree["produced_by"]["status"]) == (second, "cached")
    assert (tree["cached_from"]["run_id"], tree["cached_from"]["status"]) == (first, "ran")
    assert tree["cached_from"]["params"] == {"lr": 0.1}
    splits = tree["inputs"]["splits"]
    assert (splits["produced_by"]["run_id"], splits["cached_from"]["run_id"]) == (second, first)

    text = mlc(root, "lineage", f"{second}:train.model", "--format", "openlineage")
    events = [json.loads(line) for line in text.splitlines()]
    validator = _validator()
    for event in events:
        assert [e.message for e in validator.iter_errors(event)] == []
    made_events = [
        json.loads(line)
        for line in mlc(
            root, "lineage", f"{first}:train.model", "--format", "openlineage"
        ).splitlines()
    ]
    for hit, maker in zip(events, made_events, strict=True):
        facet = hit["run"]["facets"]["mlc_step"]
        assert (facet["runId"], facet["status"]) == (second, "cached")
        assert facet["cachedFrom"] == {
            "runId": first,
            "step": maker["run"]["facets"]["mlc_step"]["step"],
            "openlineageRunId": maker["run"]["runId"],
        }
        assert "cachedFrom" not in maker["run"]["facets"]["mlc_step"]
