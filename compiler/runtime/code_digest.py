"""Digests of the code a step runs, for its cache key.

For a `call` step: the source file of the function's module, found the way Python would find
it with the spec's directory first on `sys.path`, but without importing (and so running) it.
For any step: each file or directory the step declares in `code`, relative to the spec.
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

from mlc.ir.model import Step
from mlc.runtime.calls import split_function_name
from mlc.runtime.errors import PreflightError

_SKIPPED_DIRS = {"__pycache__", ".git", ".mlc", ".venv", "node_modules"}


def file_digest(path: Path) -> str:
    """`sha256:<hex>` of a file's bytes."""
    hasher = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            hasher.update(block)
    return f"sha256:{hasher.hexdigest()}"


def tree_digest(root: Path) -> str:
    """`sha256:<hex>` of a directory: the sorted relative paths and digests of its files
    (caches such as `__pycache__` left out)."""
    lines: list[str] = []
    for directory, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in _SKIPPED_DIRS)
        for name in sorted(files):
            if name.endswith((".pyc", ".pyo")):
                continue
            path = Path(directory, name)
            relative = path.relative_to(root).as_posix()
            lines.append(f"{relative}\0{file_digest(path)}\n")
    return "sha256:" + hashlib.sha256("".join(lines).encode()).hexdigest()


def module_source(module: str, base_dir: str) -> Path | None:
    """The source file of a module on `[base_dir, *sys.path]`, or None if there is none."""
    parts = module.split(".")
    for entry in [base_dir, *sys.path]:
        if not entry:
            continue
        candidate = Path(entry, *parts)
        for path in (candidate.with_suffix(".py"), candidate / "__init__.py"):
            if path.is_file():
                return path
    return None


def code_digests(step: Step, base_dir: str) -> dict[str, str]:
    """The code of a step: `{label: digest}`, labels relative to the spec's directory.

    A `call` function's module that cannot be found, or a declared `code` path that does not
    exist, is a `PreflightError`.
    """
    digests: dict[str, str] = {}
    if step.command.kind == "call" and step.command.function:
        module, _ = split_function_name(step.command.function)
        source = module_source(module, base_dir)
        if source is None:
            raise PreflightError(
                f"step `{step.name}` calls `{step.command.function}`, but no module `{module}` "
                f"is found in {base_dir} or on the Python path"
            )
        digests[f"module {module}"] = file_digest(source)
    for declared in step.code:
        path = Path(base_dir, declared)
        if path.is_dir():
            digests[declared] = tree_digest(path)
        elif path.is_file():
            digests[declared] = file_digest(path)
        else:
            raise PreflightError(
                f"step `{step.name}` declares code `{declared}`, which does not exist in {base_dir}"
            )
    return digests
