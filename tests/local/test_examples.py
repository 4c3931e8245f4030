"""Every example runs on this machine's local backend, with the command written at its top.

Each `examples/*/pipeline.mlspec` starts with a comment that gives the command that runs it
locally (indented, after `#`; continued with `\\`). The test runs that command, as written, in a
shell at the repository's root with the installed `mlc` first on `PATH`, against an empty
store: the header cannot promise what does not work. Every target each example declares stays
lint-clean, the cluster ones included.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.requirements import require

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = sorted(REPO.glob("examples/*/pipeline.mlspec"))
_COMMAND = re.compile(r"^#\s{3,}(\S.*)$")
_TARGETS = re.compile(r"^target\s+(\w+)", re.MULTILINE)

require("sklearn", "the examples")


def header_command(spec: Path) -> str:
    """The command in the spec's opening comment (continuation lines joined)."""
    lines: list[str] = []
    for line in spec.read_text(encoding="utf-8").splitlines():
        if line.startswith(("pipeline", "template", "type", "resources", "target")):
            break  # the header is what comes before the first declaration
        match = _COMMAND.match(line)
        continued = bool(lines) and lines[-1].endswith("\\")
        if match and (continued or "mlc apply" in line or line.lstrip("# ").startswith("MLC_")):
            lines.append(match.group(1).strip())
    command = " ".join(part.removesuffix("\\").strip() for part in lines)
    assert "mlc apply" in command, f"{spec} does not say how to run it"
    return command


def test_every_example_names_its_command() -> None:
    assert [p.parent.name for p in EXAMPLES] == ["finetune", "quickstart", "sweep"]
    for spec in EXAMPLES:
        header_command(spec)


@pytest.mark.slow
@pytest.mark.parametrize("spec", EXAMPLES, ids=lambda p: p.parent.name)
def test_the_example_runs_locally_with_its_own_command(spec: Path, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLC_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["MLC_STORE"] = str(tmp_path / "store")
    env["MLC_IR_CACHE"] = "0"
    command = header_command(spec)
    done = subprocess.run(
        ["bash", "-c", command],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"
    assert " succeeded: " in done.stdout.splitlines()[-1]
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("spec", EXAMPLES, ids=lambda p: p.parent.name)
def test_every_target_of_the_example_lints_clean(spec: Path) -> None:
    from mlc.cli.main import main

    for target in _TARGETS.findall(spec.read_text(encoding="utf-8")):
        assert main(["lint", str(spec), "--target", target, "--no-warnings"]) == 0, target
