"""Digests of the code a step runs, for its cache key.

For a `call` step: the source file of the function's module, found the way Python would find
it with the spec's directory first on `sys.path`, but without importing (and so running) it,
and the files of the project's modules it imports (`mlc.runtime.local_imports`). For any
step: each file or directory the step declares in `code`, relative to the spec.
"""

from __future__ import annotations

import hashlib
import os
import sys
import sysconfig
from functools import cache
from pathlib import Path

from mlc.ir.model import Step
from mlc.runtime.calls import split_function_name
from mlc.runtime.errors import PreflightError
from mlc.runtime.local_imports import ImportIndex, find_module, local_imports
from mlc.runtime.named_files import command_words, named_files, named_modules
from mlc.store.base import Store

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


def module_source(module: str, base_dir: str) -> tuple[Path, Path] | None:
    """The source file of a module on `[base_dir, *sys.path]` and the entry it was found
    in, or None if there is none."""
    for entry in [base_dir, *sys.path]:
        if entry:
            found = find_module(module, Path(entry))
            if found is not None:
                return found, Path(entry)
    return None


@cache
def _environment_dirs() -> frozenset[Path]:
    """Where installed packages and the standard library live."""
    paths = sysconfig.get_paths()
    names = ("stdlib", "platstdlib", "purelib", "platlib")
    return frozenset(Path(paths[name]).resolve() for name in names if name in paths)


def _is_environment(root: Path) -> bool:
    """Whether a `sys.path` entry holds the environment (installed packages, the standard
    library) rather than the project's code."""
    resolved = root.resolve()
    if resolved.name in ("site-packages", "dist-packages"):
        return True
    return any(resolved == d or d in resolved.parents for d in _environment_dirs())


IMPORT_INDEX = "imports.json"
"""The `ImportIndex` of a store's local directory."""


class CodeDigests:
    """The code digests of the steps of one document: each file is read, and each module's
    imports are found, once however many steps share them (and, with an `ImportIndex` kept
    in the store's local directory, parsed once per version of the file)."""

    def __init__(self, base_dir: str, index: ImportIndex | None = None) -> None:
        self.base_dir = base_dir
        self.index = index or ImportIndex()
        self._base: Path | None = None
        self._files: dict[Path, str] = {}
        self._modules: dict[str, dict[str, str]] = {}
        self._found: dict[str, tuple[Path, Path, bool] | None] = {}
        """Each module's source file, `sys.path` entry, and whether that is the environment."""

    def of(self, step: Step) -> dict[str, str]:
        """The code of a step: `{label: digest}`, labels relative to the spec's directory.

        A `call` step's code is its function's module and the project's modules that one
        imports (`mlc.runtime.local_imports`), labelled `module NAME`. A `run` step's is the
        source and configuration files its command names, as written, with the project's
        modules a Python script among them imports, and the module of `python -m NAME`
        (`mlc.runtime.named_files`). Any step's includes what it declares in `code`. A
        function's module that cannot be found, or a declared `code` path that does not
        exist, is a `PreflightError`.
        """
        digests: dict[str, str] = {}
        words = command_words(step.command)
        for name in named_files(words, self._resolved_base()) if words else ():
            path = Path(self.base_dir, name)
            digests[name] = self._file(path)
            if path.suffix == ".py":  # Python runs a script with its directory on the path
                digests.update(self._imports(path.stem, path, path.parent))
        for module in named_modules(words):
            digests.update(self._module(module, environment=False) or {})
        if step.command.kind == "call" and step.command.function:
            module, _ = split_function_name(step.command.function)
            modules = self._module(module)
            if modules is None:
                raise PreflightError(
                    f"step `{step.name}` calls `{step.command.function}`, but no module "
                    f"`{module}` is found in {self.base_dir} or on the Python path"
                )
            digests.update(modules)
        for declared in step.code:
            path = Path(self.base_dir, declared)
            if path.is_dir():
                try:
                    digests[declared] = tree_digest(path)
                except OSError as exc:
                    raise PreflightError(
                        f"step `{step.name}` declares code `{declared}`, which cannot be read: "
                        f"{exc.filename}: {exc.strerror}"
                    ) from None
            elif path.is_file():
                digests[declared] = self._file(path)
            else:
                raise PreflightError(
                    f"step `{step.name}` declares code `{declared}`, which does not exist in "
                    f"{self.base_dir}"
                )
        return digests

    @classmethod
    def for_store(cls, base_dir: str, store: Store) -> CodeDigests:
        """Digests whose import index lives in the store's local directory, if it has one."""
        local_dir = getattr(store, "local_dir", None)
        return cls(base_dir, ImportIndex(Path(local_dir, IMPORT_INDEX) if local_dir else None))

    def _resolved_base(self) -> Path:
        if self._base is None:
            self._base = Path(self.base_dir).resolve()
        return self._base

    def save(self) -> None:
        """Keeps what was learnt about imports for the next command."""
        self.index.save()

    def _module(self, module: str, *, environment: bool = True) -> dict[str, str] | None:
        """A module's digest and its imports' (None when it is nowhere); an installed one
        counts alone, or not at all with `environment=False`."""
        if module not in self._found:
            found = module_source(module, self.base_dir)
            self._found[module] = None if found is None else (*found, _is_environment(found[1]))
        known = self._found[module]
        if known is None:
            return None
        source, root, installed = known
        if installed:
            return {f"module {module}": self._file(source)} if environment else {}
        return {f"module {module}": self._file(source), **self._imports(module, source, root)}

    def _imports(self, module: str, source: Path, root: Path) -> dict[str, str]:
        """The digests of the project modules a module imports, labelled `module NAME`."""
        key = f"{root}\0{module}"
        if key not in self._modules:
            self._modules[key] = {
                f"module {name}": self._file(path)
                for name, path in local_imports(module, source, root, self.index).items()
            }
        return self._modules[key]

    def _file(self, path: Path) -> str:
        if path not in self._files:
            try:
                self._files[path] = file_digest(path)
            except OSError as exc:
                raise PreflightError(f"cannot read {path}: {exc.strerror}") from None
        return self._files[path]
