"""Flushing to disk: one journal commit for a batch of files, or a flush of each file where the
filesystem has no journal to commit (ext4 can be made without one)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from mlc.store import fsync
from mlc.store.fsync import commit_batch, journalled, write_out

DEVICE = os.makedev(254, 1)


def linux_tree(tmp_path: Path, *, ext4: bool, jbd2: list[str] | None) -> tuple[str, str]:
    """A `/proc` and `/sys` in which device 254:1 is `vdb`, mounted by the ext4 driver or not,
    with these jbd2 journals (None: jbd2 not loaded)."""
    proc, sysfs = tmp_path / "proc", tmp_path / "sys"
    (sysfs / "devices" / "virtio" / "block" / "vdb").mkdir(parents=True)
    (sysfs / "dev" / "block").mkdir(parents=True)
    (sysfs / "dev" / "block" / "254:1").symlink_to(sysfs / "devices" / "virtio" / "block" / "vdb")
    if ext4:
        (proc / "fs" / "ext4" / "vdb").mkdir(parents=True)
    if jbd2 is not None:
        for journal in jbd2:
            (proc / "fs" / "jbd2" / journal).mkdir(parents=True)
        (proc / "fs" / "jbd2").mkdir(parents=True, exist_ok=True)
    return str(proc), str(sysfs)


@pytest.mark.parametrize(
    ("ext4", "jbd2", "expected"),
    [
        (True, ["vdb-8"], True),  # ext4 as usually made
        (True, ["vda-8"], False),  # another disk has a journal, this one not
        (True, None, False),  # no journal anywhere
        (False, None, True),  # not ext2/3/4 (xfs, btrfs, tmpfs, ...): journalled or no disk
    ],
)
def test_only_an_ext4_filesystem_without_its_journal_counts_as_unjournalled(
    tmp_path: Path, ext4: bool, jbd2: list[str] | None, expected: bool
) -> None:
    proc, sysfs = linux_tree(tmp_path, ext4=ext4, jbd2=jbd2)
    assert journalled(DEVICE, proc, sysfs) is expected


def test_a_device_linux_does_not_list_counts_as_journalled(tmp_path: Path) -> None:
    assert journalled(os.makedev(0, 27), str(tmp_path), str(tmp_path))


@pytest.mark.parametrize("has_journal", [True, False])
def test_a_batch_flushes_each_file_only_where_there_is_no_journal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, has_journal: bool
) -> None:
    flushed: list[int] = []
    monkeypatch.setattr(fsync, "journalled", lambda device: has_journal)
    monkeypatch.setattr(os, "fsync", flushed.append)
    fds = [os.open(tmp_path / f"f{i}", os.O_WRONLY | os.O_CREAT, 0o600) for i in range(3)]
    try:
        for fd in fds:
            os.write(fd, b"data")
            write_out(fd)
        commit_batch(str(tmp_path))
    finally:
        for fd in fds:
            os.close(fd)
    # With a journal: the data of each written out, one barrier commits them all.
    assert len(flushed) == (1 if has_journal else 3)
    assert sorted(os.listdir(tmp_path)) == ["f0", "f1", "f2"]  # (the barrier is gone)
