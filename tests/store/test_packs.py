"""Packs: a local store keeps the small objects of a batch in one file, and every read path,
verification and garbage collection treat them like objects of their own."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path
from types import SimpleNamespace

from mlc.store import packs as packs_module
from mlc.store.digest import digest_bytes
from mlc.store.gc import gc
from mlc.store.local import LocalStore
from mlc.store.packs import PACKED_MAX, PACKS, LocalPackFiles, PackIndex, PackWriter
from pytest import MonkeyPatch

from .conftest import write_tree

SMALL = {"a.csv": "1,2\n", "sub/b.csv": "3,4\n", "sub/c.csv": "5,6\n"}


def loose_objects(store: LocalStore) -> list[str]:
    return [name for _, _, names in os.walk(Path(store.root) / "objects") for name in names]


def pack_files(store: LocalStore) -> list[str]:
    return sorted(os.listdir(Path(store.root) / PACKS))


def test_the_small_files_of_a_snapshot_become_one_pack(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    big = os.urandom(PACKED_MAX + 1)
    write_tree(tmp_path / "src", {**SMALL, "big.bin": big})
    version = store.snapshot(tmp_path / "src")
    # The manifest and the big file are files of their own; the three small ones share a pack.
    assert len(loose_objects(store)) == 2
    assert [name.rsplit(".", 1)[1] for name in pack_files(store)] == ["idx", "pack"]
    for entry in store.read_manifest(version.digest):
        assert store.has(entry.digest)
        assert store.size(entry.digest) == entry.size
        with store.open_bytes(entry.digest) as handle:
            assert len(handle.read()) == entry.size
    assert store.verify_all().ok


def test_a_batch_with_a_single_small_object_stores_it_loose(tmp_path: Path) -> None:
    """A pack of one would be two new files (pack and index) where a loose object is one, and
    a loose object can be hard-linked into a step's inputs."""
    store = LocalStore(tmp_path / "store")
    (tmp_path / "out").write_text("one output\n")
    version = store.snapshot(tmp_path / "out")
    assert loose_objects(store) == [str(version.digest)[9:]]
    assert not (Path(store.root) / PACKS).exists() or pack_files(store) == []
    assert store.read_bytes(version.digest) == b"one output\n"
    (tmp_path / "again").write_text("one output\n")
    assert store.snapshot(tmp_path / "again").digest == version.digest
    assert len(loose_objects(store)) == 1  # found loose, not stored again
    store.put_bytes_many([b"one log"])
    assert len(loose_objects(store)) == 2
    store.put_bytes_many([b"two", b"logs"])  # two small objects: a pack
    assert len(loose_objects(store)) == 2 and len(pack_files(store)) == 2
    assert not os.listdir(Path(store.root) / "tmp")
    assert store.verify_all().ok


def test_a_packed_file_is_materialised_as_a_read_only_copy(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    version = store.snapshot(write_tree(tmp_path / "src", SMALL))
    store.materialize(version.digest, tmp_path / "out")
    for relpath, content in SMALL.items():
        path = tmp_path / "out" / relpath
        assert path.read_text() == content
        assert stat.S_IMODE(path.stat().st_mode) == 0o444


def test_another_store_object_sees_packs_written_after_it_looked(tmp_path: Path) -> None:
    reader = LocalStore(tmp_path / "store")
    assert not reader.has(digest_bytes(b"1,2\n"))
    writer = LocalStore(tmp_path / "store")
    version = writer.snapshot(write_tree(tmp_path / "src", SMALL))
    assert all(reader.has(entry.digest) for entry in reader.read_manifest(version.digest))


def test_a_pack_published_within_the_same_mtime_tick_is_still_seen(
    tmp_path: Path, monkeypatch: MonkeyPatch
) -> None:
    """A filesystem with coarse timestamps may give `packs/` the same mtime before and after
    another process's pack: a directory changed that recently is listed again."""
    # "Recently" is an hour here, so that a slow machine cannot make the listing look settled.
    monkeypatch.setattr(packs_module, "RACY_NANOSECONDS", 3600 * 10**9)
    reader = LocalStore(tmp_path / "store")
    writer = LocalStore(tmp_path / "store")
    writer.snapshot(write_tree(tmp_path / "first", {"a.csv": "first\n", "b.csv": "b\n"}))
    packs = Path(reader.root) / PACKS
    assert reader.has(digest_bytes(b"first\n"))
    tick = packs.stat().st_mtime_ns
    writer.snapshot(write_tree(tmp_path / "second", {"a.csv": "second\n", "b.csv": "b2\n"}))
    os.utime(packs, ns=(tick, tick))  # the second pack landed within the same tick
    assert reader.has(digest_bytes(b"second\n"))


def test_a_store_knows_its_own_packs_without_listing_them_again(
    tmp_path: Path, monkeypatch: MonkeyPatch
) -> None:
    store = LocalStore(tmp_path / "store")
    store.snapshot(write_tree(tmp_path / "src", SMALL))
    listed: list[str] = []
    names = LocalPackFiles.names
    monkeypatch.setattr(LocalPackFiles, "names", lambda files: listed.append("") or names(files))
    assert store.has(digest_bytes(b"3,4\n"))
    assert listed == []


def test_a_writer_lists_packs_at_most_once_a_second_and_a_miss_costs_a_second_copy(
    tmp_path: Path, monkeypatch: MonkeyPatch
) -> None:
    """Each step with small outputs adds a pack: listing `packs/` before every snapshot would
    read every pack's name once per step."""
    clock = {"now": 1000.0}
    fake_time = SimpleNamespace(monotonic=lambda: clock["now"], time_ns=time.time_ns)
    monkeypatch.setattr(packs_module, "time", fake_time)
    store = LocalStore(tmp_path / "store")
    other = LocalStore(tmp_path / "store")
    listed: list[str] = []
    names = LocalPackFiles.names
    monkeypatch.setattr(LocalPackFiles, "names", lambda files: listed.append("") or names(files))

    def outputs(value: str) -> dict[str, str]:  # two small files: a pack
        return {"out": f"{value}\n", "meta": f"{value} meta\n"}

    for index in range(5):  # five steps' outputs within the same second: one listing
        store.snapshot(write_tree(tmp_path / f"step{index}", outputs(str(index))))
    assert len(listed) == 1
    other.snapshot(write_tree(tmp_path / "other", outputs("shared")))
    store.snapshot(write_tree(tmp_path / "again", outputs("shared")))  # not seen yet
    assert store.has(digest_bytes(b"shared\n"))  # (a reader lists again on a miss)
    assert len(pack_files(store)) == 2 * 7  # the shared object was packed twice
    clock["now"] += packs_module.WRITER_RELIST_SECONDS
    listed.clear()
    store.snapshot(write_tree(tmp_path / "later", outputs("later")))
    assert len(listed) == 1
    assert store.verify_all().ok


def test_verify_finds_a_flipped_byte_inside_a_pack(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    version = store.snapshot(write_tree(tmp_path / "src", SMALL))
    victim = next(e.digest for e in store.read_manifest(version.digest) if e.path == "a.csv")
    where = store.packs.find(victim)
    assert where is not None
    pack = Path(store.root, PACKS, f"{where.pack}.pack")
    os.chmod(pack, 0o644)
    data = bytearray(pack.read_bytes())
    data[where.offset] ^= 0xFF
    pack.write_bytes(bytes(data))
    report = store.verify_all()
    assert list(report.bad) == [victim]
    assert "hashes to" in report.bad[victim]


def test_gc_removes_a_dead_pack_and_rewrites_a_partly_dead_one(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    kept = store.snapshot(write_tree(tmp_path / "kept", {"x.csv": "x\n", "y.csv": "y\n"}))
    dropped = store.snapshot(write_tree(tmp_path / "dropped", {"z.csv": "z\n"}))
    mixed = write_tree(tmp_path / "mixed", {"w.csv": "w\n", "x.csv": "x\n", "v.csv": "v\n"})
    store.snapshot(mixed)
    old = time.time() - 3600
    for name in pack_files(store):
        os.utime(Path(store.root, PACKS, name), (old, old))
    for path in Path(store.root, "objects").rglob("*"):
        if path.is_file():
            os.utime(path, (old, old))

    report = gc(store, [kept.digest], grace=60)

    # `dropped`'s pack had nothing live: gone. The `mixed` pack held `x.csv`, which `kept`
    # also uses (it is in both packs), and two dead files: rewritten or dropped.
    live = {e.digest for e in store.read_manifest(kept.digest)} | {kept.digest}
    assert {o.digest for o in store.iter_objects()} == live
    assert not store.has(dropped.digest)
    assert report.removed == len({"z", "w", "v"}) + 2  # three dead files, two dead manifests
    store.materialize(kept.digest, tmp_path / "again")
    assert (tmp_path / "again" / "x.csv").read_text() == "x\n"
    assert store.verify_all().ok


def test_a_pack_whose_index_never_came_is_invisible_and_cleaned_up(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    os.makedirs(Path(store.root, PACKS), exist_ok=True)
    orphan = Path(store.root, PACKS, "pack-crashed.pack")
    orphan.write_bytes(b"half of a pack")
    assert list(store.iter_objects()) == []
    assert store.clean_tmp(older_than=time.time() - 3600) == 0  # too young to be abandoned
    old = time.time() - 7200
    os.utime(orphan, (old, old))
    assert store.clean_tmp(older_than=time.time() - 3600) == 1
    assert not orphan.exists()


def test_a_writer_streams_its_bytes_and_starts_a_new_pack_at_the_limit(tmp_path: Path) -> None:
    packs_dir, tmp_dir = tmp_path / PACKS, tmp_path / "tmp"
    tmp_dir.mkdir()
    writer = PackWriter(str(packs_dir), str(tmp_dir), limit=3 * PackWriter.CHUNK)
    blobs = [os.urandom(60_000) for _ in range(300)]  # 18 MB: several chunks, two packs
    for blob in blobs:
        writer.add(digest_bytes(blob), blob)
    writer.add(digest_bytes(blobs[0]), blobs[0])  # a second add of the same object: ignored
    names = writer.commit()
    assert len(names) == 2
    assert os.listdir(tmp_dir) == []
    index = PackIndex(LocalPackFiles(str(packs_dir)))
    for blob in blobs:
        found = index.find(digest_bytes(blob))
        assert found is not None and index.read(found) == blob
    assert sum(len(entries) for entries in index.packs().values()) == len(blobs)


def test_an_aborted_writer_leaves_nothing_behind(tmp_path: Path) -> None:
    tmp_dir = tmp_path / "tmp"
    tmp_dir.mkdir()
    writer = PackWriter(str(tmp_path / PACKS), str(tmp_dir))
    writer.add(digest_bytes(b"x"), b"x")
    writer.abort()
    assert os.listdir(tmp_dir) == []
    assert not (tmp_path / PACKS).exists()


def age_everything(store: LocalStore, seconds: float = 3600) -> None:
    old = time.time() - seconds
    for path in Path(store.root).rglob("*"):
        if path.is_file() and ("objects" in path.parts or PACKS in path.parts):
            os.utime(path, (old, old))


def test_a_pack_reused_during_the_collection_is_kept(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    version = store.snapshot(write_tree(tmp_path / "src", {"a.csv": "a\n"}))
    entry = store.read_manifest(version.digest).entries[0]
    age_everything(store)
    cutoff = time.time() - 60
    assert store.delete_object(entry.digest, unless_modified_since=cutoff)
    # A writer reuses the object between the mark and the sweep: it touches the pack's index.
    store.snapshot(write_tree(tmp_path / "again", {"b.csv": "a\n"}))
    store.compact(unless_modified_since=cutoff)
    assert store.has(entry.digest) and store.verify(entry.digest)


def test_a_reader_finds_live_objects_after_another_process_rewrote_their_pack(
    tmp_path: Path,
) -> None:
    writer = LocalStore(tmp_path / "store")
    # One pack holds `k` and `d`; the second snapshot reuses `k` from it.
    dropped = writer.snapshot(write_tree(tmp_path / "dropped", {"k.csv": "k\n", "d.csv": "d\n"}))
    kept = writer.snapshot(write_tree(tmp_path / "kept", {"k.csv": "k\n"}))
    assert len([n for n in os.listdir(Path(writer.root, PACKS)) if n.endswith(".idx")]) == 1
    reader = LocalStore(tmp_path / "store")
    assert reader.has(dropped.digest)  # the reader has read the indexes as they were
    age_everything(writer)
    gc(writer, [kept.digest], grace=60)
    assert not writer.has(dropped.digest)
    # The `dropped` pack was rewritten: its live object now lives in a pack the reader has
    # not seen yet; reading finds it there.
    entry = reader.read_manifest(kept.digest).entries[0]
    assert reader.read_bytes(entry.digest) == b"k\n"
    reader.materialize(kept.digest, tmp_path / "out")
    assert (tmp_path / "out" / "k.csv").read_text() == "k\n"
