"""Facts about where and from what code a run happens: run ids, git version, host and user."""

from __future__ import annotations

import datetime as dt
import getpass
import os
import secrets
import socket
import subprocess
from dataclasses import dataclass


def new_run_id(now: float | None = None) -> str:
    """A sortable, unique run id: UTC time to the millisecond plus random hex.

    >>> len(new_run_id(0.0)), new_run_id(0.0)[:20]
    (27, '19700101T000000.000Z')
    """
    moment = dt.datetime.fromtimestamp(
        dt.datetime.now(dt.UTC).timestamp() if now is None else now, dt.UTC
    )
    stamp = moment.strftime("%Y%m%dT%H%M%S") + f".{moment.microsecond // 1000:03d}Z"
    return f"{stamp}-{secrets.token_hex(3)}"


@dataclass(frozen=True, slots=True)
class CodeVersion:
    """The git commit of the code and whether the work tree had uncommitted changes."""

    commit: str | None
    dirty: bool | None


def code_version(path: str | os.PathLike[str] = ".") -> CodeVersion:
    """Reads the commit and dirty flag with `git`; (None, None) outside a repository or without
    git."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--verify", "HEAD"],
            cwd=path,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        if head.returncode != 0:
            return CodeVersion(None, None)
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=path,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return CodeVersion(None, None)
    dirty = bool(status.stdout.strip()) if status.returncode == 0 else None
    return CodeVersion(head.stdout.strip(), dirty)


def current_host() -> str:
    """This machine's host name."""
    return socket.gethostname()


def current_user() -> str:
    """The login name of the user running mlc (empty if unknown)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return ""
