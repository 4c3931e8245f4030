"""Lineage: runs, step executions and datasets, and the provenance of every output."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from mlc.store import Digest, digest_bytes, open_store
from mlc.store.lineage import (
    Dataset,
    Lineage,
    LineageError,
    Output,
    Run,
    StepExecution,
    code_version,
    new_run_id,
    open_lineage,
    render_tree,
)

RAW = digest_bytes(b"raw iris csv")
SPLITS = digest_bytes(b"splits")
MODEL = digest_bytes(b"model")
METRICS = digest_bytes(b"metrics")
LOG = digest_bytes(b"train log")
RUN1 = "20260101T120000.000Z-aaaaaa"
RUN2 = "20260102T120000.000Z-bbbbbb"


@pytest.fixture
def lineage(tmp_path: Path) -> Lineage:
    return open_lineage(open_store(tmp_path / "store"))


CODE = digest_bytes(b"def train(): ...")


def record_iris_run(lineage: Lineage, run_id: str = RUN1, started: float = 100.0) -> None:
    lineage.start_run(
        Run(
            run_id,
            "iris",
            spec_path="pipelines/iris.mlspec",
            target="laptop",
            backend="local",
            host="box",
            user="ada",
            git_commit="0123456789abcdef",
            git_dirty=True,
            params={"n_estimators": 100},
            started_at=started,
        )
    )
    lineage.record_dataset(Dataset(RAW, "raw", "data/iris.csv"))
    lineage.record_step(
        StepExecution(
            run_id,
            "prepare",
            "ran",
            cache_key="k1",
            started_at=started + 1,
            ended_at=started + 2,
            inputs={"raw": RAW},
            outputs={"splits": Output(SPLITS, "dir")},
        )
    )
    lineage.record_step(
        StepExecution(
            run_id,
            "train",
            "ran",
            cache_key="k2",
            attempts=2,
            exit_code=0,
            image="python:3.11",
            host="gpu-3",
            started_at=started + 2,
            ended_at=started + 5,
            log_ref=LOG,
            params={"n_estimators": 100},
            code={"module iris.train": CODE},
            inputs={"splits": SPLITS},
            outputs={"model": Output(MODEL)},
        )
    )
    lineage.record_step(
        StepExecution(
            run_id,
            "evaluate",
            "ran",
            started_at=started + 5,
            ended_at=started + 6,
            inputs={"model": MODEL, "splits": SPLITS},
            outputs={"metrics": Output(METRICS)},
        )
    )
    lineage.finish_run(run_id, "succeeded", started + 7)


def test_run_ids_sort_by_time_and_are_unique() -> None:
    earlier, later = new_run_id(1_000.0), new_run_id(2_000.5)
    assert earlier < later
    assert later.startswith("19700101T003320.500Z-")
    assert len({new_run_id(5.0) for _ in range(100)}) == 100


def test_a_recorded_run_is_listed_and_shown_with_its_steps(lineage: Lineage) -> None:
    record_iris_run(lineage)
    [run] = lineage.list_runs()
    assert (run.pipeline, run.status, run.ended_at, run.git_dirty) == (
        "iris",
        "succeeded",
        107.0,
        True,
    )
    assert run.params == {"n_estimators": 100}
    steps = lineage.steps_of(RUN1)
    assert [s.step_id for s in steps] == ["prepare", "train", "evaluate"]
    train = steps[1]
    assert (train.attempts, train.image, train.log_ref) == (2, "python:3.11", LOG)
    assert train.inputs == {"splits": SPLITS}
    assert train.outputs == {"model": Output(MODEL, "file")}


def test_runs_are_listed_newest_first(lineage: Lineage) -> None:
    record_iris_run(lineage, RUN1, 100.0)
    record_iris_run(lineage, RUN2, 200.0)
    assert [r.run_id for r in lineage.list_runs()] == [RUN2, RUN1]
    assert [r.run_id for r in lineage.list_runs(limit=1)] == [RUN2]


def test_a_run_is_found_by_a_unique_prefix(lineage: Lineage) -> None:
    record_iris_run(lineage, RUN1, 100.0)
    record_iris_run(lineage, RUN2, 200.0)
    assert lineage.find_run("20260102").run_id == RUN2
    with pytest.raises(LineageError, match="ambiguous"):
        lineage.find_run("2026010")
    with pytest.raises(LineageError, match="no run `nope`"):
        lineage.find_run("nope")


def test_which_step_produced_an_output(lineage: Lineage) -> None:
    record_iris_run(lineage)
    [(step, output)] = lineage.producers_of(MODEL)
    assert (step.run_id, step.step_id, output) == (RUN1, "train", "model")
    assert lineage.output_of(RUN1, "train", "model") == MODEL
    with pytest.raises(LineageError, match="no output `weights`"):
        lineage.output_of(RUN1, "train", "weights")


def test_an_artifact_is_found_by_a_unique_digest_prefix(lineage: Lineage) -> None:
    record_iris_run(lineage)
    assert lineage.complete_digest(MODEL[:19]) == MODEL
    assert lineage.complete_digest(RAW[:15]) == RAW
    with pytest.raises(LineageError, match="no recorded artifact"):
        lineage.complete_digest("sha256:zzzz")
    with pytest.raises(LineageError, match="ambiguous"):
        lineage.complete_digest("sha256:")


def test_a_real_execution_is_preferred_over_a_cache_hit_as_producer(lineage: Lineage) -> None:
    record_iris_run(lineage, RUN1, 100.0)
    lineage.start_run(Run(RUN2, "iris", started_at=200.0))
    lineage.record_step(
        StepExecution(
            RUN2,
            "train",
            "cached",
            ended_at=201.0,
            inputs={"splits": SPLITS},
            outputs={"model": Output(MODEL)},
        )
    )
    producers = lineage.producers_of(MODEL)
    assert [(s.run_id, s.status) for s, _ in producers] == [(RUN1, "ran"), (RUN2, "cached")]


def test_the_provenance_tree_reaches_the_pinned_dataset(lineage: Lineage) -> None:
    record_iris_run(lineage)
    tree = lineage.provenance(METRICS)
    assert (tree.source, tree.step and tree.step.step_id, tree.output) == (
        "step",
        "evaluate",
        "metrics",
    )
    inputs = dict(tree.inputs)
    assert set(inputs) == {"model", "splits"}
    model = inputs["model"]
    assert model.step is not None and model.step.step_id == "train"
    splits = dict(model.inputs)["splits"]
    assert splits.kind == "dir"
    raw = dict(splits.inputs)["raw"]
    assert raw.source == "dataset"
    assert raw.datasets == (Dataset(RAW, "raw", "data/iris.csv"),)
    document = tree.to_json()
    assert document["inputs"]["model"]["inputs"]["splits"]["inputs"]["raw"]["datasets"] == [
        {"digest": RAW, "name": "raw", "uri": "data/iris.csv", "kind": "file"}
    ]


def test_an_unknown_digest_has_unknown_origin(lineage: Lineage) -> None:
    tree = lineage.provenance(digest_bytes(b"who made this?"))
    assert tree.source == "unknown"
    assert tree.inputs == ()


def test_the_provenance_tree_renders_as_text(lineage: Lineage) -> None:
    record_iris_run(lineage)
    lines = render_tree(lineage.provenance(MODEL))
    short = {d: d[:19] for d in (MODEL, SPLITS, RAW)}
    assert lines == [
        f"{short[MODEL]} (file)  <- step {RUN1} train.model",
        "│     params: n_estimators=100",
        f"│     code: module iris.train {CODE[:19]}; commit 0123456789+dirty",
        "│     ran on local at gpu-3; image python:3.11",
        f"└── splits: {short[SPLITS]} (dir)  <- step {RUN1} prepare.splits",
        "    │     params: none",
        "    │     code: -; commit 0123456789+dirty",
        "    │     ran on local at -; image -",
        f"    └── raw: {RAW} (file)  <- dataset raw <data/iris.csv>",
    ]


RUN3 = "20260103T120000.000Z-cccccc"


def record_cache_hit_run(lineage: Lineage, run_id: str, started: float) -> None:
    """A run of the iris pipeline whose `prepare` and `train` were cache hits."""
    lineage.start_run(Run(run_id, "iris", backend="local", started_at=started))
    for step_id, key, inputs, outputs in (
        ("prepare", "k1", {"raw": RAW}, {"splits": Output(SPLITS, "dir")}),
        ("train", "k2", {"splits": SPLITS}, {"model": Output(MODEL)}),
    ):
        lineage.record_step(
            StepExecution(
                run_id,
                step_id,
                "cached",
                cache_key=key,
                host="laptop",
                started_at=started + 1,
                ended_at=started + 1,
                params={"n_estimators": 100} if step_id == "train" else {},
                inputs=inputs,
                outputs=outputs,
            )
        )
    lineage.finish_run(run_id, "succeeded", started + 2)


def test_the_provenance_of_a_runs_output_is_that_runs_own_and_a_hit_names_its_maker(
    lineage: Lineage,
) -> None:
    record_iris_run(lineage, RUN1, 100.0)
    record_cache_hit_run(lineage, RUN2, 200.0)
    # A later run made the same model again: it is the digest's latest producer.
    record_iris_run(lineage, RUN3, 300.0)
    assert lineage.provenance(MODEL).step == lineage.get_step(RUN3, "train")

    tree = lineage.step_provenance(lineage.get_step(RUN2, "train"), "model")
    assert tree.step == lineage.get_step(RUN2, "train")
    assert tree.cached_from == lineage.get_step(RUN1, "train")  # not RUN3's: it came later
    assert tree.cached_from_run is not None and tree.cached_from_run.run_id == RUN1
    splits = dict(tree.inputs)["splits"]
    assert splits.step == lineage.get_step(RUN2, "prepare")  # the inputs are RUN2's too
    assert splits.cached_from == lineage.get_step(RUN1, "prepare")

    short = {d: d[:19] for d in (MODEL, SPLITS, RAW)}
    assert render_tree(tree) == [
        f"{short[MODEL]} (file)  <- step {RUN2} train.model [cached]",
        f"│     cached from run {RUN1} (`mlc lineage {RUN1}:train.model`)",
        "│     params: n_estimators=100",
        f"│     code: module iris.train {CODE[:19]}; commit 0123456789+dirty",
        "│     ran on local at gpu-3; image python:3.11",
        f"└── splits: {short[SPLITS]} (dir)  <- step {RUN2} prepare.splits [cached]",
        f"    │     cached from run {RUN1} (`mlc lineage {RUN1}:prepare.splits`)",
        "    │     params: none",
        "    │     code: -; commit 0123456789+dirty",
        "    │     ran on local at -; image -",
        f"    └── raw: {RAW} (file)  <- dataset raw <data/iris.csv>",
    ]
    document = tree.to_json()
    assert (document["produced_by"]["run_id"], document["produced_by"]["status"]) == (
        RUN2,
        "cached",
    )
    assert (document["cached_from"]["run_id"], document["cached_from"]["host"]) == (RUN1, "gpu-3")


def test_the_tree_of_a_digest_is_the_run_of_its_latest_maker(lineage: Lineage) -> None:
    record_iris_run(lineage, RUN1, 100.0)
    # A later run ran `prepare` again (same splits) and took `train` from the cache.
    lineage.start_run(Run(RUN2, "iris", started_at=200.0))
    lineage.record_steps(
        [
            StepExecution(
                RUN2,
                "prepare",
                "ran",
                cache_key="k1",
                ended_at=201.0,
                inputs={"raw": RAW},
                outputs={"splits": Output(SPLITS, "dir")},
            ),
            StepExecution(
                RUN2,
                "train",
                "cached",
                cache_key="k2",
                ended_at=201.0,
                inputs={"splits": SPLITS},
                outputs={"model": Output(MODEL)},
            ),
        ]
    )
    tree = lineage.provenance(MODEL)
    assert tree.step == lineage.get_step(RUN1, "train")  # the one that ran
    splits = dict(tree.inputs)["splits"]
    assert splits.step == lineage.get_step(RUN1, "prepare")  # its run's, not the latest
    hit = lineage.step_provenance(lineage.get_step(RUN2, "train"), "model")
    assert dict(hit.inputs)["splits"].step == lineage.get_step(RUN2, "prepare")


def test_a_cache_hit_whose_maker_lineage_does_not_know_says_so(lineage: Lineage) -> None:
    record_cache_hit_run(lineage, RUN2, 200.0)
    tree = lineage.step_provenance(lineage.get_step(RUN2, "train"), "model")
    assert tree.cached_from is None and tree.to_json()["cached_from"] is None
    assert render_tree(tree)[1:5] == [
        "│     cached from a run lineage has no record of",
        "│     params: n_estimators=100",
        "│     code: -; commit -",
        "│     ran on - at -; image -",
    ]


def test_recording_a_step_again_replaces_it(lineage: Lineage) -> None:
    record_iris_run(lineage)
    lineage.record_step(StepExecution(RUN1, "train", "failed", exit_code=3))
    train = lineage.get_step(RUN1, "train")
    assert (train.status, train.exit_code, train.outputs) == ("failed", 3, {})
    assert lineage.producers_of(MODEL) == []


def test_statuses_and_digests_are_validated(lineage: Lineage) -> None:
    lineage.start_run(Run(RUN1, "iris", started_at=1.0))
    with pytest.raises(LineageError, match="invalid step status"):
        lineage.record_step(StepExecution(RUN1, "x", "exploded"))  # type: ignore[arg-type]
    with pytest.raises(Exception, match="not a digest"):
        lineage.record_step(StepExecution(RUN1, "x", "ran", inputs={"a": Digest("nope")}))


def test_recent_digests_are_the_outputs_inputs_and_logs_of_the_latest_runs(
    lineage: Lineage,
) -> None:
    record_iris_run(lineage, RUN1, 100.0)
    old_only = digest_bytes(b"old output")
    lineage.record_step(StepExecution(RUN1, "extra", "ran", outputs={"x": Output(old_only)}))
    record_iris_run(lineage, RUN2, 200.0)
    assert lineage.recent_digests(1) == {RAW, SPLITS, MODEL, METRICS, LOG}
    assert old_only in lineage.recent_digests(2)


def test_a_local_store_writes_no_lineage_records(lineage: Lineage) -> None:
    record_iris_run(lineage)
    assert lineage.store.list_records("runs") == []


def test_records_round_trip_into_another_database(tmp_path: Path) -> None:
    store = open_store(f"memory://lineage-{tmp_path.name}", cache_dir=tmp_path / "one")
    record_iris_run(open_lineage(store))
    assert len(store.list_records("steps")) == 3
    other = Lineage(store, str(tmp_path / "other.sqlite"))
    assert other.sync() == 6  # run, run end, dataset, three steps
    assert other.db.list_runs() == open_lineage(store).list_runs()
    assert other.provenance(METRICS) == open_lineage(store).provenance(METRICS)


def test_steps_recorded_at_once_are_one_record_and_a_later_record_of_a_step_wins(
    tmp_path: Path,
) -> None:
    store = open_store(f"memory://batched-{tmp_path.name}", cache_dir=tmp_path / "one")
    lineage = open_lineage(store)
    record_iris_run(lineage, RUN2)
    steps = lineage.steps_of(RUN2)
    lineage.record_steps(steps)  # all three again, together
    later = StepExecution(RUN2, "train", "failed", started_at=200.0, ended_at=201.0)
    lineage.record_steps([later])
    assert len(store.list_records("steps")) == 3 + 1 + 1  # one by one, together, the later
    other = Lineage(store, str(tmp_path / "other.sqlite"))
    other.sync()
    assert other.steps_of(RUN2) == open_lineage(store).steps_of(RUN2)
    assert other.get_step(RUN2, "train").status == "failed"


def test_code_version_reads_the_commit_and_dirty_flag(tmp_path: Path) -> None:
    assert code_version(tmp_path) == code_version(tmp_path)  # not a repository: no facts
    assert code_version(tmp_path).commit is None
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q", str(tmp_path)], check=True)
    (tmp_path / "f").write_text("1")
    subprocess.run([*git, "-C", str(tmp_path), "add", "f"], check=True)
    subprocess.run([*git, "-C", str(tmp_path), "commit", "-qm", "c"], check=True)
    clean = code_version(tmp_path)
    assert clean.commit is not None and len(clean.commit) == 40 and clean.dirty is False
    (tmp_path / "f").write_text("2")
    assert code_version(tmp_path).dirty is True
