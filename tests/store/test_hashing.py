"""Hashing gives hashlib's sha256 for every size, in parallel, in order."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from mlc.store.hashing import BUFFER_SIZE, SMALL_FILE, hash_file, hash_files, parallel_map


@pytest.mark.parametrize(
    "size", [0, 1, 4096, SMALL_FILE - 1, SMALL_FILE, SMALL_FILE + 1, 3 * BUFFER_SIZE + 7]
)
def test_hash_file_equals_hashlib(tmp_path: Path, size: int) -> None:
    data = os.urandom(size)
    (tmp_path / "f").write_bytes(data)
    assert hash_file(tmp_path / "f") == "sha256:" + hashlib.sha256(data).hexdigest()


def test_hash_files_keeps_the_order_of_its_input(tmp_path: Path) -> None:
    paths = []
    for i in range(300):
        path = tmp_path / f"{i}.txt"
        path.write_text(str(i))
        paths.append(path)
    digests = hash_files(paths, workers=4)
    assert digests == ["sha256:" + hashlib.sha256(str(i).encode()).hexdigest() for i in range(300)]


def test_parallel_map_propagates_errors() -> None:
    def boom(x: int) -> int:
        if x == 7:
            raise ValueError("seven")
        return x

    with pytest.raises(ValueError, match="seven"):
        parallel_map(boom, range(20), workers=3)
    assert parallel_map(boom, [1], workers=3) == [1]
