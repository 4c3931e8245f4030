"""The shell commands the docs promise, run: every code block in `docs/` and the README marked
`<!-- runnable -->` on the line before it.

In a marked block, each line starting with `$ ` is a command (a line ending in `\\` continues
it); the other lines are sample output, not compared (run ids, digests and times differ).
Every command must exit 0, except the last one of a block marked `<!-- runnable exit=N -->`,
which must exit N. The blocks of one page run in order, in one scratch copy of the examples
(with this repository's `pyproject.toml`, so the store is the copy's own `.mlc`), with the
installed `mlc` first on `PATH`; nothing needs the network, Ray or Kubernetes.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.requirements import require

REPO = Path(__file__).resolve().parents[2]
PAGES = sorted([REPO / "README.md", *REPO.glob("docs/*.md")])
_MARK = re.compile(r"^<!--\s*runnable(?:\s+exit=(\d+))?\s*-->\s*$")

require("sklearn", "the documented examples")


@dataclass(frozen=True)
class Block:
    """A marked block: its commands, the exit code of its last one, where it starts."""

    commands: list[str]
    last_exit: int
    line: int


def runnable_blocks(text: str) -> list[Block]:
    """The marked blocks of a Markdown page, in order."""
    lines = text.splitlines()
    blocks: list[Block] = []
    for number, line in enumerate(lines):
        mark = _MARK.match(line)
        if mark is None:
            continue
        assert lines[number + 1].startswith("```"), f"line {number + 1}: no block after the mark"
        commands: list[str] = []
        for body in lines[number + 2 :]:
            if body.startswith("```"):
                break
            if commands and commands[-1].endswith("\\"):
                commands[-1] = commands[-1][:-1] + " " + body.strip()
            elif body.startswith("$ "):
                commands.append(body[2:])
        assert commands, f"line {number + 1}: a runnable block without a `$ ` command"
        blocks.append(Block(commands, int(mark.group(1) or 0), number + 1))
    return blocks


MARKED = [page for page in PAGES if runnable_blocks(page.read_text(encoding="utf-8"))]


def test_the_marker_is_found() -> None:
    text = "a\n<!-- runnable exit=1 -->\n```\n$ mlc x \\\n  --y\nout\n$ mlc z\n```\n"
    assert runnable_blocks(text) == [Block(["mlc x  --y", "mlc z"], 1, 2)]
    assert REPO / "docs" / "quickstart.md" in MARKED


@pytest.mark.slow
@pytest.mark.parametrize("page", MARKED, ids=lambda p: p.relative_to(REPO).as_posix())
def test_the_runnable_commands_of_the_page_exit_as_documented(page: Path, tmp_path: Path) -> None:
    scratch = tmp_path / "repo"
    shutil.copytree(REPO / "examples", scratch / "examples", ignore=shutil.ignore_patterns(".mlc"))
    shutil.copy(REPO / "pyproject.toml", scratch / "pyproject.toml")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLC_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["MLC_IR_CACHE"] = "0"
    env["MLC_LOCAL_GPUS"] = ""
    env["NO_COLOR"] = "1"
    for block in runnable_blocks(page.read_text(encoding="utf-8")):
        for index, command in enumerate(block.commands):
            expected = block.last_exit if index == len(block.commands) - 1 else 0
            done = subprocess.run(
                ["bash", "-c", command],
                cwd=scratch,
                env=env,
                capture_output=True,
                text=True,
                timeout=600,
                check=False,
            )
            assert done.returncode == expected, (
                f"{page.name}:{block.line}: `{command}` exited {done.returncode}, "
                f"documented {expected}\n{done.stdout}\n{done.stderr}"
            )
            assert "Traceback" not in done.stderr
