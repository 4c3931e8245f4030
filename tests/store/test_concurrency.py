"""Any interleaving of concurrent writers, threads or processes, leaves the store consistent:
every object verifies, every written digest is present, no temporary file is left."""

from __future__ import annotations

import multiprocessing
import os
import random
import threading
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mlc.store import digest_bytes
from mlc.store.local import LocalStore

from .conftest import write_tree

blobs = st.lists(st.binary(max_size=5000), min_size=1, max_size=12)
operations = st.lists(
    st.tuples(st.sampled_from(["put", "tree", "record"]), st.integers(0, 11)),
    min_size=1,
    max_size=15,
)


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(contents=blobs, plans=st.lists(operations, min_size=2, max_size=4))
def test_any_interleaving_of_threaded_writes_leaves_the_store_consistent(
    tmp_path_factory: object, contents: list[bytes], plans: list[list[tuple[str, int]]]
) -> None:
    base = Path(tmp_path_factory.mktemp("interleaving"))  # type: ignore[attr-defined]
    store = LocalStore(base / "store", workers=3)
    trees = []
    for i in range(len(contents)):
        # overlapping trees: each shares files with its neighbours
        files = {f"f{j}": contents[j] for j in range(i, min(i + 3, len(contents)))}
        trees.append(write_tree(base / f"tree{i}", files))
    barrier = threading.Barrier(len(plans))
    written: list[str] = []
    errors: list[BaseException] = []

    def writer(plan: list[tuple[str, int]], number: int) -> None:
        try:
            barrier.wait()
            for step, (op, index) in enumerate(plan):
                index %= len(contents)
                if op == "put":
                    written.append(store.put_bytes(contents[index]))
                elif op == "tree":
                    written.append(store.snapshot(trees[index]).digest)
                else:
                    store.put_record("test", f"w{number}-{step}", {"i": index})
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(p, n)) for n, p in enumerate(plans)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    report = store.verify_all()
    assert report.ok, report.bad
    assert all(store.has(d) for d in written)
    assert os.listdir(store.tmp_dir) == []
    records = sum(1 for plan in plans for op, _ in plan if op == "record")
    assert len(store.list_records("test")) == records
    store.close()


def _writer_process(root: str, seed: int, tree: str) -> None:
    store = LocalStore(root, workers=2)
    rng = random.Random(seed)
    for _ in range(60):
        store.put_bytes(rng.choice([b"shared-%d" % rng.randrange(20), os.urandom(3000)]))
    store.snapshot(tree)
    store.close()


def test_concurrent_processes_writing_overlapping_content_never_corrupt_the_store(
    tmp_path: Path,
) -> None:
    root = tmp_path / "store"
    LocalStore(root).close()
    tree = write_tree(tmp_path / "tree", {f"{i}.txt": f"shared {i}" for i in range(100)})
    context = multiprocessing.get_context("fork")
    workers = [
        context.Process(target=_writer_process, args=(str(root), seed, str(tree)))
        for seed in range(4)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
        assert worker.exitcode == 0
    store = LocalStore(root)
    assert store.verify_all().ok
    for i in range(20):
        if store.has(digest_bytes(b"shared-%d" % i)):
            assert store.read_bytes(digest_bytes(b"shared-%d" % i)) == b"shared-%d" % i
    assert os.listdir(store.tmp_dir) == []


def _snapshot_process(root: str, tree: str, queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    store = LocalStore(root, workers=4)
    queue.put((tree, store.snapshot(tree).digest))
    store.close()


def test_two_processes_snapshotting_overlapping_trees_agree(tmp_path: Path) -> None:
    shared = {f"common/{i:04d}.bin": os.urandom(2048) for i in range(400)}
    tree_a = write_tree(tmp_path / "a", {**shared, "only-a.txt": "a"})
    tree_b = write_tree(tmp_path / "b", {**shared, "only-b.txt": "b"})
    root = tmp_path / "store"
    LocalStore(root).close()
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    workers = [
        context.Process(target=_snapshot_process, args=(str(root), str(tree), queue))
        for tree in (tree_a, tree_b)
    ]
    for worker in workers:
        worker.start()
    results = dict(queue.get(timeout=120) for _ in workers)
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    store = LocalStore(root)
    # each process got the version a lone snapshot gives
    alone = LocalStore(tmp_path / "alone")
    for tree in (tree_a, tree_b):
        assert results[str(tree)] == alone.snapshot(tree).digest
        manifest = store.read_manifest(results[str(tree)])
        assert len(manifest) == 401
    assert store.verify_all().ok
    assert len(list(store.iter_objects())) == 400 + 2 + 2
    assert os.listdir(store.tmp_dir) == []


def _put_all(root: str, contents: list[bytes], order: list[int]) -> None:
    store = LocalStore(root, workers=2)
    for index in order:
        store.put_bytes(contents[index])
    store.close()


@settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.data(), contents=st.lists(st.binary(max_size=3000), min_size=1, max_size=8))
def test_any_interleaving_of_writing_processes_leaves_the_store_consistent(
    tmp_path_factory: object, data: st.DataObject, contents: list[bytes]
) -> None:
    root = Path(tmp_path_factory.mktemp("processes")) / "store"  # type: ignore[attr-defined]
    LocalStore(root).close()
    orders = [data.draw(st.permutations(range(len(contents)))) for _ in range(3)]
    context = multiprocessing.get_context("fork")
    workers = [
        context.Process(target=_put_all, args=(str(root), contents, list(order)))
        for order in orders
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    store = LocalStore(root)
    assert store.verify_all().ok
    assert {o.digest for o in store.iter_objects()} == {digest_bytes(c) for c in contents}
    assert os.listdir(store.tmp_dir) == []
    store.close()
