"""Walking a file or directory to snapshot: relative POSIX paths with their stat results."""

from __future__ import annotations

import os
import stat as statmod
from typing import NamedTuple

from mlc.store.errors import StoreError, UnsupportedFileError


class TreeFile(NamedTuple):
    """A regular file found under the snapshot root (a tuple: one is made per file)."""

    relpath: str
    """POSIX path relative to the root (the file's own name when the root is a file)."""
    path: str
    """Absolute path on disk."""
    stat: os.stat_result


def walk_tree(root: str) -> list[TreeFile]:
    """Every regular file under `root`, sorted by relative path.

    Symbolic links to files are followed (their content is stored); links to directories,
    sockets, fifos and devices are refused with `UnsupportedFileError`, since a manifest holds
    only regular files. Empty directories are not recorded.
    """
    files: list[TreeFile] = []
    stack = [("", root)]
    while stack:
        prefix, directory = stack.pop()
        try:
            entries = list(os.scandir(directory))
        except OSError as exc:
            raise StoreError(f"cannot read directory {directory}: {exc.strerror}") from None
        for entry in entries:
            rel = f"{prefix}{entry.name}"
            if entry.is_dir(follow_symlinks=False):
                stack.append((f"{rel}/", entry.path))
                continue
            try:
                st = entry.stat(follow_symlinks=True)
            except FileNotFoundError:
                if not entry.is_symlink():
                    raise StoreError(f"{entry.path} disappeared while it was read") from None
                raise UnsupportedFileError(
                    f"{entry.path} is a broken symbolic link (to `{_target(entry.path)}`); "
                    "remove it, or restore what it points to"
                ) from None
            except OSError as exc:
                raise StoreError(f"cannot read {entry.path}: {exc.strerror}") from None
            if statmod.S_ISREG(st.st_mode):
                files.append(TreeFile(rel, entry.path, st))
            elif statmod.S_ISDIR(st.st_mode):
                raise UnsupportedFileError(
                    f"{entry.path} is a symbolic link to a directory; such links are not "
                    "followed (copy the directory, or snapshot its target)"
                )
            else:
                raise UnsupportedFileError(
                    f"{entry.path} is not a regular file or directory and cannot be stored"
                )
    files.sort()  # by relative path, the first field (unique, so no tie goes further)
    return files


def _target(link: str) -> str:
    try:
        return os.readlink(link)
    except OSError:
        return "?"
