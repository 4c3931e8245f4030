"""A task: one attempt of one invocation, rendered and ready to execute in some process.

A task is plain JSON (so it crosses a pipe, a Ray call or a container boundary) and says
everything the executing process needs: the command (argv, or a function and its
arguments), the environment, the working directory and the log file. `execute_task` runs it
in the current process; stdout and stderr of the step go to the log, never to the caller.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import traceback
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

from mlc.runtime.calls import call_step_function
from mlc.runtime.errors import StepFailure
from mlc.runtime.process import DEFAULT_KILL_GRACE_SECONDS, run_process

_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


@dataclass(frozen=True, slots=True)
class Task:
    """One attempt of one invocation, with every template already rendered."""

    kind: str
    """`exec`, `shell` (argv is then `/bin/sh -c <command>`) or `call`."""
    env: Mapping[str, str]
    cwd: str
    log_path: str
    argv: tuple[str, ...] = ()
    function: str | None = None
    base_dir: str = ""
    arguments: Mapping[str, Any] = field(default_factory=dict)
    metrics_path: str | None = None
    """Where a `call` function's returned dict is written (its single `metrics` output)."""

    def to_json(self) -> dict[str, Any]:
        """A plain dict (built field by field: `asdict` deep-copies, once per step)."""
        return {
            "kind": self.kind,
            "env": dict(self.env),
            "cwd": self.cwd,
            "log_path": self.log_path,
            "argv": list(self.argv),
            "function": self.function,
            "base_dir": self.base_dir,
            "arguments": dict(self.arguments),
            "metrics_path": self.metrics_path,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Task:
        """The task a `to_json` dict describes."""
        fields = dict(data)
        fields["argv"] = tuple(fields.get("argv", ()))
        return cls(**fields)


@dataclass(frozen=True, slots=True)
class TaskResult:
    """How a task ended: exit code 0 is success; `error` says why not in one line."""

    exit_code: int
    error: str | None = None
    timed_out: bool = False
    peak_memory_bytes: int | None = None
    """The step's largest resident set, when it could be measured."""

    @property
    def ok(self) -> bool:
        """True when the task succeeded."""
        return self.exit_code == 0 and self.error is None

    def to_json(self) -> dict[str, Any]:
        """A plain dict."""
        return asdict(self)

    @classmethod
    def timed_out_after(cls, exit_code: int, seconds: float) -> TaskResult:
        """The result of a task stopped at its timeout (whichever executor stopped it)."""
        return cls(exit_code, f"timed out after {seconds:g}s", timed_out=True)

    def measured(self, peak_memory_bytes: int | None) -> TaskResult:
        """The same result with the step's peak memory."""
        return TaskResult(self.exit_code, self.error, self.timed_out, peak_memory_bytes)


def execute_task(
    task: Task,
    *,
    new_session: bool = True,
    timeout_seconds: float | None = None,
    grace_seconds: float = DEFAULT_KILL_GRACE_SECONDS,
    log_fd: int | None = None,
) -> TaskResult:
    """Runs a task in this process (a call) or in a child process (exec and shell).

    `new_session` puts a command in a process group of its own (and lets the timeout kill
    it); a worker that is itself the group leader the scheduler kills passes False. `log_fd`
    is the task's log already open for appending (else `task.log_path` is opened).
    """
    with _log_open(task.log_path, log_fd) as log:
        if task.kind == "call":
            reset_peak_memory()
            return _execute_call(task, log).measured(peak_memory())
        try:
            outcome = run_process(
                task.argv,
                env=task.env,
                cwd=task.cwd,
                log_fd=log,
                timeout_seconds=timeout_seconds,
                grace_seconds=grace_seconds,
                new_session=new_session,
            )
        except OSError as exc:
            problem = cannot_start(task, exc)
            os.write(log, f"error: {problem}\n".encode())
            # The exit codes a shell gives: 127 not found, 126 found but not runnable.
            return TaskResult(127 if isinstance(exc, FileNotFoundError) else 126, problem)
    if outcome.timed_out:
        return TaskResult(outcome.exit_code, "timed out", timed_out=True)
    if outcome.exit_code < 0:
        result = TaskResult(outcome.exit_code, f"killed by {signal_name(-outcome.exit_code)}")
    elif outcome.exit_code != 0:
        result = TaskResult(outcome.exit_code, f"exited with code {outcome.exit_code}")
    else:
        result = TaskResult(0)
    return result.measured(outcome.peak_memory_bytes)


@contextmanager
def _log_open(path: str, fd: int | None) -> Iterator[int]:
    """The log's descriptor: `fd` as it is, or `path` opened for appending and closed after."""
    if fd is not None:
        yield fd
        return
    opened = open_log(path)
    try:
        yield opened
    finally:
        os.close(opened)


def open_log(path: str) -> int:
    """A step's log opened for appending (created if need be), as a descriptor."""
    return os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | _O_CLOEXEC, 0o644)


def cannot_start(task: Task, exc: OSError) -> str:
    """Why a command could not be started, in the user's terms."""
    program = task.argv[0] if task.argv else ""
    if not os.path.isdir(task.cwd):
        return f"cannot run `{program}`: its working directory {task.cwd} does not exist"
    if isinstance(exc, FileNotFoundError):
        if "/" in program:
            return f"cannot run `{program}`: no such file"
        return f"cannot run `{program}`: command not found (looked in PATH)"
    if isinstance(exc, PermissionError):
        return f"cannot run `{program}`: permission denied (is it executable?)"
    return f"cannot run `{program}`: {exc.strerror or exc}"


def reset_peak_memory() -> None:
    """Resets this process's peak resident set (Linux: `/proc/self/clear_refs`), so that the
    next `peak_memory` is the peak of what runs in between."""
    with contextlib.suppress(OSError):
        fd = os.open("/proc/self/clear_refs", os.O_WRONLY | _O_CLOEXEC)
        try:
            os.write(fd, b"5")
        finally:
            os.close(fd)


def peak_memory() -> int | None:
    """This process's peak resident set in bytes since the last reset (Linux), else None."""
    try:
        fd = os.open("/proc/self/status", os.O_RDONLY | _O_CLOEXEC)
        try:
            status = os.read(fd, 1 << 16)
        finally:
            os.close(fd)
        start = status.index(b"VmHWM:")
        return int(status[start + 6 : status.index(b"kB", start)]) * 1024
    except (OSError, ValueError):
        return None


def signal_name(number: int) -> str:
    """`SIGKILL` for 9; the number for a signal Python does not name."""
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _execute_call(task: Task, log: int) -> TaskResult:
    if task.function is None:
        return TaskResult(1, "a `call` task names no function")
    with _redirected_output(log), _step_environment(task.env, task.cwd):
        try:
            call_step_function(task.function, task.base_dir, task.arguments, task.metrics_path)
        except StepFailure as exc:
            print(f"error: {exc}", file=sys.stderr)
            return TaskResult(1, str(exc))
        except SystemExit as exc:
            if exc.code in (0, None):
                return TaskResult(0)
            _print_user_traceback(exc)
            return TaskResult(1, f"{task.function} called sys.exit({exc.code!r})")
        except BaseException as exc:
            _print_user_traceback(exc)
            return TaskResult(1, f"{task.function} raised {type(exc).__name__}: {exc}")
    return TaskResult(0)


def _print_user_traceback(exc: BaseException) -> None:
    """Prints the traceback from the first frame outside mlc's runtime (the user's code)."""
    runtime_dir = os.path.dirname(os.path.abspath(__file__))
    tb = exc.__traceback__
    while tb is not None and os.path.dirname(tb.tb_frame.f_code.co_filename) == runtime_dir:
        tb = tb.tb_next
    traceback.print_exception(type(exc), exc, tb or exc.__traceback__)


@contextmanager
def _redirected_output(log: int) -> Iterator[None]:
    """Points file descriptors 1 and 2 (so child processes) and `sys.stdout`/`sys.stderr` (so
    `print`, whatever stream the host process installed) at the log while inside."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved_fds = os.dup(1), os.dup(2)
    saved_streams = sys.stdout, sys.stderr
    stream = open(log, "w", buffering=1, encoding="utf-8", errors="replace", closefd=False)  # noqa: SIM115
    try:
        os.dup2(log, 1)
        os.dup2(log, 2)
        sys.stdout = sys.stderr = stream
        yield
    finally:
        stream.flush()
        sys.stdout, sys.stderr = saved_streams
        os.dup2(saved_fds[0], 1)
        os.dup2(saved_fds[1], 2)
        stream.close()
        for fd in saved_fds:
            os.close(fd)


@contextmanager
def _step_environment(env: Mapping[str, str], cwd: str) -> Iterator[None]:
    """Replaces the process environment and working directory while inside. Only the
    variables that differ are set and put back: a worker's own environment is most of a
    step's, and each `os.environ` access encodes or decodes."""
    environ = os.environ
    before = environment_copy()
    for name in before.keys() - env.keys():
        del environ[name]
    for name, value in env.items():
        if before.get(name) != value:
            environ[name] = value
    raw_during = _raw_environment()
    saved_cwd = os.getcwd()
    os.chdir(cwd)
    try:
        yield
    finally:
        os.chdir(saved_cwd)
        # The step may have changed the environment too; if it did not, only what was set
        # for it is put back.
        changed_by_step = raw_during is None or _raw_environment() != raw_during
        after = environment_copy() if changed_by_step else env
        for name in after.keys() - before.keys():
            del environ[name]
        for name, value in before.items():
            if after.get(name) != value:
                environ[name] = value


def _raw_environment() -> dict[bytes, bytes] | None:
    """A copy of the table behind `os.environ` (CPython keeps it encoded, as bytes, in
    `_data`): copying and comparing it costs a microsecond, where reading `os.environ`
    decodes every name and value. None where there is no such table."""
    data = getattr(os.environ, "_data", None)
    return dict(data) if os.name == "posix" and isinstance(data, dict) else None


def environment_copy() -> dict[str, str]:
    """`dict(os.environ)`, decoded in one pass over the raw table where there is one."""
    raw = _raw_environment()
    if raw is None:
        return dict(os.environ)
    encoding = sys.getfilesystemencoding()
    return {
        k.decode(encoding, "surrogateescape"): v.decode(encoding, "surrogateescape")
        for k, v in raw.items()
    }
