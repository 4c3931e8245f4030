"""`mlc.lock`: the resolved versions of datasets pinned by a tag or `latest`, next to the spec.

```toml
# mlc.lock: resolved dataset versions for pipeline.mlspec, written by `mlc lock`. Commit it.
version = 1

[datasets.housing]
uri = "data/housing"
version = "latest"
digest = "sha256:…"
```

Entries are sorted by dataset name, so the file is stable under version control.

`mlc plan` writes nothing, but resolves datasets as `mlc apply` will once it has written the
entries it adds: inside `previewed_lock(path, entries)`, `lock_entries(path)` (what the preflight
reads) answers those entries instead of the file's.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path

from mlc.ir.model import Dataset, IRDocument
from mlc.runtime.errors import PreflightError

LOCK_FILE = "mlc.lock"
LOCK_FORMAT = 1
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


@dataclass(frozen=True, slots=True)
class LockedDataset:
    """One resolved dataset: its name, location, the version asked for and the digest it is."""

    name: str
    uri: str
    version: str
    """`latest`, or `tag:<value>`."""
    digest: str


def version_label(dataset: Dataset) -> str:
    """How a dataset's version is written in the lock: `latest` or `tag:<value>`."""
    if dataset.version.kind == "tag":
        return f"tag:{dataset.version.value}"
    return str(dataset.version.kind)


def lock_path(document: IRDocument) -> Path:
    """`mlc.lock` in the spec's directory."""
    return Path(document.base_dir) / LOCK_FILE


def read_lock(path: Path) -> dict[str, LockedDataset]:
    """The entries of a lock file by dataset name; no file means no entries."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise PreflightError(f"{path} is not a valid lock file: {exc}") from None
    if data.get("version") != LOCK_FORMAT:
        raise PreflightError(
            f"{path} has lock format {data.get('version')!r}; this mlc reads format {LOCK_FORMAT}"
        )
    entries: dict[str, LockedDataset] = {}
    for name, entry in dict(data.get("datasets", {})).items():
        try:
            entries[name] = LockedDataset(
                name, str(entry["uri"]), str(entry["version"]), str(entry["digest"])
            )
        except (KeyError, TypeError):
            raise PreflightError(
                f"{path}: entry `{name}` needs `uri`, `version` and `digest`"
            ) from None
    return entries


_PREVIEWED: ContextVar[tuple[Path, Mapping[str, LockedDataset]] | None] = ContextVar(
    "previewed_lock", default=None
)


@contextmanager
def previewed_lock(path: Path, entries: Mapping[str, LockedDataset]) -> Iterator[None]:
    """Within it, `lock_entries(path)` answers `entries`, the lock as `mlc apply` would leave
    it, without the file being written."""
    token = _PREVIEWED.set((path.resolve(), dict(entries)))
    try:
        yield
    finally:
        _PREVIEWED.reset(token)


def lock_entries(path: Path) -> dict[str, LockedDataset]:
    """The entries of the lock file at `path` (`read_lock`), or the previewed ones."""
    previewed = _PREVIEWED.get()
    if previewed is not None and previewed[0] == path.resolve():
        return dict(previewed[1])
    return read_lock(path)


def _key(name: str) -> str:
    return name if _BARE_KEY.fullmatch(name) else json.dumps(name, ensure_ascii=False)


def _string(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


def render_lock(entries: Iterable[LockedDataset], spec_name: str) -> str:
    """The text of a lock file, entries sorted by name."""
    lines = [
        f"# mlc.lock: resolved dataset versions for {spec_name}, written by `mlc lock`.",
        "# Commit it: `mlc apply` uses exactly these versions.",
        f"version = {LOCK_FORMAT}",
    ]
    for entry in sorted(entries, key=lambda e: e.name):
        lines += [
            "",
            f"[datasets.{_key(entry.name)}]",
            f"uri = {_string(entry.uri)}",
            f"version = {_string(entry.version)}",
            f"digest = {_string(entry.digest)}",
        ]
    return "\n".join(lines) + "\n"


def write_lock(path: Path, text: str) -> None:
    """Writes the lock file atomically (a temporary name renamed into place); on an `OSError`
    (a full disk) the temporary file is removed and the lock is as it was."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, path)
    except OSError:
        temporary.unlink(missing_ok=True)
        raise
