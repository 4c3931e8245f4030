"""mlc as of an earlier git revision, for `bench_local.py --baseline REV`.

The revision is checked out as a git worktree under `bench/.work/baseline-<shortrev>/` and
installed, editable like the current mlc in `.venv`, into a virtual environment of its own under
`bench/.envs/baseline-<shortrev>/`, made with the same Python and with its dependencies pinned to
the versions installed in the current environment: the only difference left between the two is
mlc's own code. Both are made on first use and kept (they are named by the commit, so a moved
`HEAD~N` gets a new pair).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
REPO = ROOT.parent


def git(*args: str, cwd: Path = REPO) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, check=True
    ).stdout.strip()


def checkout(commit: str, short: str) -> Path:
    """The worktree of `commit`, added (or re-added, if it holds another commit) if needed."""
    tree = ROOT / ".work" / f"baseline-{short}"
    if tree.exists():
        try:
            if git("rev-parse", "HEAD", cwd=tree) == commit:
                return tree
        except subprocess.CalledProcessError:
            pass
        subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=REPO, check=False)
        shutil.rmtree(tree, ignore_errors=True)
    git("worktree", "prune")
    git("worktree", "add", "--detach", str(tree), commit)
    return tree


def install(tree: Path, short: str) -> Path:
    """The Python of `bench/.envs/baseline-<short>`, with `tree` installed in it (once)."""
    env = ROOT / ".envs" / f"baseline-{short}"
    python = env / "bin" / "python"
    done = env / "installed"  # written last: an install cut short is made again
    if done.exists():
        return python
    print(f"creating {env} (python -m venv; pip install -e {tree}) …", file=sys.stderr)
    subprocess.run([sys.executable, "-m", "venv", str(env)], check=True)
    frozen = subprocess.run(
        [sys.executable, "-m", "pip", "freeze", "--exclude-editable"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    constraints = env / "constraints.txt"
    constraints.write_text(
        "".join(line + "\n" for line in frozen.splitlines() if line and line[0] not in "#-")
    )
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "-c", str(constraints), "-e", str(tree)],
        check=True,
    )
    done.write_text(f"{tree}\n")
    return python


def baseline(rev: str) -> tuple[str, Path, Path]:
    """The short commit id of `rev`, the Python of its environment and its worktree."""
    commit = git("rev-parse", "--verify", f"{rev}^{{commit}}")
    short = git("rev-parse", "--short", commit)
    tree = checkout(commit, short)
    return short, install(tree, short), tree
