"""The local backend on a shared S3 store (a real S3-compatible server, moto, started here):
workers open the same store from its address, and a second machine's apply is all cached."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from mlc.runtime.cache_entries import RECORD_KIND
from mlc.store import Store, open_store

from tests.local.conftest import Runner, by_name
from tests.local.test_caching import lock, pipeline, statuses
from tests.store.conftest import S3Server, s3_server  # noqa: F401 (the fixture)

pytestmark = pytest.mark.s3


@pytest.fixture
def s3_store(s3_server: S3Server, tmp_path: Path) -> Iterator[Store]:  # noqa: F811
    opened = open_store(
        f"s3://{s3_server.bucket}/local-{uuid.uuid4().hex}",
        storage_options=s3_server.storage_options,
        cache_dir=tmp_path / "machine-a",
    )
    yield opened
    opened.close()


def runner_on(store: Store) -> Runner:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("MLC_")}
    environ["MLC_KILL_GRACE_SECONDS"] = "0.5"
    environ["MLC_LOCAL_GPUS"] = ""
    return Runner(store, environ)


def test_steps_run_against_an_s3_store_and_a_second_machine_finds_them_cached(
    s3_server: S3Server,  # noqa: F811
    s3_store: Store,
    tmp_path: Path,
) -> None:
    work = tmp_path / "spec"
    work.mkdir()
    runner = runner_on(s3_store)
    doc = pipeline(work)
    lock(runner, work)

    first = runner.apply(doc)

    assert statuses(first) == {"scale": "ran", "show": "ran"}
    assert s3_store.read_bytes(by_name(first)["show"].outputs["text"]) == b"42.0"
    assert len(s3_store.list_records(RECORD_KIND)) == 2
    # Another machine: the same bucket, its own local state (stat cache, lineage, work dir).
    other = open_store(
        s3_store.uri, storage_options=s3_server.storage_options, cache_dir=tmp_path / "machine-b"
    )
    try:
        second = runner_on(other).apply(doc)
    finally:
        other.close()
    assert statuses(second) == {"scale": "cached", "show": "cached"}
    assert [s.outputs for s in first.steps] == [s.outputs for s in second.steps]
