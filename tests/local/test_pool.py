"""The worker pool's process groups: stopping them on cancel."""

from __future__ import annotations

import subprocess
import threading

from mlc.backends.local.pool import kill_groups
from mlc.runtime.process import group_alive

GRACE_SECONDS = 60.0


def test_cancelling_stops_waiting_as_soon_as_the_groups_have_exited() -> None:
    # Group leaders that exit on SIGTERM and that nobody else waits for (a worker released
    # just before the cancel): left as zombies they would keep their groups "alive" for the
    # whole grace period, and Ctrl-C would take that long.
    leaders = [subprocess.Popen(["sleep", "600"], start_new_session=True) for _ in range(2)]
    stopping = threading.Thread(
        target=kill_groups,
        args=([p.pid for p in leaders], GRACE_SECONDS),
        kwargs={"reap": leaders},
        daemon=True,
    )
    stopping.start()
    stopping.join(timeout=GRACE_SECONDS / 3)
    try:
        assert not stopping.is_alive(), "kill_groups waited out the grace period"
        assert [p.returncode for p in leaders] == [-15, -15]  # SIGTERM did it, not SIGKILL
        assert not any(group_alive(p.pid) for p in leaders)
    finally:
        for leader in leaders:
            leader.kill()
            leader.wait()
