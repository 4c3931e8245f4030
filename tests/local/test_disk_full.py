"""A full (or read-only) disk under `mlc apply` and the commands around it: every write mlc makes
ends in a located, clear error (never an internal one), the run is recorded as failed or seen
as interrupted (never `running`), and nothing is left behind (temporary files, empty packs,
work directories, leases).

The disk is real: a small tmpfs mounted for each test, which the test fills. Mounting needs
root; elsewhere these tests skip, saying so.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.requirements import unavailable

SIZE_KB = 4096

SPEC = """mlspec 1

pipeline small {
  dataset words {
    uri = "words.txt"
    version = latest
  }
  step count {
    run = ["sh", "-c", "wc -w < {{ inputs.text }} > {{ outputs.n }}"]
    inputs { text = words }
    outputs { n: file }
  }
  step copy {
    run = ["cp", "{{ inputs.n }}", "{{ outputs.same }}"]
    inputs { n = count.n }
    outputs { same: file }
  }
  outputs { same = copy.same }
}
"""

HOG = """mlspec 1

pipeline hog {
  step fill {
    run = ["sh", "-c", "head -c 100000000 /dev/zero > {{ outputs.blob }}; echo wrote what fitted"]
    outputs { blob: file }
  }
  outputs { blob = fill.blob }
}
"""

FULL = ("No space left on device", "disk is full", "disk I/O error")


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs of `SIZE_KB` mounted at a fresh folder, unmounted afterwards."""
    if os.geteuid() != 0:
        unavailable("mounting a small tmpfs to fill needs root")
    mount = tmp_path / "disk"
    mount.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={SIZE_KB}k", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        unavailable(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def mlc(cwd: Path, *args: str, ir_cache: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLC_")}
    env["MLC_LOCAL_GPUS"] = ""
    env["MLC_DEBUG"] = "1"  # an internal error would print its traceback
    env["MLC_IR_CACHE_DIR"] = str(ir_cache or cwd / ".ir-cache")
    completed = subprocess.run(
        [sys.executable, "-m", "mlc", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        check=False,
        timeout=120,
    )
    assert "Traceback" not in completed.stderr, completed.stderr
    assert "internal error" not in completed.stderr, completed.stderr
    return completed


def fill(disk: Path, leave_kb: int) -> Path:
    """Fills the disk but for `leave_kb` KiB."""
    stats = os.statvfs(disk)
    free = stats.f_bavail * stats.f_frsize
    filler = disk / f"filler-{len(list(disk.glob('filler-*')))}"
    with open(filler, "wb") as handle:
        left = max(0, free - leave_kb * 1024)
        chunk = b"\0" * (1 << 20)
        try:
            while left > 0:
                left -= handle.write(chunk[: min(left, len(chunk))])
        except OSError:
            pass
    return filler


def project(disk: Path, spec: str = SPEC) -> Path:
    root = disk / "project"
    root.mkdir()
    (root / "words.txt").write_text("one two three\n")
    (root / "pipeline.mlspec").write_text(spec)
    return root


def leftovers(store: Path) -> dict[str, list[str]]:
    """What a run must never leave behind."""
    found: dict[str, list[str]] = {}
    for name in ("tmp", "work", "leases"):
        folder = store / name
        files = sorted(str(p.relative_to(store)) for p in folder.rglob("*") if p.is_file())
        if files:
            found[name] = files
    empty_packs = [p.name for p in (store / "packs").glob("*") if p.stat().st_size == 0]
    if empty_packs:
        found["empty packs"] = empty_packs
    return found


def statuses(root: Path) -> list[str]:
    listed = mlc(root, "runs", "--store", ".mlc", "--format", "json")
    assert listed.returncode == 0, listed.stderr
    return [run["status"] for run in json.loads(listed.stdout)]


@pytest.mark.parametrize("leave_kb", [0, 8, 24, 64, 128, 160, 192, 256])
def test_apply_on_a_nearly_full_disk_fails_clearly_and_leaves_nothing_behind(
    disk: Path, leave_kb: int
) -> None:
    # Wherever the space runs out (the run's lease, the lock file, lineage, a pack, a log, an
    # object), the error names the file and says the disk is full.
    root = project(disk)
    # The store exists, holding the dataset.
    assert mlc(root, "data", "add", "words.txt", "--store", ".mlc").returncode == 0
    filler = fill(disk, leave_kb)
    applied = mlc(root, "apply", "pipeline.mlspec", "--store", ".mlc")
    if applied.returncode != 0:
        assert applied.returncode == 1, applied.stderr
        errors = [line for line in applied.stderr.splitlines() if line.startswith("error:")]
        assert errors, applied.stderr
        located = (str(disk), "mlc.lock")  # a path in the store, or the project's lock file
        assert any(
            any(p in line for p in located) and any(f in line for f in FULL) for line in errors
        ), errors
    filler.unlink()
    assert leftovers(root / ".mlc") == {}
    assert "running" not in statuses(root)
    assert not list(root.glob(".mlc.lock.*.tmp"))


def test_a_step_that_fills_the_disk_fails_and_the_run_is_recorded_failed(disk: Path) -> None:
    root = project(disk, HOG)
    applied = mlc(root, "apply", "pipeline.mlspec", "--store", ".mlc")
    assert applied.returncode == 1
    assert "error: step `fill` failed: cannot write to the store at " in applied.stderr
    assert "No space left on device: the disk is full; free some space" in applied.stderr
    assert statuses(root) == ["failed"]
    (run,) = json.loads(mlc(root, "runs", "--store", ".mlc", "--format", "json").stdout)
    shown = json.loads(
        mlc(root, "runs", "show", run["run_id"], "--store", ".mlc", "--format", "json").stdout
    )
    steps = {s["step_id"]: s for s in shown["steps"]}
    assert steps["step:fill"]["status"] == "failed"
    assert "No space left on device" in steps["step:fill"]["error"]
    assert leftovers(root / ".mlc") == {}


def test_runs_and_lineage_can_be_read_on_a_full_disk(disk: Path) -> None:
    root = project(disk)
    assert mlc(root, "apply", "pipeline.mlspec", "--store", ".mlc").returncode == 0
    fill(disk, 0)
    assert statuses(root) == ["succeeded"]
    shown = mlc(root, "runs", "show", "2", "--store", ".mlc")
    assert shown.returncode == 0 and "succeeded" in shown.stdout


def test_data_add_and_lock_on_a_full_disk_say_so(disk: Path) -> None:
    root = project(disk)
    assert mlc(root, "data", "add", "words.txt", "--store", ".mlc").returncode == 0
    (root / "big.bin").write_bytes(os.urandom(1 << 20))
    fill(disk, 64)
    added = mlc(root, "data", "add", "big.bin", "--store", ".mlc")
    assert added.returncode == 1
    assert "No space left on device: the disk is full" in added.stderr
    fill(disk, 0)
    locked = mlc(root, "lock", "pipeline.mlspec", "--store", ".mlc")
    assert locked.returncode == 1
    assert any(f in locked.stderr for f in FULL), locked.stderr
    assert not (root / "mlc.lock").exists()
    assert not list(root.glob(".mlc.lock.*.tmp"))


def test_a_read_only_store_is_refused_before_anything_runs(disk: Path) -> None:
    root = project(disk)
    assert mlc(root, "data", "add", "words.txt", "--store", ".mlc").returncode == 0
    subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
    try:
        applied = mlc(root, "apply", "pipeline.mlspec", "--store", ".mlc", ir_cache=disk.parent)
    finally:
        subprocess.run(["mount", "-o", "remount,rw", str(disk)], check=True)
    assert applied.returncode == 1
    assert "Read-only file system: the filesystem is read-only" in applied.stderr
    assert statuses(root) == []


CHATTY = """mlspec 1

pipeline chatty {
  step talk {
    run = ["sh", "-c", "head -c 2500000 /dev/zero | tr '\\\\0' 'x' | fold -w 100"]
  }
}
"""


def test_a_log_that_cannot_be_stored_is_a_warning_naming_the_disk(disk: Path) -> None:
    # The step's log fills the work directory; its copy into the store does not fit.
    root = project(disk, CHATTY)
    applied = mlc(root, "apply", "pipeline.mlspec", "--store", ".mlc")
    assert applied.returncode == 0, applied.stderr
    output = applied.stdout + applied.stderr
    assert "warning: the log of `talk` could not be stored: cannot write to the store at " in output
    assert "No space left on device: the disk is full" in output
    assert statuses(root) == ["succeeded"]
    assert leftovers(root / ".mlc") == {}
