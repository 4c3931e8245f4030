"""The log of a step that is still running, read from its worker's log file."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from mlc.backends.local.workspace import LOCK_FILE, WORK_DIR, follow_live_log

RUN = "20261124T000000.000Z-abcdef"


def header(name: str, attempt: int = 1) -> bytes:
    return f"--- mlc: {name} attempt {attempt} started 2026-11-24 00:00:00 ---\n".encode()


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Path]:
    """A run's workspace whose lock this test holds, as a live run does."""
    run = tmp_path / WORK_DIR / RUN
    (run / "workers").mkdir(parents=True)
    fd = os.open(run / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        yield run / "workers"
    finally:
        os.close(fd)


def live(tmp_path: Path, name: str) -> bytes:
    return b"".join(follow_live_log(str(tmp_path), RUN, name, ended=lambda: True))


def test_a_step_log_runs_from_its_header_to_the_next_step_or_the_end(
    tmp_path: Path, workers: Path
) -> None:
    (workers / "101.log").write_bytes(
        header("prep") + b"p1\n" + header("train") + b"t1\nt2\n" + header("eval") + b"e1"
    )
    assert live(tmp_path, "train") == header("train") + b"t1\nt2\n"
    assert live(tmp_path, "eval") == header("eval") + b"e1"


def test_a_retried_step_shows_its_latest_attempt(tmp_path: Path, workers: Path) -> None:
    (workers / "101.log").write_bytes(header("fit") + b"failed\n" + header("other") + b"o\n")
    (workers / "102.log").write_bytes(header("fit", 2) + b"second try\n")
    os.utime(workers / "101.log", (1, 1))  # the older file
    assert live(tmp_path, "fit") == header("fit", 2) + b"second try\n"


def test_nothing_is_shown_for_a_step_not_running_or_a_run_that_is_gone(
    tmp_path: Path, workers: Path
) -> None:
    (workers / "101.log").write_bytes(header("prep") + b"p1\n")
    assert live(tmp_path, "train") == b""
    assert (
        b"".join(follow_live_log(str(tmp_path), "another-run", "prep", ended=lambda: True)) == b""
    )


def test_a_run_whose_process_died_shows_nothing(tmp_path: Path) -> None:
    # `kill -9` leaves the directory with its lock file, but nobody holds the lock.
    run = tmp_path / WORK_DIR / RUN
    (run / "workers").mkdir(parents=True)
    (run / LOCK_FILE).touch()
    (run / "workers" / "101.log").write_bytes(header("prep") + b"p1\n")
    assert live(tmp_path, "prep") == b""
