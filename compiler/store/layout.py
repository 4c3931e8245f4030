"""Where things live inside a store root; the same keys locally and on remote stores.

```
objects/sha256/ab/cdef…       an object in a file of its own (files and manifests), read-only
packs/<id>.pack, <id>.idx     (local) small objects of one batch, and their index (`mlc.store.packs`)
index/dirs/sha256/ab/cdef…    empty marker: this object is a directory manifest
records/<kind>/<key>.json     small JSON documents, created exactly once
leases/<run id>.json          the run is alive: rewritten while it runs, removed when it ends
tmp/                          temporary names of writes in progress
statcache.sqlite              (local) stat cache: (device, inode, size, mtime) -> digest
lineage.sqlite                (local) runs and step executions
```
"""

from __future__ import annotations

import re

from mlc.store.digest import ALGORITHM, Digest, digest_from_hex, hex_of
from mlc.store.errors import StoreError

OBJECTS = "objects"
DIR_INDEX = "index/dirs"
RECORDS = "records"
LEASES = "leases"
TMP = "tmp"
STAT_CACHE = "statcache.sqlite"
LINEAGE_DB = "lineage.sqlite"

_NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,199}")


def object_key(digest: Digest) -> str:
    """`objects/sha256/ab/cdef…`: the key of an object, relative to the store root."""
    hexpart = hex_of(digest)
    return f"{OBJECTS}/{ALGORITHM}/{hexpart[:2]}/{hexpart[2:]}"


def dir_marker_key(digest: Digest) -> str:
    """`index/dirs/sha256/ab/cdef…`: present when the object is a directory manifest."""
    hexpart = hex_of(digest)
    return f"{DIR_INDEX}/{ALGORITHM}/{hexpart[:2]}/{hexpart[2:]}"


def digest_of_key(key: str) -> Digest | None:
    """The digest an object or marker key stands for, or None for a key that is not one."""
    parts = key.rstrip("/").split("/")
    if len(parts) < 4 or parts[-3] != ALGORITHM or len(parts[-2]) != 2:
        return None
    try:
        return digest_from_hex(parts[-2] + parts[-1])
    except StoreError:
        return None


def check_record_name(what: str, name: str) -> str:
    """Validates a record kind or key: letters, digits, `.`, `_`, `-`, not starting with `.`."""
    if not _NAME_RE.fullmatch(name):
        raise StoreError(
            f"invalid record {what} `{name}`: use 1-200 letters, digits, `.`, `_` or `-`, "
            "not starting with `.` or `-`"
        )
    return name


def record_key(kind: str, key: str) -> str:
    """`records/<kind>/<key>.json`."""
    return f"{RECORDS}/{check_record_name('kind', kind)}/{check_record_name('key', key)}.json"


def lease_key(run_id: str) -> str:
    """`leases/<run id>.json`."""
    return f"{LEASES}/{check_record_name('run id', run_id)}.json"
