"""Container images for the real test node, made from this machine's own files (no registry).

Two images, each written as a docker archive (the format of ``docker save``) that
``ctr images import`` reads:

``mlc.test/pause:1``
    the pod sandbox: one static binary built from ``pause.c``.
``mlc.test/step:py3.11``
    a small root filesystem with Debian's Python 3.11 and the shared libraries that wheels
    expect (libstdc++, libgomp), copied from the installed Debian packages as ``dpkg -L``
    lists them. It holds no project code: pods mount the repository and its virtual
    environment read-only, and the image's ``sitecustomize`` adds the site directories named
    in ``MLC_SITE_DIRS`` (so an editable install's ``.pth`` files work, unlike ``PYTHONPATH``).

Run by ``tests/k8s/build.sh``::

    python3 tests/k8s/node_images.py OUTPUT_DIR

It is idempotent: a stamp records what the images were made from (this file, ``pause.c`` and
the versions of the Debian packages copied), and a current stamp skips the build. Standard
library only, plus ``gcc`` (with the static C library) and ``dpkg-query``.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
PAUSE_SOURCE = HERE / "pause.c"

PAUSE_IMAGE = "mlc.test/pause:1"
STEP_IMAGE = "mlc.test/step:py3.11"
#: The archives in the output directory, by image name.
ARCHIVES = {PAUSE_IMAGE: "pause.tar", STEP_IMAGE: "step.tar"}
#: The environment variable the step image's ``sitecustomize`` reads (colon-separated).
SITE_DIRS_VARIABLE = "MLC_SITE_DIRS"

#: The step image's packages; their dependencies come along, less ``SKIPPED_PACKAGES``.
STEP_PACKAGES = ("python3.11", "libstdc++6", "libgomp1", "dash", "coreutils")
#: Packaging machinery and the like that nothing in a pod runs.
SKIPPED_PACKAGES = frozenset(
    {"dpkg", "debconf", "perl-base", "debianutils", "tar", "install-info", "readline-common"}
)
#: Paths left out of the step image: documentation, translations, Python's own tests and tools.
SKIPPED_PREFIXES = (
    "/usr/share/doc/",
    "/usr/share/man/",
    "/usr/share/info/",
    "/usr/share/locale/",
    "/usr/share/lintian/",
    "/usr/share/bug/",
    "/usr/lib/python3.11/test/",
    "/usr/lib/python3.11/lib2to3/",
    "/usr/lib/python3.11/idlelib/",
    "/usr/lib/python3.11/pydoc_data/",
    "/etc/python3.11/sitecustomize.py",
    "/usr/lib/python3.11/sitecustomize.py",
)
PATH_VARIABLE = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

SITECUSTOMIZE = f'''"""mlc's test step image: add the site directories named in {SITE_DIRS_VARIABLE}.

Pods mount the repository and its virtual environment read-only from the host; adding the
virtual environment's site-packages as a site directory honours its .pth files (an editable
install of mlc among them), which PYTHONPATH would not.
"""

import os
import site

for _directory in os.environ.get("{SITE_DIRS_VARIABLE}", "").split(os.pathsep):
    if _directory:
        site.addsitedir(_directory)
'''


def log(message: str) -> None:
    print(f"node_images.py: {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------
# Debian packages


def _dpkg_query(fields: str, packages: Sequence[str]) -> list[str]:
    result = subprocess.run(
        ["dpkg-query", "-W", "-f", fields, *packages],
        capture_output=True,
        text=True,
        check=False,
    )
    return [line for line in result.stdout.splitlines() if line.strip()]


def _installed(package: str) -> bool:
    lines = _dpkg_query("${db:Status-Abbrev}\n", [package])
    return bool(lines) and lines[0].startswith("ii")


def package_closure(roots: Iterable[str], skipped: frozenset[str] = SKIPPED_PACKAGES) -> list[str]:
    """The installed packages ``roots`` need (Depends and Pre-Depends, recursively).

    Of alternatives (``a | b``) the first installed one counts; virtual or missing
    dependencies are left out.
    """
    wanted: list[str] = []
    seen: set[str] = set()
    queue = list(roots)
    while queue:
        package = queue.pop(0)
        if package in seen or package in skipped:
            continue
        seen.add(package)
        if not _installed(package):
            raise SystemExit(f"node_images.py: the Debian package {package} is not installed")
        wanted.append(package)
        (line,) = _dpkg_query("${Pre-Depends}, ${Depends}\n", [package])
        for clause in line.split(","):
            choices = [c.strip().split(" ")[0].split(":")[0] for c in clause.split("|")]
            for choice in choices:
                if choice and (choice in seen or choice in skipped or _installed(choice)):
                    queue.append(choice)
                    break
    return sorted(wanted)


def package_versions(packages: Sequence[str]) -> list[str]:
    """``name version`` of each package, for the stamp."""
    return _dpkg_query("${Package} ${Version}\n", packages)


def package_files(package: str) -> list[str]:
    """The paths that ``dpkg -L`` lists for an installed package."""
    result = subprocess.run(["dpkg", "-L", package], capture_output=True, text=True, check=True)
    return [line for line in result.stdout.splitlines() if line.startswith("/")]


# --------------------------------------------------------------------------------------------
# Root file systems


def _copy_into(root: Path, path: str) -> None:
    """Copy one host path into ``root`` where it really lives (``/lib`` is ``/usr/lib``)."""
    if path.startswith(SKIPPED_PREFIXES) or path == "/.":
        return
    source = Path(path)
    if not os.path.lexists(source):
        return  # excluded by dpkg's path-exclude, or removed by hand
    parent = os.path.realpath(source.parent)
    target = root / parent.lstrip("/") / source.name
    if source.is_symlink():
        target.parent.mkdir(parents=True, exist_ok=True)
        if not os.path.lexists(target):
            os.symlink(os.readlink(source), target)
    elif source.is_dir():
        target.mkdir(parents=True, exist_ok=True)
    elif source.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
        if source.suffix == ".py":
            # Debian compiles the standard library at install time (no .pyc in the package):
            # take the host's bytecode too, or every pod would compile what it imports.
            compiled = source.parent / "__pycache__" / f"{source.stem}.cpython-311.pyc"
            if compiled.is_file():
                (target.parent / "__pycache__").mkdir(exist_ok=True)
                shutil.copy2(compiled, target.parent / "__pycache__" / compiled.name)


def stage_step_rootfs(root: Path, packages: Sequence[str]) -> None:
    """Fill ``root`` with the packages' files, merged-/usr links and a few basics."""
    for directory in ("usr/bin", "usr/sbin", "usr/lib", "usr/lib64", "etc", "root"):
        (root / directory).mkdir(parents=True, exist_ok=True)
    for name in ("bin", "sbin", "lib", "lib64"):
        os.symlink(f"usr/{name}", root / name)
    for package in packages:
        for path in package_files(package):
            _copy_into(root, path)
    (root / "tmp").mkdir(mode=0o1777, exist_ok=True)
    os.chmod(root / "tmp", 0o1777)
    for name in ("python3", "python"):
        link = root / "usr/bin" / name
        if not os.path.lexists(link):
            os.symlink("python3.11", link)
    if not os.path.lexists(root / "usr/bin/sh"):
        os.symlink("dash", root / "usr/bin/sh")
    (root / "etc/passwd").write_text(
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
    )
    (root / "etc/group").write_text("root:x:0:\nnogroup:x:65534:\n")
    (root / "usr/lib/python3.11/sitecustomize.py").write_text(SITECUSTOMIZE)
    # The dynamic linker's cache, as the image's own files describe them (chroots: root only).
    if os.geteuid() == 0 and shutil.which("ldconfig"):
        subprocess.run(["ldconfig", "-r", str(root)], check=True)


def build_pause_binary(output: Path) -> None:
    """Compile ``pause.c`` into a static binary."""
    compiler = shutil.which("gcc") or shutil.which("cc")
    if compiler is None:
        raise SystemExit("node_images.py: gcc is needed to build the pause image")
    subprocess.run(
        [compiler, "-static", "-Os", "-s", "-o", str(output), str(PAUSE_SOURCE)], check=True
    )


# --------------------------------------------------------------------------------------------
# Docker archives


def _as_root(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    return info


def write_layer(root: Path, layer: Path) -> str:
    """Pack ``root`` into an uncompressed layer tar; return its sha256 (the diff id)."""
    with tarfile.open(layer, "w", format=tarfile.PAX_FORMAT) as tar:
        for child in sorted(root.iterdir()):
            tar.add(child, arcname=child.name, filter=_as_root)
    digest = hashlib.sha256()
    with layer.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def write_docker_archive(
    archive: Path, tag: str, layer: Path, diff_id: str, config: dict[str, object]
) -> None:
    """Write a one-layer image as ``docker save`` would, for ``ctr images import``."""
    image_config = {
        "architecture": "amd64",
        "os": "linux",
        "created": "1970-01-01T00:00:00Z",
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{diff_id}"]},
        "history": [{"created": "1970-01-01T00:00:00Z", "created_by": "tests/k8s/node_images.py"}],
    }
    config_bytes = json.dumps(image_config, sort_keys=True).encode()
    config_name = hashlib.sha256(config_bytes).hexdigest() + ".json"
    layer_name = f"{diff_id}/layer.tar"
    manifest = [{"Config": config_name, "RepoTags": [tag], "Layers": [layer_name]}]

    def add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
        info = _as_root(tarfile.TarInfo(name))
        info.size = len(data)
        info.mtime = int(time.time())
        tar.addfile(info, io.BytesIO(data))

    with tarfile.open(archive, "w") as tar:
        add_bytes(tar, config_name, config_bytes)
        tar.add(layer, arcname=layer_name, filter=_as_root)
        add_bytes(tar, "manifest.json", json.dumps(manifest).encode())


# --------------------------------------------------------------------------------------------
# The build


def stamp(packages: Sequence[str]) -> str:
    """What the images are made from: the build code and the copied packages' versions."""
    digest = hashlib.sha256()
    for source in (Path(__file__).resolve(), PAUSE_SOURCE):
        digest.update(source.read_bytes())
    digest.update("\n".join(package_versions(packages)).encode())
    return digest.hexdigest()


def is_current(output: Path, want: str) -> bool:
    """The images in ``output`` exist and were made from what ``want`` stamps."""
    stamp_file = output / "stamp"
    archives_exist = all((output / name).is_file() for name in ARCHIVES.values())
    return archives_exist and stamp_file.is_file() and stamp_file.read_text().strip() == want


def build(output: Path) -> bool:
    """Build both images into ``output`` unless current; return whether anything was built."""
    packages = package_closure(STEP_PACKAGES)
    want = stamp(packages)
    if is_current(output, want):
        return False
    began = time.monotonic()
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=output.name + ".tmp.", dir=output.parent))
    try:
        pause_root = staging / "pause-root"
        pause_root.mkdir()
        build_pause_binary(pause_root / "pause")
        layer = staging / "pause-layer.tar"
        diff_id = write_layer(pause_root, layer)
        write_docker_archive(
            staging / ARCHIVES[PAUSE_IMAGE],
            PAUSE_IMAGE,
            layer,
            diff_id,
            {"Entrypoint": ["/pause"], "WorkingDir": "/"},
        )
        layer.unlink()

        step_root = staging / "step-root"
        step_root.mkdir()
        stage_step_rootfs(step_root, packages)
        layer = staging / "step-layer.tar"
        diff_id = write_layer(step_root, layer)
        write_docker_archive(
            staging / ARCHIVES[STEP_IMAGE],
            STEP_IMAGE,
            layer,
            diff_id,
            {
                "Env": [PATH_VARIABLE, "LANG=C.UTF-8", "PYTHONDONTWRITEBYTECODE=1"],
                "Cmd": ["python3"],
                "WorkingDir": "/",
            },
        )
        layer.unlink()
        shutil.rmtree(pause_root)
        shutil.rmtree(step_root)
        (staging / "stamp").write_text(want + "\n")
        staging.chmod(0o755)
        previous = output.with_name(output.name + ".old")
        shutil.rmtree(previous, ignore_errors=True)
        if output.exists():
            output.rename(previous)
        staging.rename(output)
        shutil.rmtree(previous, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    size = sum((output / name).stat().st_size for name in ARCHIVES.values())
    log(
        f"built {', '.join(ARCHIVES)} ({size / 1e6:.0f} MB, {len(packages)} Debian packages) "
        f"in {time.monotonic() - began:.1f} s"
    )
    return True


def main(argv: Sequence[str] | None = None) -> int:
    """``python3 tests/k8s/node_images.py OUTPUT_DIR``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("output", type=Path, help="where the image archives go")
    args = parser.parse_args(argv)
    build(args.output.resolve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
