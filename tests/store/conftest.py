"""Fixtures of the store tests: a real S3-compatible server (moto, in-process on 127.0.0.1),
and a `store` fixture that runs the same behavioural tests against every store kind."""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from mlc.store import Store, open_store

from tests.requirements import require

BUCKET = "mlc-test"


@dataclass(frozen=True)
class S3Server:
    """A running S3-compatible endpoint with one bucket."""

    endpoint: str
    bucket: str

    @property
    def storage_options(self) -> dict[str, Any]:
        return {
            "key": "testing",
            "secret": "testing",
            "client_kwargs": {"endpoint_url": self.endpoint, "region_name": "us-east-1"},
        }


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """moto's S3 server on a free port of 127.0.0.1, with the bucket `mlc-test`.

    Without s3fs or moto the S3 tests skip locally, and fail in CI: CI must never pass by
    skipping the tests of a real server.
    """
    require("s3fs", "the S3 store tests")
    moto_server = require("moto.server", "the S3 store tests")
    import boto3

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )
    client.create_bucket(Bucket=BUCKET)
    try:
        yield S3Server(endpoint, BUCKET)
    finally:
        server.stop()


STORE_KINDS = [
    "local",
    "memory",
    pytest.param("s3", marks=pytest.mark.s3),
]


@pytest.fixture(params=STORE_KINDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """The same tests against a local store, a generic fsspec store (memory) and S3."""
    kind = request.param
    if kind == "local":
        opened = open_store(tmp_path / "store")
    elif kind == "memory":
        require("fsspec", "the generic fsspec store tests")
        opened = open_store(f"memory://mlc-{uuid.uuid4().hex}", cache_dir=tmp_path / "cache")
    else:
        server: S3Server = request.getfixturevalue("s3_server")
        opened = open_store(
            f"s3://{server.bucket}/{uuid.uuid4().hex}",
            storage_options=server.storage_options,
            cache_dir=tmp_path / "cache",
        )
    try:
        yield opened
    finally:
        opened.close()


def write_tree(root: Path, files: Mapping[str, bytes | str], *, age: float = 10.0) -> Path:
    """Creates files (relative POSIX paths) under `root`, with mtimes `age` seconds in the past
    so the stat cache may trust them (files modified within 100 ms are re-hashed)."""
    root.mkdir(parents=True, exist_ok=True)
    for relpath, content in files.items():
        path = root / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode() if isinstance(content, str) else content)
        if age:
            past = time.time() - age
            os.utime(path, (past, past))
    return root


def store_keys(store: Store) -> list[str]:
    """Every key under the store root (objects, index, records), relative and sorted."""
    from mlc.store.local import LocalStore
    from mlc.store.remote import FsspecStore

    if isinstance(store, LocalStore):
        found = []
        for directory, _dirs, files in os.walk(store.root):
            for name in files:
                rel = os.path.relpath(os.path.join(directory, name), store.root)
                found.append(rel.replace(os.sep, "/"))
        return sorted(k for k in found if k.startswith(("objects/", "index/", "records/")))
    assert isinstance(store, FsspecStore)
    names = store.fs.find(store.root)
    prefix = store.root + "/"
    keys = [str(n)[len(prefix) :] if str(n).startswith(prefix) else str(n) for n in names]
    keys = [k.lstrip("/") for k in keys]
    return sorted(k for k in keys if k.startswith(("objects/", "index/", "records/")))


def raw_write(store: Store, key: str, data: bytes) -> None:
    """Writes bytes under a key behind the store's back (to corrupt or forge objects)."""
    from mlc.store.local import LocalStore
    from mlc.store.remote import FsspecStore

    if isinstance(store, LocalStore):
        path = store.path_of(key)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if os.path.exists(path):
            os.chmod(path, 0o644)
        with open(path, "wb") as handle:
            handle.write(data)
        return
    assert isinstance(store, FsspecStore)
    store.fs.pipe_file(store.path_of(key), data)
