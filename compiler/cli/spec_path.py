"""The spec a command was pointed at: a file, or a directory holding one spec with a pipeline;
a path that does not exist gets the nearest `.mlspec` path as a suggestion."""

from __future__ import annotations

import os
import re
from pathlib import Path

# A `pipeline NAME {` at the start of a line: enough to tell a pipeline's spec from a file of
# profiles or templates without parsing it.
_PIPELINE = re.compile(r"^\s*pipeline\s+[A-Za-z_]", re.MULTILINE)
_SKIPPED = {"node_modules", "__pycache__", "site-packages"}
_MAX_CANDIDATES = 5000


class SpecPathError(Exception):
    """The path names no spec; the message says what was found instead."""


def find_spec(raw: str, *, suffixes: tuple[str, ...] = (".mlspec",)) -> Path:
    """The spec file `raw` names: the file itself, or the one spec with a pipeline in the
    directory `raw`. Raises `SpecPathError` with candidates or a did-you-mean."""
    path = Path(raw)
    if path.is_file():
        return path
    if path.is_dir():
        return _the_spec_in(path, raw)
    message = f"no such file: `{raw}`"
    suggestion = nearest_spec(raw)
    if suggestion is not None:
        message += f"\nhelp: did you mean `{suggestion}`?"
    raise SpecPathError(message)


def _the_spec_in(directory: Path, raw: str) -> Path:
    chosen = sorted(p for p in directory.glob("*.mlspec") if _declares_pipeline(p))
    if len(chosen) == 1:
        return chosen[0]
    if not chosen:
        message = f"`{raw}` is a directory without a spec that declares a pipeline"
        below = sorted(p for p in directory.glob("*/*.mlspec") if _declares_pipeline(p))
        if below:
            message += "; specs one level down: " + ", ".join(f"`{p}`" for p in below[:10])
        raise SpecPathError(message)
    listed = ", ".join(f"`{p}`" for p in chosen)
    raise SpecPathError(f"`{raw}` holds several specs with a pipeline: {listed}; name one")


def _declares_pipeline(path: Path) -> bool:
    try:
        return bool(_PIPELINE.search(path.read_text(encoding="utf-8", errors="replace")))
    except OSError:
        return False


def nearest_spec(raw: str) -> str | None:
    """The `.mlspec` file (or directory of one) below the deepest existing folder of `raw`
    whose path is closest to `raw`, if one is close enough to be a likely typo."""
    from mlc.checks.suggest import closest

    path = Path(raw)
    base = next((p for p in path.parents if p.is_dir()), Path("."))
    candidates: set[str] = set()
    for found in _specs_below(base):
        candidates.add(found.as_posix())
        candidates.add(found.parent.as_posix())
    candidates.discard(".")
    match = closest(path.as_posix(), candidates)
    return match


def _specs_below(base: Path) -> list[Path]:
    """`.mlspec` files under `base`, outside hidden and dependency folders, up to a bound."""
    found: list[Path] = []
    for folder, directories, files in os.walk(base):
        directories[:] = sorted(
            d for d in directories if not d.startswith(".") and d not in _SKIPPED
        )
        found += [Path(folder, f) for f in sorted(files) if f.endswith(".mlspec")]
        if len(found) >= _MAX_CANDIDATES:
            break
    return found
