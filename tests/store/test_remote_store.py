"""Remote stores: the same layout as a local store, shared between machines, create-only."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
from mlc.store import Store, open_store
from mlc.store import remote as remote_module
from mlc.store.errors import RecordNotFoundError
from mlc.store.layout import object_key
from mlc.store.lineage import Output, Run, StepExecution, open_lineage
from mlc.store.remote import FsspecStore

from .conftest import S3Server, store_keys, write_tree

TREE = {"a.csv": "1,2\n", "sub/b.csv": "3,4\n", "sub/c.bin": os.urandom(100_000)}


@pytest.fixture
def s3_uri(s3_server: S3Server) -> str:
    return f"s3://{s3_server.bucket}/{uuid.uuid4().hex}"


def open_s3(uri: str, server: S3Server, cache: Path) -> Store:
    return open_store(uri, storage_options=server.storage_options, cache_dir=cache)


def test_importing_the_store_does_not_import_fsspec() -> None:
    import subprocess
    import sys

    code = "import mlc.store, mlc.store.lineage, sys; print('fsspec' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "False", result.stderr


@pytest.mark.s3
def test_a_local_and_an_s3_store_have_the_same_layout(
    s3_server: S3Server, s3_uri: str, tmp_path: Path
) -> None:
    src = write_tree(tmp_path / "src", TREE)
    local = open_store(tmp_path / "local")
    remote = open_s3(s3_uri, s3_server, tmp_path / "cache")
    version = local.snapshot(src)
    assert version.digest == remote.snapshot(src).digest
    local.put_record("runs", "r1", {"x": 1})
    remote.put_record("runs", "r1", {"x": 1})
    # The same objects, markers and records; the local store keeps small objects in packs.
    assert sorted(o.digest for o in local.iter_objects()) == sorted(
        o.digest for o in remote.iter_objects()
    )
    shared = ("index/", "records/")
    assert [k for k in store_keys(local) if k.startswith(shared)] == [
        k for k in store_keys(remote) if k.startswith(shared)
    ]
    # A local store copied file by file to S3 is a store there: packs are read as they are.
    copied_uri = f"{s3_uri}-copied"
    copy = open_s3(copied_uri, s3_server, tmp_path / "copy-cache")
    for path in sorted((tmp_path / "local").rglob("*")):
        relative = path.relative_to(tmp_path / "local").as_posix()
        if path.is_file() and relative.startswith(("objects/", "index/", "records/", "packs/")):
            copy.fs.pipe_file(copy.path_of(relative), path.read_bytes())  # type: ignore[attr-defined]
    copy.materialize(version.digest, tmp_path / "from-the-copy")
    for relpath, content in TREE.items():
        expected = content.encode() if isinstance(content, str) else content
        assert (tmp_path / "from-the-copy" / relpath).read_bytes() == expected
    assert copy.verify_all().ok


@pytest.mark.s3
def test_two_machines_share_objects_through_s3(
    s3_server: S3Server, s3_uri: str, tmp_path: Path
) -> None:
    laptop = open_s3(s3_uri, s3_server, tmp_path / "laptop-cache")
    cluster = open_s3(s3_uri, s3_server, tmp_path / "cluster-cache")
    version = laptop.snapshot(write_tree(tmp_path / "src", TREE))
    out = tmp_path / "on-the-cluster"
    cluster.materialize(version.digest, out)
    assert (out / "sub" / "c.bin").read_bytes() == TREE["sub/c.bin"]
    # the cluster's own stat cache is cold; snapshotting the same files uploads nothing new
    before = store_keys(cluster)
    assert cluster.snapshot(tmp_path / "src").digest == version.digest
    assert store_keys(cluster) == before


@pytest.mark.s3
def test_an_existing_s3_object_is_never_overwritten(
    s3_server: S3Server, s3_uri: str, tmp_path: Path
) -> None:
    store = open_s3(s3_uri, s3_server, tmp_path / "cache")
    assert isinstance(store, FsspecStore) and store.conditional_puts
    digest = store.put_bytes(b"first")
    key = object_key(digest)
    assert store._create_only(key, b"first") is False
    assert store.read_bytes(digest) == b"first"


@pytest.mark.s3
def test_lineage_written_on_one_machine_is_read_on_another(
    s3_server: S3Server, s3_uri: str, tmp_path: Path
) -> None:
    writer_store = open_s3(s3_uri, s3_server, tmp_path / "a")
    model = writer_store.put_bytes(b"model")
    writer = open_lineage(writer_store)
    writer.start_run(Run("20260101T000000.000Z-aaaaaa", "iris", started_at=1.0))
    writer.record_step(
        StepExecution(
            "20260101T000000.000Z-aaaaaa", "train", "ran", outputs={"model": Output(model)}
        )
    )
    writer.finish_run("20260101T000000.000Z-aaaaaa", "succeeded", 2.0)
    reader = open_lineage(open_s3(s3_uri, s3_server, tmp_path / "b"))
    assert reader.list_runs() == []
    assert reader.sync() == 3
    assert reader.sync() == 0
    [run] = reader.list_runs()
    assert (run.pipeline, run.status, run.ended_at) == ("iris", "succeeded", 2.0)
    [(step, output)] = reader.producers_of(model)
    assert (step.step_id, output) == ("train", "model")


@pytest.mark.parametrize("kind", ["memory", pytest.param("s3", marks=pytest.mark.s3)])
def test_large_files_are_uploaded_from_a_stable_local_copy(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(remote_module, "IN_MEMORY_LIMIT", 1000)
    if kind == "memory":
        store = open_store(f"memory://big-{uuid.uuid4().hex}", cache_dir=tmp_path / "cache")
    else:
        server = request.getfixturevalue("s3_server")
        store = open_s3(f"s3://{server.bucket}/{uuid.uuid4().hex}", server, tmp_path / "cache")
    src = write_tree(tmp_path / "src", {"big.bin": os.urandom(50_000)})
    version = store.snapshot(src / "big.bin")
    assert store.read_bytes(version.digest) == (src / "big.bin").read_bytes()
    assert os.listdir(tmp_path / "cache" / "staging") == []
    assert store.verify_all().ok


def test_the_generic_fsspec_path_leaves_no_temporary_keys(tmp_path: Path) -> None:
    store = open_store(f"memory://tmp-{uuid.uuid4().hex}", cache_dir=tmp_path / "cache")
    assert isinstance(store, FsspecStore) and not store.conditional_puts
    store.snapshot(write_tree(tmp_path / "src", TREE))
    assert store.fs.find(store.path_of("tmp")) == []


@pytest.mark.s3
def test_reading_a_record_or_missing_one_is_one_request(
    s3_uri: str, s3_server: S3Server, tmp_path: Path
) -> None:
    store = open_s3(s3_uri, s3_server, tmp_path / "cache")
    store.put_record("cache", "abc", {"x": 1})
    sent: list[str] = []
    client = store.fs.s3  # type: ignore[attr-defined]
    client.meta.events.register("before-send.s3", lambda **event: sent.append("request"))
    assert store.get_record("cache", "abc") == {"x": 1}
    with pytest.raises(RecordNotFoundError):
        store.get_record("cache", "absent")
    assert len(sent) == 2  # one GET each: no HEAD for the size, no listing for the miss
