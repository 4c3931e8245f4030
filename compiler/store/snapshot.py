"""The snapshot algorithm shared by every store kind: walk, consult the stat cache, store what
changed in parallel, then write the manifest.

Each store supplies how to reuse a cached digest (is the object still there?), how to ingest
one file (read, hash and store it in one pass), and how to publish a batch of writes.
"""

from __future__ import annotations

import os
import stat as statmod
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

from mlc.store.base import Version
from mlc.store.digest import Digest
from mlc.store.errors import StoreError, UnsupportedFileError
from mlc.store.hashing import parallel_map
from mlc.store.manifest import Manifest, ManifestEntry, normalise_mode
from mlc.store.statcache import FileStat, StatCache
from mlc.store.tree import TreeFile, walk_tree


class FileVersion(NamedTuple):
    """The digest of one file and the stat of the exact version that was read (a tuple: one
    is made per file of every snapshot)."""

    digest: Digest
    stat: os.stat_result
    read_at_ns: int | None
    """When the file was read, or None when its digest came from the stat cache."""


def list_files(path: str) -> tuple[bool, list[TreeFile]]:
    """(is_directory, files) for a path to snapshot."""
    try:
        st = os.stat(path)
    except OSError as exc:
        raise StoreError(f"cannot snapshot {path}: {exc.strerror}") from None
    if statmod.S_ISDIR(st.st_mode):
        return True, walk_tree(path)
    if statmod.S_ISREG(st.st_mode):
        return False, [TreeFile(os.path.basename(path), path, st)]
    raise UnsupportedFileError(f"{path} is not a regular file or directory and cannot be stored")


OVERLAP_FROM_FILES = 64
"""Snapshots of this many files or more publish on a thread of their own (see below)."""


def snapshot_with(
    path: str,
    *,
    statcache: StatCache,
    reuse: Callable[[Digest], bool],
    ingest: Callable[[str], FileVersion],
    publish: Callable[[], None],
    put_manifest: Callable[[Manifest], Digest],
    workers: int,
    reuse_is_slow: bool = False,
) -> Version:
    """Snapshots a file or directory through the given store operations.

    Cached digests are confirmed with `reuse` (inline when it is a cheap local `stat`, on the
    thread pool when it is a network request); only the other files are read, on the pool.
    """
    path = os.path.abspath(path)
    is_dir, files = list_files(path)
    cached = statcache.lookup_many([FileStat.of(f.stat) for f in files])
    known = {i: digest for i, digest in enumerate(cached) if digest is not None}
    candidates = list(known.items())
    confirmed = (
        parallel_map(lambda item: reuse(item[1]), candidates, workers)
        if reuse_is_slow
        else [reuse(digest) for _, digest in candidates]
    )
    versions: list[FileVersion | None] = [None] * len(files)
    for (index, digest), ok in zip(candidates, confirmed, strict=True):
        if ok:
            versions[index] = FileVersion(digest, files[index].stat, None)
    misses = [i for i, v in enumerate(versions) if v is None]
    for index, version in zip(
        misses, parallel_map(lambda i: ingest(files[i].path), misses, workers), strict=True
    ):
        versions[index] = version
    done = [v for v in versions if v is not None]

    def record_and_build() -> Manifest | None:
        statcache.record_many(
            (FileStat.of(v.stat), v.digest, v.read_at_ns) for v in done if v.read_at_ns is not None
        )
        if not is_dir:
            return None
        return Manifest.build(
            ManifestEntry(f.relpath, v.digest, v.stat.st_size, normalise_mode(v.stat.st_mode))
            for f, v in zip(files, done, strict=True)
        )

    # With many files, publishing (syncing the packs) overlaps the stat cache write and the
    # manifest build: a stat cache entry is only a hint (`reuse` checks the object exists),
    # and the manifest is stored only once the objects it names are published. With few,
    # starting a thread would cost more than the overlap saves.
    if len(files) < OVERLAP_FROM_FILES:
        publish()
        manifest = record_and_build()
    else:
        with ThreadPoolExecutor(max_workers=1) as background:
            published = background.submit(publish)
            manifest = record_and_build()
            published.result()
    hashed = len(misses)
    if manifest is None:
        only = done[0]
        return Version(only.digest, "file", only.stat.st_size, 1, hashed)
    return Version(put_manifest(manifest), "dir", manifest.total_size, len(manifest), hashed)
