"""The stat cache remembers digests by (device, inode, size, mtime) and trusts no racy entry."""

from __future__ import annotations

import multiprocessing
import sqlite3
import time
from pathlib import Path

from mlc.store.digest import digest_bytes
from mlc.store.statcache import RACY_WINDOW_NS, FileStat, StatCache

D1 = digest_bytes(b"1")
D2 = digest_bytes(b"2")


def test_a_recorded_file_version_is_found_again(tmp_path: Path) -> None:
    cache = StatCache(str(tmp_path / "c.sqlite"))
    stat = FileStat(1, 2, 3, 1_000)
    assert cache.lookup(stat) is None
    assert cache.record_many([(stat, D1, 1_000 + 2 * RACY_WINDOW_NS)]) == 1
    assert cache.lookup(stat) == D1


def test_a_changed_size_or_mtime_misses(tmp_path: Path) -> None:
    cache = StatCache(str(tmp_path / "c.sqlite"))
    cache.record_many([(FileStat(1, 2, 3, 1_000), D1, 10 * RACY_WINDOW_NS)])
    assert cache.lookup(FileStat(1, 2, 4, 1_000)) is None
    assert cache.lookup(FileStat(1, 2, 3, 1_001)) is None
    assert cache.lookup(FileStat(9, 2, 3, 1_000)) is None


def test_a_newer_version_of_the_same_inode_replaces_the_old_entry(tmp_path: Path) -> None:
    cache = StatCache(str(tmp_path / "c.sqlite"))
    cache.record_many([(FileStat(1, 2, 3, 1_000), D1, 10 * RACY_WINDOW_NS)])
    cache.record_many([(FileStat(1, 2, 3, 2_000), D2, 10 * RACY_WINDOW_NS)])
    assert cache.lookup(FileStat(1, 2, 3, 1_000)) is None
    assert cache.lookup(FileStat(1, 2, 3, 2_000)) == D2


def test_files_modified_just_before_they_were_read_are_not_cached(tmp_path: Path) -> None:
    cache = StatCache(str(tmp_path / "c.sqlite"))
    read_at = time.time_ns()
    racy = FileStat(1, 2, 3, read_at - RACY_WINDOW_NS // 2)
    assert cache.record_many([(racy, D1, read_at)]) == 0
    assert cache.lookup(racy) is None


def _record_many_times(path: str, offset: int) -> None:
    cache = StatCache(path)
    for i in range(50):
        cache.record_many([(FileStat(1, offset * 1000 + i, 1, 1), D1, 10 * RACY_WINDOW_NS)])
    cache.close()


def test_the_cache_is_shared_safely_by_concurrent_processes(tmp_path: Path) -> None:
    path = str(tmp_path / "c.sqlite")
    StatCache(path).close()
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_record_many_times, args=(path, n)) for n in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    cache = StatCache(path)
    stats = [FileStat(1, n * 1000 + i, 1, 1) for n in range(4) for i in range(50)]
    assert cache.lookup_many(stats) == [D1] * 200
    journal = sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0]
    assert journal == "wal"
