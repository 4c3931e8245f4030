"""How `mlc apply` follows a Ray Job when the Jobs API misbehaves: a client that stands in for
Ray's `JobSubmissionClient` (the real one is exercised against a real cluster in
`test_ray_jobs`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from mlc.backends.ray.jobs import JobRun
from mlc.runtime.errors import RuntimeFailure
from mlc.runtime.report import SilentObserver
from mlc.store.uri import open_store

from tests.runtime.builders import document, sh, step


class LostClient:
    """A Jobs API that goes away after the first lines of the job's log."""

    async def _lines(self) -> AsyncIterator[str]:
        yield "Running entrypoint for job run-1\n"
        raise ConnectionError("Cannot connect to host 127.0.0.1:8265")

    def tail_job_logs(self, job_id: str) -> AsyncIterator[str]:
        return self._lines()


def test_losing_the_jobs_api_while_following_says_the_job_goes_on(tmp_path: Path) -> None:
    store = open_store(tmp_path / "store")
    try:
        job = JobRun(store, document(tmp_path, [step("a", sh("true"))]), kill_grace_seconds=1)
        with pytest.raises(RuntimeFailure, match=r"lost the Ray Jobs API .* the job goes on"):
            job._follow(LostClient(), "run-1", SilentObserver())
    finally:
        store.close()
