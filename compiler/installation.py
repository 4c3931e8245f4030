"""How this copy of mlc was installed, so that a message naming a missing extra gives the
command that installs it here: from a checkout (`pip install -e`), or from the package index."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path


def checkout() -> Path | None:
    """The source checkout this mlc runs from (an editable install), or None.

    A checkout holds the `mlc` package as `compiler/` beside `pyproject.toml`; an installed
    wheel puts it in site-packages as `mlc/`.
    """
    package = Path(__file__).resolve().parent
    root = package.parent
    if package.name == "compiler" and (root / "pyproject.toml").is_file():
        return root
    return None


def pip_install(extra: str) -> str:
    """The command that adds `mlc[extra]` to this Python environment."""
    root = checkout()
    if root is not None:
        return f"{sys.executable} -m pip install -e {shlex.quote(f'{root}[{extra}]')}"
    return f"{sys.executable} -m pip install {shlex.quote(f'mlc[{extra}]')}"
