"""Per-attempt work directories: inputs materialised read-only, outputs collected into the store.

```
<attempt>/inputs/<name>        an input, hard-linked or copied from the store, read-only
<attempt>/inputs/<name>/<i>    item i of a `fan_in` input
<attempt>/outputs/<name>       where the step writes an output (a `dir` output exists, empty)
<attempt>/tmp/                 TMPDIR of the step
```

Outputs become visible only through `collect_outputs`, which checks every declared output and
puts them all in the store before anything refers to them; a failed attempt's directory is
simply emptied (`empty_attempt`), and the next attempt may use it again.
"""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlc.runtime.cache_entries import CachedOutput
from mlc.runtime.context import StepPaths
from mlc.runtime.errors import StepFailure
from mlc.runtime.metrics import check_metric_keys, load_metrics
from mlc.store.base import Store
from mlc.store.digest import Digest

if TYPE_CHECKING:
    from mlc.ir.model import OutputPort


@dataclass(frozen=True, slots=True)
class OutputSlot:
    """What the process running a step needs to know of one declared output: plain data, so
    that a worker need not load the IR's models."""

    name: str
    kind: str
    """`file`, `dir` or `metrics`."""
    metric_keys: Mapping[str, str] | None = None

    @classmethod
    def of(cls, port: OutputPort) -> OutputSlot:
        """The slot of an IR output port."""
        return cls(port.name, port.type.kind, port.type.metric_keys)

    def to_json(self) -> dict[str, Any]:
        """A plain dict."""
        return {"name": self.name, "kind": self.kind, "metric_keys": self.metric_keys}


@dataclass(frozen=True, slots=True)
class AttemptDir:
    """The directory of one attempt of one invocation."""

    root: Path

    @property
    def inputs(self) -> Path:
        """Where inputs are materialised."""
        return self.root / "inputs"

    @property
    def outputs(self) -> Path:
        """Where outputs are written."""
        return self.root / "outputs"

    @property
    def tmp(self) -> Path:
        """The step's temporary directory."""
        return self.root / "tmp"


def attempt_paths(
    root: Path,
    input_digests: Mapping[str, Digest | Sequence[Digest]],
    outputs: Sequence[OutputSlot],
) -> StepPaths:
    """The paths a step sees in an attempt directory (nothing is created)."""
    attempt = AttemptDir(root)
    input_paths: dict[str, str | list[str]] = {}
    for name, digests in input_digests.items():
        if isinstance(digests, str):
            input_paths[name] = str(attempt.inputs / name)
        else:
            input_paths[name] = [str(attempt.inputs / name / str(i)) for i in range(len(digests))]
    output_paths = {port.name: str(attempt.outputs / port.name) for port in outputs}
    return StepPaths(inputs=input_paths, outputs=output_paths)


def prepare_attempt(
    root: Path,
    store: Store,
    input_digests: Mapping[str, Digest | Sequence[Digest]],
    outputs: Sequence[OutputSlot],
    *,
    known_empty: bool = False,
) -> tuple[AttemptDir, StepPaths]:
    """Makes the attempt directory ready, materialises the inputs and names the output paths.

    The directory may be one a previous attempt used (a worker reuses its own): whatever is
    in it is removed first, unless the caller knows it left it empty (`known_empty`). Only
    what the step uses is there: `inputs/` when it has inputs, `outputs/` when it has
    outputs, and always `tmp/` (an earlier attempt's, emptied, when there is one).
    """
    if not known_empty:
        empty_attempt(root)
    attempt = AttemptDir(root)
    paths = attempt_paths(root, input_digests, outputs)
    _keep_if(attempt.inputs, bool(input_digests))
    _keep_if(attempt.outputs, bool(outputs))
    for name, digests in input_digests.items():
        if isinstance(digests, str):
            store.materialize(digests, attempt.inputs / name, readonly=True)
        else:
            (attempt.inputs / name).mkdir()
            for index, digest in enumerate(digests):
                store.materialize(digest, attempt.inputs / name / str(index), readonly=True)
    for port in outputs:
        if port.kind == "dir":
            Path(paths.outputs[port.name]).mkdir()
    return attempt, paths


def _keep_if(directory: Path, needed: bool) -> None:
    """Makes an (empty) directory of the attempt exist when needed, and not otherwise."""
    if needed:
        directory.mkdir(exist_ok=True)
    elif directory.is_dir():
        directory.rmdir()


def check_output(port: OutputSlot, path: Path) -> None:
    """Checks that a step wrote an output of the declared kind (metrics: and their types)."""
    if not path.exists():
        raise StepFailure(f"the step did not write its output `{port.name}` (expected at {path})")
    kind = port.kind
    if kind in ("file", "metrics") and not path.is_file():
        raise StepFailure(f"output `{port.name}` is a `{kind}` and must be a file, not a directory")
    if kind == "dir" and not path.is_dir():
        raise StepFailure(f"output `{port.name}` is a `dir` and must be a directory")
    if kind == "metrics":
        check_metric_keys(port.name, port.metric_keys, load_metrics(str(path), port.name))


def check_links(port: OutputSlot, path: Path, root: Path) -> None:
    """Refuses an output that is, or holds, a symbolic link resolving outside the attempt
    directory `root`: its content is not the step's to store (`/etc/passwd`, a file of the
    project that may change). Links inside the attempt directory are stored as their content."""
    links = _links_under(path)
    inside = os.path.realpath(root) if links else ""  # (a stat per component: only if needed)
    for link in links:
        target = os.path.realpath(link)
        if os.path.commonpath([inside, target]) != inside:
            shown = os.path.relpath(link, root)
            raise StepFailure(
                f"output `{port.name}`: `{shown}` is a symbolic link to `{os.readlink(link)}`"
                f" ({target}), outside the attempt directory; write or copy the file into "
                "the output instead of linking to it"
            )


def _links_under(path: Path) -> list[str]:
    """The symbolic links at or below `path` (a link to a directory is not entered)."""
    if path.is_symlink():
        return [str(path)]
    links: list[str] = []
    for directory, dirs, files in os.walk(path):
        names = [os.path.join(directory, name) for name in (*dirs, *files)]
        links += [name for name in names if os.path.islink(name)]
    return links


def collect_outputs(
    store: Store, outputs: Sequence[OutputSlot], paths: StepPaths, root: Path
) -> dict[str, CachedOutput]:
    """Checks every declared output (its kind, its metrics, that its links stay inside the
    attempt directory `root`), then puts each into the store; returns their versions."""
    for port in outputs:
        path = Path(paths.outputs[port.name])
        if os.path.lexists(path):
            check_links(port, path, root)
        check_output(port, path)
    collected: dict[str, CachedOutput] = {}
    for port in outputs:
        version = store.snapshot(paths.outputs[port.name])
        collected[port.name] = CachedOutput(version.digest, version.kind)
    return collected


KEPT_DIRECTORIES = ("tmp", "inputs", "outputs")
"""The parts of an attempt directory that are emptied for the next attempt, not removed."""


def empty_attempt(root: Path) -> None:
    """Leaves `root` holding an empty `tmp/` (and, if they were there, an empty `inputs/` and
    `outputs/`), creating `root` and `tmp/` if needed. Directories are kept rather than made
    anew each attempt: making and removing a directory costs a journal commit on some
    filesystems (about 0.7 ms each on ext4 here, several per attempt), and a filesystem that
    has just deleted many inodes is slow to allocate new ones."""
    attempt = AttemptDir(root)
    try:
        entries = list(os.scandir(root))
    except FileNotFoundError:
        root.mkdir(parents=True)
        entries = []
    for entry in entries:
        if entry.name in KEPT_DIRECTORIES and entry.is_dir(follow_symlinks=False):
            _empty_directory(Path(entry.path))
        else:
            remove_tree(Path(entry.path))
    if not attempt.tmp.is_dir():
        attempt.tmp.mkdir()


def _empty_directory(path: Path) -> None:
    """Removes what a directory holds; the directory itself too if a step made it read-only."""
    try:
        for entry in list(os.scandir(path)):
            remove_tree(Path(entry.path))
    except PermissionError:
        remove_tree(path)


def remove_tree(path: Path) -> None:
    """Removes a directory tree, read-only parts included; a missing path is fine."""
    if not os.path.lexists(path):
        return
    if path.is_symlink() or not path.is_dir():
        path.unlink()
        return

    # Most trees have no read-only directory: try the plain removal first (one walk, not two).
    try:
        shutil.rmtree(path)
        return
    except PermissionError:
        pass
    # Only directories are made writable: files may be hard links of read-only store objects.
    for directory, _dirs, _files in os.walk(path):
        os.chmod(directory, stat.S_IRWXU)
    shutil.rmtree(path)
