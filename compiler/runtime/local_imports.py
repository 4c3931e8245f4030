"""The project's own modules a `call` step's module imports, found by reading, not running, it.

A step's code is more than the function's own file: editing a helper it imports changes what
it computes, so each module the function's module imports, directly or through others, is part
of the step's cache key when it comes from the same place as the function's module (the
spec's directory, or the source tree it was found in). Installed libraries, the standard
library and anything else on `sys.path` are the environment, not the step's code, and are not
followed.

Imports are found in the source with `ast`, wherever they are written (inside functions and
`try` blocks too), so a module that is imported only sometimes still counts: the key may be
finer than needed, never coarser. `import a.b.c` counts `a`, `a.b` and `a.b.c` (Python runs
every package's `__init__` on the way), and so a module counts its own packages; `from a import b` counts `a`, and `a.b` when that is a
module; relative imports are resolved against the importing module's package. A module that
does not parse counts only itself.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path


def find_module(module: str, root: Path) -> Path | None:
    """The source file of a dotted module under one directory (a package's `__init__.py`)."""
    candidate = root.joinpath(*module.split("."))
    for path in (candidate.with_suffix(".py"), candidate / "__init__.py"):
        if path.is_file():
            return path
    return None


def local_imports(module: str, source: Path, root: Path) -> dict[str, Path]:
    """Every module under `root` that `module` (whose file is `source`) imports, directly or
    through the modules it imports, by dotted name, with its parent packages (importing it
    runs them); the module itself is not included."""
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
        for imported in _imported_names(name, path):
            for candidate in _with_parents(imported):
                visit(candidate)
    return dict(sorted(found.items()))


def _imported_names(module: str, path: Path) -> Iterator[str]:
    """The dotted names the module's source imports (each `from a import b` gives `a` and
    `a.b`: whether `b` is a module is found out by looking for its file)."""
    try:
        tree = ast.parse(path.read_bytes(), filename=str(path))
    except (SyntaxError, ValueError, OSError):
        return
    is_package = path.name == "__init__.py"
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(module, is_package, node.module, node.level)
            if base is None:
                continue
            if base:
                yield base
            for alias in node.names:
                if alias.name != "*":
                    yield f"{base}.{alias.name}" if base else alias.name


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
