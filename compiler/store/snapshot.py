"""The snapshot algorithm shared by every store kind: walk, consult the stat cache, store what
changed in parallel, then write the manifest.

Each store supplies how to reuse a cached digest (is the object still there?), how to ingest
one file (read, hash and store it in one pass), and how to publish a batch of writes.
"""

from __future__ import annotations

import os
import stat as statmod
from collections.abc import Callable
from dataclasses import dataclass

from mlc.store.base import Version
from mlc.store.digest import Digest
from mlc.store.errors import StoreError, UnsupportedFileError
from mlc.store.hashing import parallel_map
from mlc.store.manifest import Manifest, ManifestEntry, normalise_mode
from mlc.store.statcache import FileStat, StatCache
from mlc.store.tree import TreeFile, walk_tree


@dataclass(frozen=True, slots=True)
class FileVersion:
    """The digest of one file and the stat of the exact version that was read."""

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


def snapshot_with(
    path: str,
    *,
    statcache: StatCache,
    reuse: Callable[[Digest], bool],
    ingest: Callable[[str], FileVersion],
    publish: Callable[[], None],
    put_manifest: Callable[[Manifest], Digest],
    workers: int,
) -> Version:
    """Snapshots a file or directory through the given store operations."""
    path = os.path.abspath(path)
    is_dir, files = list_files(path)
    cached = statcache.lookup_many([FileStat.of(f.stat) for f in files])

    def one(index: int) -> FileVersion:
        known = cached[index]
        if known is not None and reuse(known):
            return FileVersion(known, files[index].stat, None)
        return ingest(files[index].path)

    versions = parallel_map(one, range(len(files)), workers)
    publish()
    statcache.record_many(
        (FileStat.of(v.stat), v.digest, v.read_at_ns) for v in versions if v.read_at_ns is not None
    )
    hashed = sum(1 for v in versions if v.read_at_ns is not None)
    if not is_dir:
        only = versions[0]
        return Version(only.digest, "file", only.stat.st_size, 1, hashed)
    manifest = Manifest.build(
        ManifestEntry(f.relpath, v.digest, v.stat.st_size, normalise_mode(v.stat.st_mode))
        for f, v in zip(files, versions, strict=True)
    )
    return Version(put_manifest(manifest), "dir", manifest.total_size, len(manifest), hashed)
