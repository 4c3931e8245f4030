"""The project's own modules a module imports, found by reading, not running, it.

A step's code is more than its function's own file (or the script a `run` step starts):
editing a helper it imports changes what it computes, so each module it imports, directly or
through others, is part of the step's cache key when it comes from the same place (the spec's
directory, or the source tree the module was found in). Installed libraries, the standard
library and anything else on `sys.path` are the environment, not the step's code, and are not
followed.

Imports are found in the source with `ast`, wherever they are written (inside functions and
`try` blocks too), so a module that is imported only sometimes still counts: the key may be
finer than needed, never coarser. `import a.b.c` counts `a`, `a.b` and `a.b.c` (Python runs
every package's `__init__` on the way), and so a module counts its own packages; `from a
import b` counts `a`, and `a.b` when that is a module; relative imports are resolved against
the importing module's package. A module that does not parse counts only itself. What each
file imports is remembered by an `ImportIndex` between commands.
"""

from __future__ import annotations

import ast
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def find_module(module: str, root: Path) -> Path | None:
    """The source file of a dotted module under one directory (a package's `__init__.py`)."""
    candidate = root.joinpath(*module.split("."))
    for path in (candidate.with_suffix(".py"), candidate / "__init__.py"):
        if path.is_file():
            return path
    return None


ImportStatement = tuple[int, str | None, tuple[str, ...] | None]
"""`(level, module, names)` of `from <level dots>module import names`; `(0, name, None)` of
`import name`."""


class ImportIndex:
    """The import statements of each source file, kept in a JSON file by path with the size
    and modification time they were read at, so that an unchanged file is not parsed again by
    the next `mlc apply` (parsing is about 2.5 ms per module; a project's closure may have
    hundreds). One entry per path, replaced when the file changes. The file is rewritten
    whole when something was added; a concurrent writer may win, which only means parsing
    again. Without a path, nothing is kept between commands."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self._entries: dict[str, list[Any]] | None = None
        self._added = False

    def statements(self, source: Path) -> list[ImportStatement]:
        """The import statements of a source file (none when it does not parse)."""
        entries = self._load()
        try:
            st = source.stat()
        except OSError:
            return []
        key, version = str(source), [st.st_size, st.st_mtime_ns]
        entry = entries.get(key)
        if isinstance(entry, list) and len(entry) == 2 and entry[0] == version:
            try:
                return [
                    (int(level), name, None if names is None else tuple(names))
                    for level, name, names in entry[1]
                ]
            except (TypeError, ValueError):  # a damaged entry: read the file again
                pass
        statements = list(_parse(source))
        entries[key] = [version, [list(statement) for statement in statements]]
        self._added = True
        return statements

    def save(self) -> None:
        """Writes the index if something was added (a failure is ignored: it is a cache)."""
        if not self._added or self.path is None or self._entries is None:
            return
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps(self._entries), encoding="utf-8")
            os.replace(tmp, self.path)
            self._added = False
        except OSError:
            tmp.unlink(missing_ok=True)

    def _load(self) -> dict[str, list[Any]]:
        if self._entries is None:
            self._entries = {}
            if self.path is not None:
                try:
                    loaded = json.loads(self.path.read_text(encoding="utf-8"))
                    if isinstance(loaded, dict):
                        self._entries = loaded
                except (OSError, ValueError):
                    pass
        return self._entries


def _parse(source: Path) -> Iterator[ImportStatement]:
    try:
        tree = ast.parse(source.read_bytes(), filename=str(source))
    except (SyntaxError, ValueError, RecursionError, MemoryError, OSError):
        return
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from ((0, alias.name, None) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            yield node.level, node.module, tuple(alias.name for alias in node.names)


def local_imports(
    module: str, source: Path, root: Path, index: ImportIndex | None = None
) -> dict[str, Path]:
    """Every module under `root` that `module` (whose file is `source`) imports, directly or
    through the modules it imports, by dotted name, with its parent packages (importing it
    runs them); the module itself is not included. `index` remembers what each file imports."""
    index = index or ImportIndex()
    found: dict[str, Path] = {}
    pending = [(module, source)]
    seen = {module}

    def visit(name: str) -> None:
        if name not in seen:
            seen.add(name)
            file = find_module(name, root)
            if file is not None:
                found[name] = file
                pending.append((name, file))

    for package in _with_parents(module)[:-1]:
        visit(package)
    while pending:
        name, path = pending.pop()
        for imported in _imported_names(name, path, index):
            for candidate in _with_parents(imported):
                visit(candidate)
    return dict(sorted(found.items()))


def _imported_names(module: str, path: Path, index: ImportIndex) -> Iterator[str]:
    """The dotted names the module's source imports (each `from a import b` gives `a` and
    `a.b`: whether `b` is a module is found out by looking for its file)."""
    is_package = path.name == "__init__.py"
    for level, name, names in index.statements(path):
        if names is None:  # import name
            yield str(name)
            continue
        base = _absolute(module, is_package, name, level)
        if base is None:
            continue
        if base:
            yield base
        for alias in names:
            if alias != "*":
                yield f"{base}.{alias}" if base else alias


def _absolute(module: str, is_package: bool, name: str | None, level: int) -> str | None:
    """The absolute name of `from <level dots><name> import …` in `module`; None when the
    relative import reaches above the top-level package."""
    if level == 0:
        return name or ""
    package = module.split(".") if is_package else module.split(".")[:-1]
    if level - 1 >= len(package):
        return None
    parts = package[: len(package) - (level - 1)]
    if name:
        parts.append(name)
    return ".".join(parts)


def _with_parents(name: str) -> list[str]:
    """`a.b.c` -> `a`, `a.b`, `a.b.c`."""
    parts = name.split(".")
    return [".".join(parts[: index + 1]) for index in range(len(parts))]
