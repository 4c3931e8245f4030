"""Attempt directories: prepared with read-only inputs, emptied after use, reused as they are."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from mlc.runtime.errors import StepFailure
from mlc.runtime.workdir import OutputSlot, collect_outputs, empty_attempt, prepare_attempt
from mlc.store.local import LocalStore

OUTPUTS = (OutputSlot("model", "file"), OutputSlot("shards", "dir"))


def test_a_reused_directory_holds_only_the_new_attempt(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    data = store.put_bytes(b"rows\n")
    root = tmp_path / "attempt"
    _, first = prepare_attempt(root, store, {"data": data}, OUTPUTS)
    Path(first.outputs["model"]).write_text("half-written")
    (root / "tmp" / "scratch").write_text("left behind")

    attempt, second = prepare_attempt(root, store, {}, (OutputSlot("report", "metrics"),))

    assert sorted(p.name for p in root.iterdir()) == ["outputs", "tmp"]
    assert not any(attempt.tmp.iterdir())
    assert not any(attempt.outputs.iterdir())
    assert second.inputs == {}


def test_inputs_are_read_only_and_outputs_are_checked_before_anything_is_stored(
    tmp_path: Path,
) -> None:
    store = LocalStore(tmp_path / "store")
    data = store.put_bytes(b"rows\n")
    _, paths = prepare_attempt(tmp_path / "attempt", store, {"data": data}, OUTPUTS)
    assert not os.access(paths.inputs["data"], os.W_OK) or os.geteuid() == 0
    assert Path(paths.inputs["data"]).read_bytes() == b"rows\n"
    Path(paths.outputs["model"]).write_text("weights")
    os.rmdir(paths.outputs["shards"])
    Path(paths.outputs["shards"]).write_text("not a directory")
    objects_before = sum(1 for _ in store.iter_objects())
    with pytest.raises(StepFailure, match="`shards` is a `dir`"):
        collect_outputs(store, OUTPUTS, paths, tmp_path / "attempt")
    assert sum(1 for _ in store.iter_objects()) == objects_before


def test_emptying_leaves_nothing_of_the_attempt_and_keeps_its_directories_empty(
    tmp_path: Path,
) -> None:
    # The directories stay (making and removing them costs a journal commit each on some
    # filesystems); what an attempt left anywhere goes.
    root = tmp_path / "attempt"
    empty_attempt(root)
    (root / "inputs").mkdir()
    (root / "inputs" / "x").write_text("x")
    (root / "inputs" / "x").chmod(0o444)
    (root / "outputs").mkdir()
    (root / "outputs" / "model").mkdir()
    (root / "outputs" / "model" / "weights").write_text("w")
    (root / "tmp" / "deep").mkdir()
    (root / "tmp" / "deep" / "file").write_text("y")
    (root / "stray").write_text("z")

    empty_attempt(root)

    assert sorted(p.name for p in root.iterdir()) == ["inputs", "outputs", "tmp"]
    assert not any(any(d.iterdir()) for d in root.iterdir())


def test_a_directory_a_step_made_read_only_is_removed_when_emptying(tmp_path: Path) -> None:
    root = tmp_path / "attempt"
    empty_attempt(root)
    (root / "outputs").mkdir()
    (root / "outputs" / "model").write_text("w")
    (root / "outputs").chmod(0o555)
    try:
        empty_attempt(root)
    finally:
        if (root / "outputs").exists():
            (root / "outputs").chmod(0o755)
    assert not (root / "outputs").exists() or not any((root / "outputs").iterdir())


def test_an_output_link_that_leaves_the_attempt_directory_fails_the_step(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    secret = tmp_path / "secret.txt"
    secret.write_text("not the step's\n")
    root = tmp_path / "attempt"
    _, paths = prepare_attempt(root, store, {}, OUTPUTS)
    Path(paths.outputs["model"]).symlink_to(secret)
    objects_before = sum(1 for _ in store.iter_objects())
    with pytest.raises(StepFailure) as failure:
        collect_outputs(store, OUTPUTS, paths, root)
    assert str(failure.value) == (
        f"output `model`: `outputs/model` is a symbolic link to `{secret}` ({secret}), outside "
        "the attempt directory; write or copy the file into the output instead of linking to it"
    )
    assert sum(1 for _ in store.iter_objects()) == objects_before


def test_a_link_deep_in_a_dir_output_is_followed_to_where_it_resolves(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    root = tmp_path / "attempt"
    _, paths = prepare_attempt(root, store, {}, OUTPUTS)
    Path(paths.outputs["model"]).write_text("weights")
    shards = Path(paths.outputs["shards"])
    (shards / "part").mkdir()
    # Relative and `..`-laden, through the attempt's own tmp/: still outside once resolved.
    (shards / "part" / "passwd").symlink_to("../../../tmp/../../../etc/passwd")
    with pytest.raises(StepFailure, match=r"`outputs/shards/part/passwd` is a symbolic link to "):
        collect_outputs(store, OUTPUTS, paths, root)


def test_links_inside_the_attempt_directory_are_stored_as_their_content(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    data = store.put_bytes(b"rows\n")
    root = tmp_path / "attempt"
    _, paths = prepare_attempt(root, store, {"data": data}, OUTPUTS)
    Path(paths.outputs["model"]).symlink_to(paths.inputs["data"])
    (root / "tmp" / "w").write_text("w")
    (Path(paths.outputs["shards"]) / "w").symlink_to(root / "tmp" / "w")
    collected = collect_outputs(store, OUTPUTS, paths, root)
    assert collected["model"].digest == data
