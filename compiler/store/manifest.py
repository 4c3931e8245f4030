"""Directory manifests: canonical JSON listing (path, digest, size, mode) of every file.

A manifest is stored as an ordinary object; its digest is the directory's version. The bytes
are canonical (sorted keys, no whitespace, UTF-8, entries sorted by path), so the same tree
always gives the same digest:

```
{"entries":[{"digest":"sha256:…","mode":420,"path":"a/b.csv","size":12}],
 "format":"mlc.manifest","version":1}
```

Only the executable bit of a mode is kept (0o755 or 0o644), as git does. Paths are relative
POSIX paths; absolute paths, `..`, `.`, empty components and NUL are rejected both when a
manifest is built and when one is read, so a manifest can never write outside its destination.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from mlc.store.digest import Digest, parse_digest
from mlc.store.errors import InvalidDigestError, ManifestError, UnsafePathError

FORMAT = "mlc.manifest"
VERSION = 1
MODE_EXECUTABLE = 0o755
MODE_REGULAR = 0o644


def normalise_mode(mode: int) -> int:
    """0o755 when any execute bit is set, else 0o644."""
    return MODE_EXECUTABLE if mode & 0o111 else MODE_REGULAR


def check_relative_path(path: str) -> str:
    """Returns `path` if it is a safe relative POSIX path, else raises `UnsafePathError`.

    >>> check_relative_path("data/train.csv")
    'data/train.csv'
    """
    if not path:
        raise UnsafePathError("an empty path is not allowed in a manifest")
    if "\0" in path:
        raise UnsafePathError(f"path `{path!r}` contains a NUL character")
    if path.startswith("/") or (len(path) > 1 and path[1] == ":"):
        raise UnsafePathError(f"absolute path `{path}` is not allowed; paths must be relative")
    if "\\" in path:
        raise UnsafePathError(f"path `{path}` contains a backslash; use `/` between components")
    for part in path.split("/"):
        if part == "..":
            raise UnsafePathError(f"path `{path}` contains `..` and would escape its directory")
        if part in ("", "."):
            raise UnsafePathError(f"path `{path}` has an empty or `.` component")
    return path


@dataclass(frozen=True, slots=True)
class ManifestEntry:
    """One file of a directory: its relative path, content digest, size and normalised mode."""

    path: str
    digest: Digest
    size: int
    mode: int = MODE_REGULAR


@dataclass(frozen=True, slots=True)
class Manifest:
    """The files of a directory, sorted by path; `encode()` gives its canonical bytes."""

    entries: tuple[ManifestEntry, ...]

    @classmethod
    def build(cls, entries: Iterable[ManifestEntry]) -> Manifest:
        """Validates and sorts entries; rejects unsafe, duplicate or conflicting paths."""
        ordered = sorted(entries, key=lambda e: e.path)
        _check_entries(ordered)
        return cls(tuple(ordered))

    @property
    def total_size(self) -> int:
        """The sum of the sizes of all files."""
        return sum(e.size for e in self.entries)

    def __iter__(self) -> Iterator[ManifestEntry]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def encode(self) -> bytes:
        """The canonical JSON bytes whose digest is the directory's version.

        Equal to `json.dumps(document, sort_keys=True, separators=(",", ":"),
        ensure_ascii=False)`, written out by hand because this runs once per snapshot over
        every file (digests are validated hex, so only paths need JSON escaping).
        """
        entries = ",".join(
            f'{{"digest":"{e.digest}","mode":{e.mode},"path":{_json_string(e.path)},'
            f'"size":{e.size}}}'
            for e in self.entries
        )
        text = f'{{"entries":[{entries}],"format":"{FORMAT}","version":{VERSION}}}'
        return text.encode("utf-8")


def _json_string(text: str) -> str:
    # JSON escapes only `"`, `\\` and control characters; printable text goes as it is.
    if text.isprintable() and '"' not in text and "\\" not in text:
        return f'"{text}"'
    return json.dumps(text, ensure_ascii=False)


def _check_entries(entries: list[ManifestEntry]) -> None:
    files: set[str] = set()
    for entry in entries:
        check_relative_path(entry.path)
        if entry.path in files:
            raise ManifestError(f"path `{entry.path}` appears twice in the manifest")
        files.add(entry.path)
        if entry.size < 0:
            raise ManifestError(f"entry `{entry.path}` has a negative size")
        if entry.mode not in (MODE_REGULAR, MODE_EXECUTABLE):
            raise ManifestError(f"entry `{entry.path}` has mode {oct(entry.mode)}; 0o644 or 0o755")
    directories: set[str] = set()
    for path in files:
        cut = path.rfind("/")
        while cut > 0:
            parent = path[:cut]
            if parent in files:
                raise ManifestError(f"`{parent}` is both a file and the directory of `{path}`")
            if parent in directories:
                break  # its ancestors were checked already
            directories.add(parent)
            cut = path.rfind("/", 0, cut)


def decode_manifest(data: bytes, digest: str = "") -> Manifest:
    """Parses and validates manifest bytes; raises `ManifestError` or `UnsafePathError`."""
    what = f"manifest {digest}" if digest else "manifest"
    try:
        document = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ManifestError(f"{what} is not valid JSON: {exc}") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ManifestError(f"{what} is not an mlc manifest (no `format: {FORMAT}` field)")
    if document.get("version") != VERSION:
        raise ManifestError(f"{what} has unsupported version {document.get('version')!r}")
    raw_entries = document.get("entries")
    if not isinstance(raw_entries, list):
        raise ManifestError(f"{what} has no list of entries")
    entries = []
    for raw in raw_entries:
        if not isinstance(raw, dict) or set(raw) != {"digest", "mode", "path", "size"}:
            raise ManifestError(f"{what} has a malformed entry: {raw!r}")
        path, entry_digest, size, mode = raw["path"], raw["digest"], raw["size"], raw["mode"]
        if not isinstance(path, str) or not isinstance(entry_digest, str):
            raise ManifestError(f"{what} has a malformed entry: {raw!r}")
        if not isinstance(size, int) or not isinstance(mode, int):
            raise ManifestError(f"{what} has a malformed entry: {raw!r}")
        try:
            parsed = parse_digest(entry_digest)
        except InvalidDigestError as exc:
            raise ManifestError(f"{what}: entry `{path}`: {exc}") from None
        entries.append(ManifestEntry(path, parsed, size, mode))
    manifest = Manifest.build(entries)
    if manifest.encode() != data:
        raise ManifestError(f"{what} is not in canonical form")
    return manifest
