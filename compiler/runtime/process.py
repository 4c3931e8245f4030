"""Processes in their own process group: start, wait with a deadline, kill the whole group.

A step's command may start children of its own (a shell, `torchrun`, data loaders); killing
only the top process would leave them running. Every step therefore runs as the leader of a
new session, and stopping it means SIGTERM to the whole group, a grace period, then SIGKILL.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

DEFAULT_KILL_GRACE_SECONDS = 10.0
"""How long a group may take to exit after SIGTERM before it gets SIGKILL."""
WAKE_SECONDS = 0.05
"""While waiting for a command with a deadline, how often this thread runs Python code: an
exception another thread or Ray's cancel raises in it (`KeyboardInterrupt`) lands then."""


@dataclass(frozen=True, slots=True)
class ProcessOutcome:
    """How a process ended: its exit code (negative: killed by that signal), and whether it was
    stopped for running past its deadline."""

    exit_code: int
    timed_out: bool = False
    peak_memory_bytes: int | None = None
    """The largest resident set of the process (or of a child it waited for), when known."""


def group_alive(pgid: int) -> bool:
    """True while any process (zombies included) is left in the process group."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def signal_group(pgid: int, signum: int) -> None:
    """Sends a signal to every process of a group; a group already gone is fine."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


def terminate_group(
    pgid: int,
    grace_seconds: float = DEFAULT_KILL_GRACE_SECONDS,
    reap: subprocess.Popen[bytes] | None = None,
) -> None:
    """SIGTERM to the group, up to `grace_seconds` to exit, then SIGKILL to what is left.

    `reap` is the group leader when it is our child: it is waited for, so that it does not
    linger as a zombie that keeps the group alive.
    """
    signal_group(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace_seconds
    while time.monotonic() < deadline:
        if reap is not None:
            reap.poll()
        if not group_alive(pgid):
            return
        time.sleep(0.02)
    signal_group(pgid, signal.SIGKILL)
    if reap is not None:
        reap.wait()
    while group_alive(pgid) and time.monotonic() < deadline + 5:
        time.sleep(0.01)


def run_process(
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    cwd: str,
    log_fd: int,
    timeout_seconds: float | None = None,
    grace_seconds: float = DEFAULT_KILL_GRACE_SECONDS,
    new_session: bool = True,
) -> ProcessOutcome:
    """Runs a command with stdout and stderr going to `log_fd` (a log open for appending),
    without a shell.

    With `new_session` the command leads a new session and process group, and a timeout
    kills that whole group. Without it the command joins the caller's group (a worker that is
    itself a group leader the scheduler kills).

    Raises `OSError` when the command cannot be started (not found, not executable).
    """
    if not new_session and timeout_seconds is None:
        pid = _spawn(argv, env, cwd, log_fd)
        if pid is not None:
            try:
                return _wait_measured(pid)
            except BaseException:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(pid, 0)
                raise
    process = subprocess.Popen(
        list(argv),
        env=dict(env),
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=log_fd,
        stderr=subprocess.STDOUT,
        start_new_session=new_session,
        close_fds=True,
    )
    try:
        if timeout_seconds is None:
            outcome = _wait_measured(process.pid)
            process.returncode = outcome.exit_code
            return outcome
        return ProcessOutcome(_wait_with_deadline(process, timeout_seconds))
    except subprocess.TimeoutExpired:
        if new_session:
            terminate_group(process.pid, grace_seconds, reap=process)
        else:
            process.kill()
        return ProcessOutcome(process.wait(), timed_out=True)
    except BaseException:
        if new_session:
            terminate_group(process.pid, grace_seconds, reap=process)
        else:
            process.kill()
        process.wait()
        raise


def _wait_with_deadline(process: subprocess.Popen[bytes], timeout_seconds: float) -> int:
    """`process.wait(timeout=…)`, without its polling: that sleeps 0.5, 1, 2, 4 ms, … up to
    50 ms between looks, so a command that takes 3 ms is seen to end at 7.5 ms. Here the wait
    is on a pidfd, which wakes at the exit (where the system has pidfds; elsewhere,
    `process.wait`). Raises `subprocess.TimeoutExpired` at the deadline."""
    try:
        pidfd = os.pidfd_open(process.pid)
    except (AttributeError, OSError):
        return process.wait(timeout=timeout_seconds)
    try:
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        deadline = time.monotonic() + timeout_seconds
        while not poller.poll(min(max(0.0, deadline - time.monotonic()), WAKE_SECONDS) * 1000):
            if time.monotonic() >= deadline:
                raise subprocess.TimeoutExpired(process.args, timeout_seconds)
        return process.wait()
    finally:
        os.close(pidfd)


def _spawn(argv: Sequence[str], env: Mapping[str, str], cwd: str, log_fd: int) -> int | None:
    """Starts a command with `posix_spawn` (no Python code runs between fork and exec: a
    fraction of `Popen`'s cost, which counts when steps are short); None when `Popen` must do
    it instead, because the command would be looked up on a `PATH` other than this process's
    (`posix_spawnp` searches the caller's).

    As with `Popen`: stdin is `/dev/null`, stdout and stderr go to the log, the signals Python
    ignores are reset, and no other descriptor is inherited (Python opens every descriptor
    non-inheritable; the worker makes its pipes so too).
    """
    program = argv[0]
    if not hasattr(os, "posix_spawn"):  # pragma: no cover - every POSIX Python has it
        return None
    if "/" not in program and env.get("PATH") != os.environ.get("PATH"):
        return None
    actions = [
        (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
        (os.POSIX_SPAWN_DUP2, log_fd, 1),
        (os.POSIX_SPAWN_DUP2, log_fd, 2),
    ]
    spawn = os.posix_spawn if "/" in program else os.posix_spawnp
    # posix_spawn cannot change directory in the child: the caller's directory is lent.
    saved = os.getcwd()
    os.chdir(cwd)
    try:
        return spawn(
            program,
            list(argv),
            env,
            file_actions=actions,
            setsigdef=_RESET_SIGNALS,
            setsigmask=(),
        )
    finally:
        os.chdir(saved)


_RESET_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGPIPE", "SIGXFZ", "SIGXFSZ") if hasattr(signal, name)
)
"""Signals Python ignores that a child should get back at their default, as `Popen` does."""


def _wait_measured(pid: int) -> ProcessOutcome:
    """Waits for a process and reads its peak memory from the kernel's accounting."""
    _, status, usage = os.wait4(pid, 0)
    return ProcessOutcome(
        os.waitstatus_to_exitcode(status), peak_memory_bytes=usage.ru_maxrss * 1024
    )
