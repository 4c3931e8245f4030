"""Benchmark of the store's hashing and snapshotting, against `sha256sum` and DVC.

Run: `.venv/bin/python bench/bench_hashing.py [--large-mb 512] [--large-count 4]
[--small-count 100000] [--dvc PATH_TO_DVC | --no-dvc] [--tmpfs DIR] [--write-docs]`

Makes its data on the fly under `bench/.work/` (removed afterwards):
- large files (default 4 x 512 MB): `hash_file` one file at a time (one core) and `hash_files`
  (all cores), each against `sha256sum` on the same files; then a store snapshot (hash, copy
  into the store, sync).
- small files (default 100,000 x 4 KiB): `hash_files`, a cold snapshot (every file hashed and
  stored; best of 3, each into a new store), a warm re-snapshot (the stat cache: 0 files
  hashed), and `dvc add` cold and warm (DVC from PyPI in `bench/.envs/dvc`, made on first
  use; `--dvc` names another executable).

All figures are with a warm page cache (files just written); nothing here drops caches.
With `--write-docs` the results replace the `## Store: hashing` section of
`docs/benchmarks.md`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from mlc.store import hash_file, hash_files, open_store

sys.path.insert(0, str(Path(__file__).resolve().parent))
from peers import peer_bin

ROOT = Path(__file__).resolve().parent
WORK = ROOT / ".work" / "hashing"  # replaced by --work-dir
DOCS = ROOT.parent / "docs" / "benchmarks.md"
SECTION = "## Store: hashing"
MB = 1_000_000
T = TypeVar("T")


REPEAT = 3


def timed(function: Callable[[], T]) -> tuple[float, T]:
    start = time.perf_counter()
    result = function()
    return time.perf_counter() - start, result


def best(function: Callable[[], T]) -> tuple[float, T]:
    """The fastest of REPEAT runs (the machine may be shared; the best run is the least
    disturbed one)."""
    runs = [timed(function) for _ in range(REPEAT)]
    return min(runs, key=lambda run: run[0])


def make_large_files(directory: Path, count: int, size_mb: int) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    block = os.urandom(8 * 1024 * 1024)
    paths = []
    for index in range(count):
        path = directory / f"large-{index}.bin"
        with open(path, "wb") as handle:
            written = 0
            while written < size_mb * MB:
                chunk = block[: min(len(block), size_mb * MB - written)]
                handle.write(index.to_bytes(8, "little") + chunk[8:])
                written += len(chunk)
        paths.append(path)
    return paths


def make_small_files(directory: Path, count: int, size: int = 4096) -> list[Path]:
    paths = []
    payload = bytearray(os.urandom(size))
    for index in range(count):
        sub = directory / f"{index // 1000:03d}"
        if index % 1000 == 0:
            sub.mkdir(parents=True, exist_ok=True)
        path = sub / f"{index:06d}.bin"
        payload[:8] = index.to_bytes(8, "little")
        path.write_bytes(payload)
        paths.append(path)
    return paths


def sha256sum(paths: list[Path]) -> float:
    seconds, _ = timed(
        lambda: subprocess.run(
            ["sha256sum", *map(str, paths)], check=True, stdout=subprocess.DEVNULL
        )
    )
    return seconds


def warm(paths: list[Path]) -> None:
    for path in paths:
        with open(path, "rb") as handle:
            while handle.read(1 << 24):
                pass


def load() -> str:
    try:
        return Path("/proc/loadavg").read_text().split()[0]
    except OSError:
        return "?"


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
        flags = Path("/proc/cpuinfo").read_text()
        if " sha_ni" in flags:
            model += " (SHA-NI)"
    except OSError:
        pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{os.cpu_count()} cores (`nproc`), {model}, {memory:.0f} GiB RAM, "
        f"Python {platform.python_version()}, {platform.system()} {platform.release()}"
    )


def bench_large(count: int, size_mb: int, rows: list[tuple[str, str, str]]) -> None:
    directory = WORK / "large"
    paths = make_large_files(directory, count, size_mb)
    total = count * size_mb * MB
    warm(paths)
    reference = min(sha256sum(paths) for _ in range(REPEAT))
    one_core, _ = best(lambda: [hash_file(p) for p in paths])
    all_cores, _ = best(lambda: hash_files(paths))
    gbps = total / 1e9
    rows.append(
        (
            f"{count} x {size_mb} MB, `sha256sum` (one process)",
            f"{reference:.2f} s",
            f"{gbps / reference:.2f} GB/s",
        )
    )
    rows.append(
        (
            f"{count} x {size_mb} MB, `hash_file` one at a time (one core)",
            f"{one_core:.2f} s",
            f"{gbps / one_core:.2f} GB/s = {reference / one_core:.2f}x sha256sum",
        )
    )
    rows.append(
        (
            f"{count} x {size_mb} MB, `hash_files` ({os.cpu_count()} cores)",
            f"{all_cores:.2f} s",
            f"{gbps / all_cores:.2f} GB/s = {reference / all_cores:.2f}x sha256sum",
        )
    )
    store = open_store(WORK / "store-large")
    seconds, version = timed(lambda: store.snapshot(directory))
    rows.append(
        (
            f"{count} x {size_mb} MB, `snapshot` (hash + copy into the store + sync)",
            f"{seconds:.2f} s",
            f"{gbps / seconds:.2f} GB/s, {version.hashed_files} files hashed",
        )
    )
    seconds, version = timed(lambda: store.snapshot(directory))
    rows.append(
        (
            f"{count} x {size_mb} MB, warm re-`snapshot` (stat cache)",
            f"{seconds * 1000:.0f} ms",
            f"{version.hashed_files} files hashed",
        )
    )
    store.close()
    shutil.rmtree(directory)
    shutil.rmtree(WORK / "store-large")


def bench_small(count: int, dvc: str | None, rows: list[tuple[str, str, str]]) -> None:
    directory = WORK / "small" / "data"
    paths = make_small_files(directory, count)
    # What was just written is flushed first: the timings are of reading the files, not of
    # the kernel writing them back meanwhile (the same for mlc and DVC).
    os.sync()
    # Files modified less than 100 ms before they are read are not trusted by the stat cache.
    time.sleep(0.2)
    seconds, _ = best(lambda: hash_files(paths))
    rows.append(
        (f"{count:,} x 4 KiB, `hash_files`", f"{seconds:.2f} s", f"{count / seconds:,.0f} files/s")
    )
    reference = min(sha256sum_many(paths) for _ in range(REPEAT))
    rows.append(
        (
            f"{count:,} x 4 KiB, `sha256sum` (xargs, one process at a time)",
            f"{reference:.2f} s",
            f"{count / reference:,.0f} files/s",
        )
    )
    # Each cold run gets a new store; none is removed before the last has run (on ext4
    # without a journal, creating files right after deleting many is slower).
    colds = []
    for attempt in range(REPEAT):
        cold_store = open_store(WORK / "small" / f".mlc-cold-{attempt}")
        colds.append(timed(lambda store=cold_store: store.snapshot(directory)))
        cold_store.close()
    cold, version = min(colds, key=lambda run: run[0])
    spread = ", ".join(f"{seconds:.2f}" for seconds, _ in colds)
    rows.append(
        (
            f"{count:,} x 4 KiB, cold `snapshot` (hash + store + sync) into a new store, "
            f"best of {REPEAT} ({spread} s)",
            f"{cold:.2f} s",
            f"{count / cold:,.0f} files/s, {version.hashed_files:,} files hashed",
        )
    )
    store = open_store(WORK / "small" / ".mlc-cold-0")
    warm_seconds, again = best(lambda: store.snapshot(directory))
    assert again.digest == version.digest
    rows.append(
        (
            f"{count:,} x 4 KiB, warm re-`snapshot` (no-op)",
            f"{warm_seconds:.2f} s",
            f"{again.hashed_files} files hashed",
        )
    )
    store.close()
    if dvc:
        bench_dvc(os.path.abspath(dvc), count, cold, warm_seconds, rows)
    shutil.rmtree(WORK / "small")


def sha256sum_many(paths: list[Path]) -> float:
    listing = WORK / "small-list.txt"
    listing.write_text("\0".join(map(str, paths)))
    seconds, _ = timed(
        lambda: subprocess.run(
            f"xargs -0 sha256sum < {listing} > /dev/null", shell=True, check=True
        )
    )
    listing.unlink()
    return seconds


def bench_dvc(
    dvc: str, count: int, cold: float, warm_seconds: float, rows: list[tuple[str, str, str]]
) -> None:
    project = WORK / "small"
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    subprocess.run(["git", "init", "-q"], cwd=project, check=True)
    subprocess.run([dvc, "init", "-q"], cwd=project, check=True, env=env)
    version = subprocess.run([dvc, "--version"], capture_output=True, text=True, env=env)
    name = f"`dvc add` {version.stdout.strip()}"
    seconds, _ = timed(
        lambda: subprocess.run([dvc, "add", "-q", "data"], cwd=project, check=True, env=env)
    )
    rows.append(
        (
            f"{count:,} x 4 KiB, cold {name}",
            f"{seconds:.2f} s",
            f"{count / seconds:,.0f} files/s; mlc is {seconds / cold:.1f}x faster",
        )
    )
    again, _ = timed(
        lambda: subprocess.run([dvc, "add", "-q", "data"], cwd=project, check=True, env=env)
    )
    rows.append(
        (
            f"{count:,} x 4 KiB, warm {name} (no-op)",
            f"{again:.2f} s",
            f"mlc is {again / warm_seconds:.1f}x faster",
        )
    )


def render(rows: list[tuple[str, str, str]]) -> str:
    lines = ["| what | time | throughput |", "| --- | --- | --- |"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    return "\n".join(lines)


def write_docs(table: str, loads: str, argv: list[str]) -> None:
    today = dt.date.today().isoformat()
    command = "python bench/bench_hashing.py " + " ".join(argv)
    section = (
        f"{SECTION}\n\n"
        f"Measured {today} on {machine()}, with `{command.strip()}` "
        "(data made on the fly, warm page cache, best of 3 runs, each cold snapshot into a new "
        "store, except for `dvc add`, run once; see the docstring of "
        f"`bench/bench_hashing.py`; {loads} on 2 cores). Small-file figures vary from run "
        "to run by a third on this virtual machine (the spread of the cold snapshots is shown; "
        "the slow ones come right after memory was freed, when writing the packs into the page "
        "cache runs at 300-470 MB/s); "
        "compare ratios rather than times across days, since the host CPU may differ.\n\n"
        f"{table}\n\n"
        "Reading the figures: `hash_file`/`hash_files` use OpenSSL's sha256 through hashlib (SHA-NI "
        "where the CPU has it); the `sha256sum` here is coreutils' own code, hence the large "
        "ratio. A cold `snapshot` also writes every file into the store: a large file into an "
        "object file of its own, small ones (up to 64 KiB) into packs written while the files "
        "are hashed (`mlc.store.packs`), so it no longer creates a file per small file; "
        "the [tmpfs] rows show the same work without a disk. A warm re-`snapshot` reads no file: "
        "the stat cache answers, and the objects are only `stat`ed. The `dvc add` rows run DVC "
        "on the same tree in its own virtual environment (`bench/.envs/dvc`).\n"
    )
    text = DOCS.read_text() if DOCS.exists() else "# Benchmarks\n"
    if SECTION in text:
        start = text.index(SECTION)
        following = text.find("\n## ", start + len(SECTION))
        text = text[:start] + section + (text[following + 1 :] if following != -1 else "")
        if following != -1 and not section.endswith("\n\n"):
            text = text.replace(section, section + "\n", 1)
    else:
        text = text.rstrip("\n") + "\n\n" + section
    DOCS.write_text(text)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--large-mb", type=int, default=512)
    parser.add_argument("--large-count", type=int, default=4)
    parser.add_argument("--small-count", type=int, default=100_000)
    parser.add_argument(
        "--dvc",
        help="a dvc executable to compare with (default: bench/.envs/dvc, made on first use)",
    )
    parser.add_argument("--no-dvc", action="store_true", help="leave DVC out")
    parser.add_argument("--write-docs", action="store_true")
    parser.add_argument("--work-dir", help="where to make the data (default bench/.work/hashing)")
    parser.add_argument(
        "--tmpfs",
        metavar="DIR",
        help="also run the small-file benchmark in DIR (e.g. /dev/shm), to separate mlc's own "
        "cost from the disk's cost of creating files",
    )
    args = parser.parse_args(argv)
    if args.no_dvc:
        args.dvc = None
    elif args.dvc is None and args.small_count:
        args.dvc = str(peer_bin("dvc") / "dvc")
    global WORK
    if args.work_dir:
        WORK = Path(args.work_dir).resolve() / "mlc-bench-hashing"
    if WORK.exists():
        shutil.rmtree(WORK)
    WORK.mkdir(parents=True)
    rows: list[tuple[str, str, str]] = []
    load_before = load()
    try:
        if args.large_count:
            bench_large(args.large_count, args.large_mb, rows)
        if args.small_count:
            bench_small(args.small_count, args.dvc, rows)
    finally:
        shutil.rmtree(WORK, ignore_errors=True)
    if args.tmpfs and args.small_count:
        WORK = Path(args.tmpfs).resolve() / "mlc-bench-hashing"
        WORK.mkdir(parents=True, exist_ok=True)
        in_memory: list[tuple[str, str, str]] = []
        try:
            bench_small(args.small_count, args.dvc, in_memory)
        finally:
            shutil.rmtree(WORK, ignore_errors=True)
        rows += [(f"{a} [tmpfs]", b, c) for a, b, c in in_memory]
    table = render(rows)
    loads = f"load average {load_before} before, {load()} after"
    print(machine())
    print(loads)
    print(table)
    if args.write_docs:
        write_docs(table, loads, [a for a in argv if a != "--write-docs"])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
