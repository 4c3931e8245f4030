"""The project's files a `run` step's command names: part of the step's code, undeclared.

`run = "python train.py --config conf/base.yaml"` runs `train.py` and reads `conf/base.yaml`;
editing either changes what the step computes, so each is part of its cache key as if it were
listed in `code`. A word of the command counts when it has no template in it and names (as a
whole, or after the `=` of `--option=value`) a regular file inside the spec's directory whose
suffix marks source code or configuration (`SOURCE_SUFFIXES`); the script of `sh -c SCRIPT`
and a `shell = true` command are split into words first. `python -m pkg.tool` names the
module `pkg.tool` (when it is the project's, not an installed one). Data files are inputs
(datasets, upstream outputs), not code, and are not looked for; anything else a command
depends on goes in `code`.
"""

from __future__ import annotations

import itertools
import os
import re
import shlex
from pathlib import Path

from mlc.ir.model import Command

SOURCE_SUFFIXES = frozenset(
    {
        ".py",
        ".sh",
        ".bash",
        ".r",
        ".jl",
        ".js",
        ".mjs",
        ".ts",
        ".rb",
        ".pl",
        ".lua",
        ".sql",
        ".ipynb",
        ".yaml",
        ".yml",
        ".json",
        ".toml",
        ".cfg",
        ".ini",
        ".conf",
    }
)
_MODULE_RUNNERS = frozenset({"torchrun"})
"""Launchers that take `-m MODULE` as Python does."""
_SHELLS = frozenset({"sh", "bash", "dash", "zsh"})
_SEPARATORS = frozenset({"&&", "||", ";", "|", "&"})
_MODULE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


def command_words(command: Command) -> list[str]:
    """The words of a `run` command as its templates are written (none for a `call`); the
    script of `sh -c SCRIPT` is split into words too."""
    if command.kind == "exec":
        words = list(command.argv)
        if words and Path(words[0]).name in _SHELLS and "-c" in words[:-1]:
            words += _split(words[words.index("-c") + 1])
        return words
    if command.kind == "shell" and command.argv:
        return _split(command.argv[0])
    return []


def _split(script: str) -> list[str]:
    try:
        return shlex.split(script)
    except ValueError:  # unbalanced quotes: the shell will say so when it runs
        return script.split()


def named_files(words: list[str], base: Path) -> list[str]:
    """The words (or `--option=` values) that name source or configuration files inside the
    directory `base` (resolved: no symbolic link in it), as written, each once."""
    found: dict[str, None] = {}
    for word in words:
        if "{{" in word or "{%" in word:
            continue
        for candidate in (word, word.partition("=")[2]):
            if not candidate or Path(candidate).suffix.lower() not in SOURCE_SUFFIXES:
                continue
            try:
                path = (base / candidate).resolve()
                if base in path.parents and path.is_file() and os.access(path, os.R_OK):
                    found[candidate] = None
            except (OSError, ValueError, RuntimeError):  # too long, a NUL, a symlink loop
                continue
    return list(found)


def named_modules(words: list[str]) -> list[str]:
    """The modules a Python interpreter (or `torchrun`) in the command is told to run
    (`python -m NAME`, in any of the commands a shell line chains)."""
    modules: list[str] = []
    python = False
    for word, following in itertools.pairwise(words):
        if word in _SEPARATORS:
            python = False
        elif Path(word).name.startswith("python") or Path(word).name in _MODULE_RUNNERS:
            python = True
        elif python and word == "-m" and _MODULE_NAME.match(following):
            modules.append(following)
    return modules
