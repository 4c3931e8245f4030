"""What every store promises, whatever it is (local directory, generic fsspec, S3).

The same tests run against each kind of store, so the layout and behaviour are provably the
same everywhere.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path

import pytest
from mlc.store import (
    DestinationExistsError,
    ManifestError,
    ObjectNotFoundError,
    RecordExistsError,
    RecordNotFoundError,
    Store,
    StoreError,
    UnreadableRecordError,
    UnsafePathError,
    digest_bytes,
    gc,
)
from mlc.store.layout import dir_marker_key, object_key, record_key

from .conftest import raw_write, store_keys, write_tree

TREE = {
    "train.csv": "a,b\n1,2\n",
    "nested/deeper/test.csv": "a,b\n3,4\n",
    "nested/copy-of-train.csv": "a,b\n1,2\n",
    "empty.txt": "",
    "big.bin": bytes(range(256)) * 8192,  # 2 MiB: the streaming path
}


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def test_put_bytes_returns_the_sha256_digest_and_stores_the_content(store: Store) -> None:
    digest = store.put_bytes(b"hello")
    assert digest == sha(b"hello")
    assert store.has(digest)
    assert store.kind(digest) == "file"
    assert store.read_bytes(digest) == b"hello"
    with store.open_bytes(digest) as handle:
        assert handle.read() == b"hello"
    assert store.size(digest) == 5


def test_put_bytes_many_stores_each_in_order_and_duplicates_once(store: Store) -> None:
    items = [b"first log", b"second log", b"first log", b""]
    digests = store.put_bytes_many(items)
    assert digests == [sha(item) for item in items]
    for digest, item in zip(digests, items, strict=True):
        assert store.read_bytes(digest) == item
    # Each distinct object once, whether as a file of its own or in a pack.
    assert sorted(o.digest for o in store.iter_objects()) == sorted(set(digests))
    assert store.put_bytes_many([]) == []


def test_putting_the_same_bytes_twice_stores_one_object(store: Store) -> None:
    first = store.put_bytes(b"same")
    second = store.put_bytes(b"same")
    assert first == second
    assert store_keys(store) == [object_key(first)]


def test_a_missing_object_is_reported_with_a_store_error(store: Store) -> None:
    missing = digest_bytes(b"never stored")
    assert not store.has(missing)
    with pytest.raises(ObjectNotFoundError, match="not in the store"):
        store.kind(missing)
    with pytest.raises(ObjectNotFoundError):
        store.read_bytes(missing)


def test_snapshot_of_a_file_is_a_file_version(store: Store, tmp_path: Path) -> None:
    write_tree(tmp_path / "src", {"model.pt": b"weights"})
    version = store.snapshot(tmp_path / "src" / "model.pt")
    assert (version.digest, version.kind, version.size, version.file_count) == (
        sha(b"weights"),
        "file",
        7,
        1,
    )
    assert store.read_bytes(version.digest) == b"weights"


def test_snapshot_of_a_directory_stores_a_canonical_manifest(store: Store, tmp_path: Path) -> None:
    write_tree(tmp_path / "src", TREE)
    version = store.snapshot(tmp_path / "src")
    assert version.kind == "dir"
    assert version.file_count == len(TREE)
    assert version.size == sum(len(v) for v in TREE.values())
    assert store.kind(version.digest) == "dir"
    raw = store.read_bytes(version.digest)
    assert sha(raw) == version.digest
    document = json.loads(raw)
    assert raw == json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
    assert document["format"] == "mlc.manifest"
    paths = [e["path"] for e in document["entries"]]
    assert paths == sorted(TREE)
    manifest = store.read_manifest(version.digest)
    for entry in manifest:
        content = TREE[entry.path]
        data = content.encode() if isinstance(content, str) else content
        assert entry.digest == sha(data)
        assert entry.size == len(data)
        assert store.read_bytes(entry.digest) == data


def test_the_directory_version_depends_only_on_content_paths_and_modes(
    store: Store, tmp_path: Path
) -> None:
    a = store.snapshot(write_tree(tmp_path / "a", TREE))
    b = store.snapshot(write_tree(tmp_path / "b", TREE, age=100))
    assert a.digest == b.digest
    write_tree(tmp_path / "c", {**TREE, "train.csv": "a,b\n1,3\n"})
    assert store.snapshot(tmp_path / "c").digest != a.digest
    write_tree(tmp_path / "d", TREE)
    os.chmod(tmp_path / "d" / "train.csv", 0o755)
    assert store.snapshot(tmp_path / "d").digest != a.digest


def test_identical_files_in_a_tree_are_stored_once(store: Store, tmp_path: Path) -> None:
    version = store.snapshot(write_tree(tmp_path / "src", TREE))
    objects = [o.digest for o in store.iter_objects()]
    # 5 entries, two of them identical, plus the manifest itself
    assert len(objects) == len(set(objects)) == 5
    assert version.digest in objects
    assert store_keys(store).count(dir_marker_key(version.digest)) == 1


def test_layout_is_objects_by_fanout_plus_a_directory_index(store: Store, tmp_path: Path) -> None:
    version = store.snapshot(write_tree(tmp_path / "src", {"x": "x"}))
    hexpart = version.digest.split(":")[1]
    assert f"objects/sha256/{hexpart[:2]}/{hexpart[2:]}" in store_keys(store)
    assert f"index/dirs/sha256/{hexpart[:2]}/{hexpart[2:]}" in store_keys(store)


def test_materialize_recreates_a_directory_read_only(store: Store, tmp_path: Path) -> None:
    os.chmod(write_tree(tmp_path / "src", TREE) / "train.csv", 0o755)
    version = store.snapshot(tmp_path / "src")
    out = tmp_path / "out" / "data"
    result = store.materialize(version.digest, out)
    assert result.digest == version.digest
    for relpath, content in TREE.items():
        data = content.encode() if isinstance(content, str) else content
        assert (out / relpath).read_bytes() == data
        mode = stat.S_IMODE((out / relpath).stat().st_mode)
        assert mode & 0o222 == 0, relpath
    assert stat.S_IMODE((out / "train.csv").stat().st_mode) & 0o111
    assert sorted(p.name for p in out.parent.iterdir()) == ["data"]  # no temporary left


def test_materialize_writable_gives_independent_copies(store: Store, tmp_path: Path) -> None:
    version = store.snapshot(write_tree(tmp_path / "src", {"a.txt": "original"}))
    out = tmp_path / "out"
    store.materialize(version.digest, out, readonly=False)
    (out / "a.txt").write_text("edited")
    assert store.verify_all().ok
    assert store.read_bytes(store.read_manifest(version.digest).entries[0].digest) == b"original"


def test_materialize_a_single_file(store: Store, tmp_path: Path) -> None:
    digest = store.put_bytes(b"file content")
    store.materialize(digest, tmp_path / "f.bin")
    assert (tmp_path / "f.bin").read_bytes() == b"file content"


def test_materialize_refuses_an_existing_destination(store: Store, tmp_path: Path) -> None:
    digest = store.put_bytes(b"x")
    (tmp_path / "taken").write_text("mine")
    with pytest.raises(DestinationExistsError, match="already exists"):
        store.materialize(digest, tmp_path / "taken")
    assert (tmp_path / "taken").read_text() == "mine"


@pytest.mark.parametrize(
    "bad_path", ["../escape.txt", "/etc/passwd", "a/../../b", "./a", "a//b", "a\\..\\b"]
)
def test_manifests_that_escape_their_directory_are_rejected(
    store: Store, tmp_path: Path, bad_path: str
) -> None:
    entry_digest = store.put_bytes(b"payload")
    forged = json.dumps(
        {
            "entries": [{"digest": entry_digest, "mode": 420, "path": bad_path, "size": 7}],
            "format": "mlc.manifest",
            "version": 1,
        },
        sort_keys=True,
        separators=(",", ":"),
    ).encode()
    digest = store.put_bytes(forged)
    raw_write(store, dir_marker_key(digest), b"")
    with pytest.raises(UnsafePathError):
        store.read_manifest(digest)
    with pytest.raises(UnsafePathError):
        store.materialize(digest, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert not (tmp_path / "escape.txt").exists()
    assert not store.verify(digest)


def test_a_file_is_not_a_manifest(store: Store) -> None:
    digest = store.put_bytes(b'{"format":"mlc.manifest"}')
    assert store.kind(digest) == "file"
    with pytest.raises(ManifestError, match="not a directory"):
        store.read_manifest(digest)


def test_verify_detects_corrupt_objects(store: Store, tmp_path: Path) -> None:
    version = store.snapshot(write_tree(tmp_path / "src", {"a": "aaa", "b": "bbb"}))
    victim = store.read_manifest(version.digest).entries[0].digest
    assert store.verify(victim)
    assert store.verify_all().ok
    raw_write(store, object_key(victim), b"tampered")
    assert not store.verify(victim)
    report = store.verify_all()
    assert report.checked == 3
    assert list(report.bad) == [victim]
    assert "hashes to" in report.bad[victim]


def test_records_are_created_exactly_once(store: Store) -> None:
    store.put_record("runs", "20260101T000000.000Z-abc123", {"pipeline": "iris", "n": 1})
    with pytest.raises(RecordExistsError, match="already exists"):
        store.put_record("runs", "20260101T000000.000Z-abc123", {"pipeline": "other"})
    assert store.get_record("runs", "20260101T000000.000Z-abc123") == {"pipeline": "iris", "n": 1}
    store.put_record("runs", "a-second", {})
    assert store.list_records("runs") == ["20260101T000000.000Z-abc123", "a-second"]
    assert store.list_records("nothing-here") == []
    with pytest.raises(RecordNotFoundError):
        store.get_record("runs", "absent")


@pytest.mark.parametrize("torn", [b"", b'{"pipeline": "ir', b"[1, 2]"])
def test_a_record_cut_short_reads_as_unreadable(store: Store, torn: bytes) -> None:
    # (A power loss can leave a local record empty or partial: records are not flushed.)
    store.put_record("runs", "r1", {"pipeline": "iris"})
    raw_write(store, record_key("runs", "r1"), torn)
    with pytest.raises(UnreadableRecordError, match="record runs/r1 is"):
        store.get_record("runs", "r1")


@pytest.mark.parametrize("name", ["../x", "a/b", ".hidden", "", "x" * 201])
def test_record_names_cannot_escape_the_records_directory(store: Store, name: str) -> None:
    with pytest.raises(StoreError, match="invalid record"):
        store.put_record("runs", name, {})
    with pytest.raises(StoreError, match="invalid record"):
        store.put_record(name, "key", {})


@pytest.fixture
def later(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """The store's clock runs 5 s ahead, so objects just written are past a grace of 0 even on
    stores whose timestamps have a resolution of one second (S3)."""
    now = store.now
    monkeypatch.setattr(store, "now", lambda: now() + 5)


@pytest.mark.usefixtures("later")
def test_gc_keeps_what_roots_reach_and_removes_the_rest(store: Store, tmp_path: Path) -> None:
    kept = store.snapshot(write_tree(tmp_path / "kept", {"a": "keep me", "b/c": "me too"}))
    lost = store.put_bytes(b"unreferenced")
    preview = gc(store, [kept.digest], grace=0, dry_run=True)
    assert preview.removed_digests == (lost,)
    assert store.has(lost)
    report = gc(store, [kept.digest], grace=0)
    assert (report.removed, report.kept) == (1, 3)
    assert report.bytes_freed == len(b"unreferenced")
    assert not store.has(lost)
    assert store.verify_all().ok
    assert store.read_manifest(kept.digest)


def test_gc_keeps_unreachable_objects_younger_than_the_grace_period(store: Store) -> None:
    young = store.put_bytes(b"just written")
    report = gc(store, [], grace=3600)
    assert report.removed == 0
    assert report.too_young == 1
    assert store.has(young)


@pytest.mark.usefixtures("later")
def test_gc_of_a_directory_removes_its_marker_too(store: Store, tmp_path: Path) -> None:
    version = store.snapshot(write_tree(tmp_path / "src", {"a": "x"}))
    gc(store, [], grace=0)
    assert store_keys(store) == []
    assert not store.has(version.digest)


def test_gc_reports_roots_missing_from_the_store(store: Store) -> None:
    absent = digest_bytes(b"absent")
    report = gc(store, [absent], grace=0)
    assert report.missing_roots == (absent,)


def test_racing_writers_create_a_record_exactly_once(store: Store) -> None:
    import threading

    barrier = threading.Barrier(6)
    winners: list[int] = []

    def attempt(n: int) -> None:
        barrier.wait()
        try:
            store.put_record("locks", "the-one", {"writer": n})
            winners.append(n)
        except RecordExistsError:
            pass

    threads = [threading.Thread(target=attempt, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(winners) == 1
    assert store.get_record("locks", "the-one") == {"writer": winners[0]}
