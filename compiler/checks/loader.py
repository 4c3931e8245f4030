"""Reading spec files and their imports: a module per file, import cycles reported.

Imports are resolved relative to the importing file. Each file is read and parsed once per
compilation, whatever the number of files importing it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from mlc.diagnostics import Diagnostic, Label
from mlc.diagnostics import catalog as codes
from mlc.front import ast
from mlc.front.parser import parse
from mlc.source import SourceMap, Span, spec_text


@dataclass
class LoadedModule:
    """A parsed file and the modules its imports name, by alias."""

    module: ast.Module
    path: Path
    imports: dict[str, LoadedModule] = field(default_factory=dict)
    failed_imports: set[str] = field(default_factory=set)
    """Aliases of imports that were reported as missing or unreadable."""


@dataclass
class Loader:
    """Reads and parses files, sharing one `SourceMap` and one diagnostics list."""

    sources: SourceMap
    diagnostics: list[Diagnostic]
    display_root: Path = field(default_factory=Path.cwd)
    _loaded: dict[Path, LoadedModule | None] = field(default_factory=dict)
    _loading: list[Path] = field(default_factory=list)

    def display(self, path: Path) -> str:
        """The path as shown in diagnostics: relative to the working directory when inside it."""
        try:
            return path.relative_to(self.display_root).as_posix()
        except ValueError:
            return path.as_posix()

    def load_text(self, text: str, path: Path) -> LoadedModule | None:
        """Parses text as if read from `path`, then loads its imports."""
        resolved = path.resolve()
        shown = self.display(resolved)
        text = spec_text(text)
        self.sources.add(shown, text)
        result = parse(text, shown)
        self.diagnostics.extend(result.diagnostics)
        if result.module is None:
            self._loaded[resolved] = None
            return None
        loaded = LoadedModule(result.module, resolved)
        self._loaded[resolved] = loaded
        self._loading.append(resolved)
        try:
            for declaration in result.module.imports:
                self._load_import(loaded, declaration)
        finally:
            self._loading.pop()
        return loaded

    def load(self, path: Path) -> LoadedModule | None:
        """Loads a file (once) and its imports; a file that cannot be read is a diagnostic."""
        resolved = path.resolve()
        if resolved in self._loaded:
            return self._loaded[resolved]
        try:
            text = resolved.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            shown = self.display(resolved)
            reason = (
                f"it is not UTF-8 text (byte {error.start})"
                if isinstance(error, UnicodeDecodeError)
                else error.strerror or str(error)
            )
            self.diagnostics.append(
                codes.IMPORT_FAILED.at(
                    whole_file(shown),
                    "this file",
                    path=shown,
                    reason=reason,
                    help="save specs as UTF-8" if isinstance(error, UnicodeDecodeError) else None,
                )
            )
            self._loaded[resolved] = None
            return None
        return self.load_text(text, resolved)

    def _load_import(self, importer: LoadedModule, declaration: ast.Import) -> None:
        target = (importer.path.parent / declaration.path.value).resolve()
        alias = declaration.alias.name if declaration.alias else _stem(declaration.path.value)
        span = declaration.path.span
        if alias in importer.imports:
            where = declaration.alias.span if declaration.alias else span
            first = next(
                (
                    d
                    for d in importer.module.imports
                    if d is not declaration
                    and (d.alias.name if d.alias else _stem(d.path.value)) == alias
                ),
                None,
            )
            self.diagnostics.append(
                codes.DUPLICATE_DEFINITION.at(
                    where,
                    "imported twice under this name",
                    kind="import",
                    name=alias,
                    secondary=[
                        Label(
                            first.alias.span if first.alias else first.path.span,
                            "first imported here",
                        )
                    ]
                    if first
                    else [],
                    help="give one of them another name with `as`",
                )
            )
            return
        if target in self._loading:
            cycle = [*self._loading[self._loading.index(target) :], target]
            shown = " -> ".join(f"`{self.display(p)}`" for p in cycle)
            self.diagnostics.append(
                codes.IMPORT_CYCLE.at(
                    span,
                    "this import closes the cycle",
                    cycle=shown,
                    help="move what both files need into a third file that imports neither",
                )
            )
            cyclic = self._loaded.get(target)
            if cyclic is not None:
                # Bound anyway, so that its uses are not reported again as unknown names.
                importer.imports[alias] = cyclic
            return
        if target in self._loaded:
            loaded = self._loaded[target]
            if loaded is not None:
                importer.imports[alias] = loaded
            else:
                importer.failed_imports.add(alias)
            return
        if not target.is_file():
            self.diagnostics.append(
                codes.IMPORT_NOT_FOUND.at(
                    span,
                    "no such file",
                    path=declaration.path.value,
                    help=f"paths are relative to the importing file's folder, `{self.display(importer.path.parent) or '.'}`",
                )
            )
            importer.failed_imports.add(alias)
            return
        try:
            text = target.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            self.diagnostics.append(
                codes.IMPORT_FAILED.at(
                    span,
                    "cannot be read",
                    path=declaration.path.value,
                    reason=(
                        "it is not UTF-8 text"
                        if isinstance(error, UnicodeDecodeError)
                        else error.strerror or str(error)
                    ),
                    help="save it as UTF-8" if isinstance(error, UnicodeDecodeError) else None,
                )
            )
            importer.failed_imports.add(alias)
            return
        loaded_module = self.load_text(text, target)
        if loaded_module is not None:
            importer.imports[alias] = loaded_module
        else:
            importer.failed_imports.add(alias)


def _stem(path: str) -> str:
    name = path.rsplit("/", 1)[-1]
    return name.split(".", 1)[0]


def whole_file(path: str) -> Span:
    """A span covering the start of a file, for file-level diagnostics."""
    return Span(path, 0, 0)
