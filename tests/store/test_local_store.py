"""The local store: atomic read-only objects, the stat cache, and clean failure on disk errors."""

from __future__ import annotations

import errno
import os
import stat
import time
from pathlib import Path

import pytest
from mlc.store import StoreError, StoreNotFoundError, StoreWriteError, UnsupportedFileError, gc
from mlc.store.local import TOUCH_INTERVAL, LocalStore
from mlc.store.packs import PACKED_MAX

from .conftest import write_tree


@pytest.fixture
def local(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "store")


def tmp_files(store: LocalStore) -> list[str]:
    return os.listdir(store.tmp_dir)


def test_finished_objects_are_read_only(local: LocalStore) -> None:
    digest = local.put_bytes(b"frozen")
    assert stat.S_IMODE(os.stat(local.object_path(digest)).st_mode) == 0o444
    assert tmp_files(local) == []


def test_a_record_waits_for_no_disk_flush_but_an_object_does(
    local: LocalStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    flushes: list[int] = []
    monkeypatch.setattr(os, "fsync", flushes.append)
    monkeypatch.setattr("mlc.store.local.write_out", flushes.append)
    local.put_record("cache", "k", {"outputs": {}})
    assert flushes == []
    assert local.get_record("cache", "k") == {"outputs": {}}
    assert tmp_files(local) == []
    local.put_bytes(b"an object is on disk before a record can name it")
    assert len(flushes) == 2  # the file, then its directory


def test_a_new_store_has_the_standard_layout(local: LocalStore) -> None:
    names = sorted(os.listdir(local.root))
    assert names == ["index", "mlc-store.json", "objects", "records", "tmp"]


def test_opening_a_missing_store_for_reading_fails_clearly(tmp_path: Path) -> None:
    with pytest.raises(StoreNotFoundError, match="no mlc store at"):
        LocalStore(tmp_path / "absent", create=False)


def test_an_unchanged_tree_is_not_hashed_again(local: LocalStore, tmp_path: Path) -> None:
    src = write_tree(tmp_path / "src", {f"f{i}.txt": f"content {i}" for i in range(50)})
    first = local.snapshot(src)
    assert first.hashed_files == 50
    second = local.snapshot(src)
    assert second.hashed_files == 0
    assert second.digest == first.digest
    assert local.hashed_files == 50


def test_only_changed_files_are_hashed_again(local: LocalStore, tmp_path: Path) -> None:
    src = write_tree(tmp_path / "src", {f"f{i}.txt": f"content {i}" for i in range(10)})
    first = local.snapshot(src)
    write_tree(src, {"f3.txt": "changed"}, age=5)
    second = local.snapshot(src)
    assert second.hashed_files == 1
    assert second.digest != first.digest


def test_a_racily_clean_file_is_hashed_again_next_time(local: LocalStore, tmp_path: Path) -> None:
    src = write_tree(tmp_path / "src", {"fresh.txt": "just written"}, age=0)
    assert local.snapshot(src).hashed_files == 1
    assert local.snapshot(src).hashed_files == 1  # mtime was too close to the first read
    past = time.time() - 10
    os.utime(src / "fresh.txt", (past, past))
    assert local.snapshot(src).hashed_files == 1
    assert local.snapshot(src).hashed_files == 0


def test_a_cached_digest_whose_object_was_collected_is_stored_again(
    local: LocalStore, tmp_path: Path
) -> None:
    src = write_tree(tmp_path / "src", {"a.txt": "aaa"})
    version = local.snapshot(src)
    gc(local, [], grace=0)
    assert not local.has(version.digest)
    again = local.snapshot(src)
    assert again.digest == version.digest
    assert again.hashed_files == 1
    assert local.verify_all().ok


def test_reusing_an_old_object_refreshes_its_mtime(local: LocalStore) -> None:
    digest = local.put_bytes(b"old")
    old = time.time() - 2 * TOUCH_INTERVAL
    path = local.object_path(digest)
    os.utime(path, (old, old))
    local.put_bytes(b"old")
    assert os.stat(path).st_mtime > time.time() - 60


def test_gc_never_deletes_an_object_touched_during_the_collection(local: LocalStore) -> None:
    digest = local.put_bytes(b"reused")
    cutoff = time.time() - 1
    # touched after the collection started: kept, and still in place
    assert not local.delete_object(digest, unless_modified_since=cutoff)
    assert local.has(digest) and local.verify(digest)
    old = time.time() - 100
    os.utime(local.object_path(digest), (old, old))
    assert local.delete_object(digest, unless_modified_since=cutoff)
    assert not local.has(digest)
    assert tmp_files(local) == []


def test_materialize_hard_links_read_only_files_on_the_same_device(
    local: LocalStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    big = "linked\n" * (PACKED_MAX // 7 + 1)  # larger than a packed object: a file of its own
    version = local.snapshot(write_tree(tmp_path / "src", {"a.txt": big}))
    local.materialize(version.digest, tmp_path / "out")
    entry = local.read_manifest(version.digest).entries[0]
    assert (
        os.stat(tmp_path / "out" / "a.txt").st_ino
        == os.stat(local.object_path(entry.digest)).st_ino
    )


def test_root_gets_read_only_copies_because_modes_do_not_stop_it(
    local: LocalStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    big = "copied\n" * (PACKED_MAX // 7 + 1)
    version = local.snapshot(write_tree(tmp_path / "src", {"a.txt": big}))
    local.materialize(version.digest, tmp_path / "out")
    entry = local.read_manifest(version.digest).entries[0]
    out = tmp_path / "out" / "a.txt"
    assert os.stat(out).st_ino != os.stat(local.object_path(entry.digest)).st_ino
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o444


def test_materialize_copies_when_writable(local: LocalStore, tmp_path: Path) -> None:
    big = "copied\n" * (PACKED_MAX // 7 + 1)
    version = local.snapshot(write_tree(tmp_path / "src", {"a.txt": big}))
    local.materialize(version.digest, tmp_path / "out", readonly=False)
    entry = local.read_manifest(version.digest).entries[0]
    out = tmp_path / "out" / "a.txt"
    assert os.stat(out).st_ino != os.stat(local.object_path(entry.digest)).st_ino
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o644


def test_special_files_cannot_be_snapshot(local: LocalStore, tmp_path: Path) -> None:
    src = write_tree(tmp_path / "src", {"a.txt": "a"})
    os.mkfifo(src / "pipe")
    with pytest.raises(UnsupportedFileError, match="not a regular file"):
        local.snapshot(src)


def test_links_to_directories_are_refused(local: LocalStore, tmp_path: Path) -> None:
    src = write_tree(tmp_path / "src", {"a.txt": "a"})
    write_tree(tmp_path / "elsewhere", {"b.txt": "b"})
    os.symlink(tmp_path / "elsewhere", src / "link")
    with pytest.raises(UnsupportedFileError, match="symbolic link to a directory"):
        local.snapshot(src)


def test_a_broken_link_is_named_with_where_it_points(local: LocalStore, tmp_path: Path) -> None:
    src = write_tree(tmp_path / "src", {"a.txt": "a"})
    os.symlink("gone.txt", src / "link")
    with pytest.raises(
        UnsupportedFileError, match=r"link is a broken symbolic link \(to `gone\.txt`\)"
    ):
        local.snapshot(src)


def test_links_to_files_store_the_target_content(local: LocalStore, tmp_path: Path) -> None:
    src = write_tree(tmp_path / "src", {"a.txt": "target"})
    os.symlink(src / "a.txt", src / "b.txt")
    manifest = local.read_manifest(local.snapshot(src).digest)
    assert [e.path for e in manifest] == ["a.txt", "b.txt"]
    assert manifest.entries[0].digest == manifest.entries[1].digest


def test_a_missing_path_is_a_store_error(local: LocalStore, tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="cannot snapshot"):
        local.snapshot(tmp_path / "nope")


def _fail_writes(monkeypatch: pytest.MonkeyPatch, code: int, after: int = 0) -> None:
    real_write = os.write
    calls = {"n": 0}

    def failing_write(fd: int, data: bytes | memoryview) -> int:
        calls["n"] += 1
        if calls["n"] > after:
            raise OSError(code, os.strerror(code))
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", failing_write)


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EACCES, errno.EDQUOT])
def test_a_failing_disk_leaves_no_temporary_file_and_an_intact_store(
    local: LocalStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int
) -> None:
    before = local.snapshot(write_tree(tmp_path / "old", {"keep.txt": "already stored"}))
    src = write_tree(tmp_path / "src", {"small.txt": "new small", "big.bin": os.urandom(3 << 20)})
    objects_before = sorted(o.digest for o in local.iter_objects())
    _fail_writes(monkeypatch, code, after=1)
    with pytest.raises(StoreWriteError, match=os.strerror(code)) as raised:
        local.snapshot(src)
    assert raised.value.path.startswith(local.root)
    monkeypatch.undo()
    assert tmp_files(local) == []
    assert sorted(o.digest for o in local.iter_objects()) == objects_before
    assert local.verify_all().ok
    assert local.read_manifest(before.digest)
    assert local.snapshot(src).hashed_files == 2  # nothing was cached from the failed attempt


def test_put_bytes_on_a_full_disk_raises_with_the_store_path(
    local: LocalStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fail_writes(monkeypatch, errno.ENOSPC)
    with pytest.raises(StoreWriteError, match="No space left on device") as raised:
        local.put_bytes(b"does not fit")
    assert local.root in str(raised.value)
    monkeypatch.undo()
    assert tmp_files(local) == []
    assert list(local.iter_objects()) == []


def test_permission_denied_on_the_temporary_directory_is_a_store_error(
    local: LocalStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_open = os.open

    def refusing_open(path: str, flags: int, mode: int = 0o777, **kwargs: object) -> int:
        if str(path).startswith(local.tmp_dir):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), path)
        return real_open(path, flags, mode)

    monkeypatch.setattr(os, "open", refusing_open)
    with pytest.raises(StoreWriteError, match="Permission denied"):
        local.put_bytes(b"refused")
    monkeypatch.undo()
    assert tmp_files(local) == [] and list(local.iter_objects()) == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_a_read_only_store_directory_is_a_store_error(local: LocalStore) -> None:
    os.chmod(local.tmp_dir, 0o555)
    try:
        with pytest.raises(StoreWriteError, match="Permission denied"):
            local.put_bytes(b"refused")
    finally:
        os.chmod(local.tmp_dir, 0o755)


def test_clean_tmp_removes_only_old_abandoned_files(local: LocalStore) -> None:
    old = Path(local.tmp_dir) / "crashed-writer"
    old.write_bytes(b"partial")
    past = time.time() - 7200
    os.utime(old, (past, past))
    (Path(local.tmp_dir) / "in-flight").write_bytes(b"partial")
    assert local.clean_tmp(time.time() - 3600) == 1
    assert tmp_files(local) == ["in-flight"]
