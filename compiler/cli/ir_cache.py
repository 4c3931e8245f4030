"""A cache of compiled IR documents, so that running an unchanged spec again skips compiling it.

`mlc apply`, `mlc plan` and `mlc lock` compile the spec every time; for a spec of 1,000 steps
that is over a second, most of it parsing, which a no-op re-apply should not pay. An entry is
written for a compilation without errors (theirs, and `mlc compile`'s); its warnings are kept,
as printed (with and without colour), and printed again on every hit. It is found under a key
made of:

- the mlc version and a fingerprint of mlc's own code (size and mtime of every source file of
  the `mlc` and `mlc.backends` packages), so an edited or upgraded compiler never reads an
  entry written by another;
- the working directory and the spec path as given (the IR records paths as given);
- the options: target, pipeline and params.

The entry lists every source file the compilation read (the spec and its imports) with the
sha256 of its text; a hit reads and hashes them again and must find them unchanged. Targets
whose backend is not built into mlc are never cached (a plugin's description can change
without mlc's code changing). Entries live in `$MLC_IR_CACHE_DIR`, else
`$XDG_CACHE_HOME/mlc/ir`, else `~/.cache/mlc/ir`; `MLC_IR_CACHE=0` turns the cache off. A cache
that cannot be read or written is ignored: it is never the reason a command fails.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from mlc.compile import CompileResult
    from mlc.ir.model import IRDocument
    from mlc.source import SourceMap

ENV_DISABLE = "MLC_IR_CACHE"
ENV_DIR = "MLC_IR_CACHE_DIR"
ENTRY_FORMAT = 2
_CODE_SUFFIXES = (".py", ".lark", ".json")


def enabled() -> bool:
    """False when `MLC_IR_CACHE=0`."""
    return os.environ.get(ENV_DISABLE, "1") not in ("0", "false", "no", "off")


def cache_dir() -> Path:
    """Where entries live."""
    explicit = os.environ.get(ENV_DIR)
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base, "mlc", "ir")


@cache
def code_fingerprint() -> str:
    """A digest of the version and of the size and mtime of every source file of mlc."""
    import mlc
    import mlc.backends

    digest = hashlib.sha256(getattr(mlc, "__version__", "?").encode())
    for package in (*mlc.__path__, *mlc.backends.__path__):
        for directory, dirs, files in os.walk(package):
            dirs[:] = sorted(d for d in dirs if d != "__pycache__")
            for name in sorted(files):
                if name.endswith(_CODE_SUFFIXES):
                    st = os.stat(os.path.join(directory, name))
                    digest.update(f"{directory}/{name}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def entry_key(
    spec: str, target: str | None, pipeline: str | None, params: Mapping[str, Any]
) -> str:
    """The key of a compilation of `spec` (as given) with these options, from this directory."""
    document = {
        "code": code_fingerprint(),
        "cwd": os.getcwd(),
        "spec": spec,
        "target": target,
        "pipeline": pipeline,
        "params": {name: repr(value) for name, value in sorted(params.items())},
    }
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()


def _text_digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class Cached(NamedTuple):
    """A cache hit: the document, and its compilation's warnings as printed."""

    document: IRDocument
    warnings: Mapping[str, str]
    """`plain` and `colour` renderings; empty when there were none."""


def lookup(key: str) -> Cached | None:
    """The cached compilation, if every source it was compiled from is unchanged."""
    from mlc.ir.serialize import load

    try:
        entry = json.loads((cache_dir() / f"{key}.json").read_text(encoding="utf-8"))
        if entry.get("format") != ENTRY_FORMAT:
            return None
        for path, digest in entry["sources"].items():
            if _text_digest(Path(path).read_text(encoding="utf-8")) != digest:
                return None
        warnings = entry.get("warnings") or {}
        return Cached(load(entry["ir"]), {str(k): str(v) for k, v in warnings.items()})
    except Exception:  # a missing, stale or unreadable entry is a miss
        return None


def store_compilation(key: str, result: CompileResult, ir_text: str | None = None) -> None:
    """Keeps a compilation without errors under `key`, with the notes and warnings `plan`,
    `apply` and `lock` print for it (what they compile, and what `mlc compile` compiles);
    `ir_text` is its IR as `to_json` writes it, when the caller has it already."""
    from mlc.cli.common import worth_repeating

    if result.document is None:
        return
    shown = worth_repeating(result.diagnostics)
    warnings: dict[str, str] = {}
    if shown or result.notes:
        from mlc.diagnostics.render import render_human

        notes = "".join(f"{note}\n" for note in result.notes)
        warnings = {
            "plain": notes + render_human(shown, result.sources, colour=False),
            "colour": notes + render_human(shown, result.sources, colour=True),
        }
    store(key, result.document, result.sources, warnings, ir_text)


def store(
    key: str,
    document: IRDocument,
    sources: SourceMap,
    warnings: Mapping[str, str] | None = None,
    ir_text: str | None = None,
) -> None:
    """Writes an entry (atomically; a failure is ignored); `warnings` as `lookup` returns
    them; `ir_text` is `to_json(document)` if the caller has it (serializing a large IR is
    most of the cost)."""
    from mlc.cli.backends import BUILT_IN
    from mlc.ir.serialize import to_json

    if document.target is not None and document.target.backend not in BUILT_IN:
        return
    texts = {
        os.path.abspath(path): _text_digest(source.text) for path, source in sources.files().items()
    }
    entry = {
        "format": ENTRY_FORMAT,
        "sources": texts,
        "ir": to_json(document) if ir_text is None else ir_text,
        "warnings": dict(warnings or {}),
    }
    directory = cache_dir()
    tmp = directory / f".{key}.{secrets.token_hex(4)}.tmp"
    try:
        directory.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(entry), encoding="utf-8")
        os.replace(tmp, directory / f"{key}.json")
    except OSError:
        tmp.unlink(missing_ok=True)
