"""Project configuration: `mlc.toml`, or `[tool.mlc]` in `pyproject.toml`, found by walking up
from the working directory; and the project's root, where its default store lives.

```toml
[tool.mlc]                    # in mlc.toml the same keys stand at the top level
exclude = ["specs/corpus"]    # paths or globs `mlc lint` and `mlc fmt` skip in directories
select = ["E", "W05"]         # codes `mlc lint` reports (prefixes), `ignore` those it never does
store = "build/mlc-store"     # the default store (a path from this file's folder, or a URI)
target = "laptop"             # the target `plan`, `apply`, `lock` use without `--target`
```

The nearest folder with an `mlc.toml`, or a `pyproject.toml` that has a `[tool.mlc]` table,
holds the configuration; a `pyproject.toml` without one is passed over. The project's root is
that folder, else the nearest folder with a `.git`.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CONFIG_FILE = "mlc.toml"
STORE_DIR = ".mlc"
_GLOB = set("*?[")


@dataclass
class ProjectConfig:
    """What `[tool.mlc]` or `mlc.toml` says, with paths made absolute."""

    select: list[str] = field(default_factory=list)
    ignore: list[str] = field(default_factory=list)
    exclude: list[str] = field(default_factory=list)
    """Absolute path prefixes and globs (a glob without `/` matches a file name anywhere)."""
    store: str | None = None
    target: str | None = None
    source: Path | None = None
    """The file the configuration came from."""
    root: Path | None = None
    """The project's root: the configuration's folder, else the nearest folder with `.git`."""


def load_config(start: Path) -> ProjectConfig:
    """The configuration that applies at `start` (see the module docstring)."""
    start = start.resolve()
    for folder in (start, *start.parents):
        dedicated = folder / CONFIG_FILE
        if dedicated.is_file():
            table = _read(dedicated)
            if table is not None:
                return _config(table, dedicated)
            return ProjectConfig(root=folder)
        pyproject = folder / "pyproject.toml"
        if pyproject.is_file():
            document = _read(pyproject)
            section = (document or {}).get("tool", {}).get("mlc")
            if isinstance(section, dict):
                return _config(section, pyproject)
    git = next((f for f in (start, *start.parents) if (f / ".git").exists()), None)
    return ProjectConfig(root=git)


def _read(path: Path) -> dict[str, Any] | None:
    import tomllib

    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, OSError, UnicodeDecodeError) as error:
        print(f"warning: ignoring {path}: {error}", file=sys.stderr)
        return None


def _config(table: dict[str, Any], source: Path) -> ProjectConfig:
    root = source.parent
    store = table.get("store")
    target = table.get("target")
    return ProjectConfig(
        select=_strings(table, "select", source),
        ignore=_strings(table, "ignore", source),
        exclude=[_anchor(p, root) for p in _strings(table, "exclude", source)],
        store=_store(str(store), root) if isinstance(store, str) and store else None,
        target=str(target) if isinstance(target, str) and target else None,
        source=source,
        root=root,
    )


def _strings(table: dict[str, Any], key: str, source: Path) -> list[str]:
    value = table.get(key, [])
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    print(f"warning: ignoring `{key}` in {source}: expected a list of strings", file=sys.stderr)
    return []


def _anchor(pattern: str, root: Path) -> str:
    """A pattern as an absolute one: paths are relative to the configuration's folder; a glob
    without `/` (`*.gen.mlspec`) matches a file name in any folder."""
    if "/" not in pattern.rstrip("/") and _GLOB & set(pattern):
        return pattern
    return (root / pattern.removeprefix("./")).as_posix()


def _store(value: str, root: Path) -> str:
    if "://" in value:
        return value
    return str(root / Path(value).expanduser())


def is_excluded(path: Path, exclude: list[str]) -> bool:
    """Whether `path` falls under one of the configuration's (absolute) exclude patterns."""
    absolute = path.resolve()
    text = absolute.as_posix()
    for pattern in exclude:
        folder = pattern.rstrip("/")
        if "/" not in pattern:
            matched = absolute.match(pattern)
        else:
            matched = text == folder or text.startswith(folder + "/")
            matched = matched or (bool(_GLOB & set(pattern)) and _glob_match(absolute, pattern))
        if matched:
            return True
    return False


def _glob_match(path: Path, pattern: str) -> bool:
    from fnmatch import fnmatchcase

    text = path.as_posix()
    # `**` stands for any number of folders; a folder pattern excludes what is under it.
    return fnmatchcase(text, pattern) or fnmatchcase(text, pattern.rstrip("/") + "/*")


def default_store(start: Path) -> str:
    """Where the store is when nothing names one: the nearest `.mlc` at or above `start` up to
    the project's root (as git finds `.git`), else `.mlc` at that root; outside any project,
    `.mlc` here."""
    config = load_config(start)
    if config.store is not None:
        return config.store
    here = start.resolve()
    limit = config.root
    if limit is None:  # outside any project: this folder's, never a stranger's further up
        return STORE_DIR
    for folder in (here, *here.parents):
        if (folder / STORE_DIR).is_dir():
            return _relative(folder / STORE_DIR, start)
        if folder == limit:
            break
    return _relative(limit / STORE_DIR, start)


def _relative(path: Path, start: Path) -> str:
    """`path` as short as it can be said from `start` (`.mlc`, `../../.mlc`)."""
    import os

    try:
        return os.path.relpath(path, start.resolve())
    except ValueError:  # another drive
        return str(path)
