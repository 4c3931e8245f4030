"""A clean mlc environment for tests that run the command line in this process."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def isolate(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    *,
    store: bool = True,
    ir_cache: bool = False,
    chdir: bool = False,
) -> None:
    """Drops every `MLC_*` variable of the caller's environment and declares no local GPUs;
    `store`: the default store is `tmp_path/store`; `ir_cache`: the IR cache lives in
    `tmp_path/ir-cache` (else it is off); `chdir`: the working directory is `tmp_path`."""
    for name in list(os.environ):
        if name.startswith("MLC_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("MLC_LOCAL_GPUS", "")
    if store:
        monkeypatch.setenv("MLC_STORE", str(tmp_path / "store"))
    if ir_cache:
        monkeypatch.setenv("MLC_IR_CACHE_DIR", str(tmp_path / "ir-cache"))
    else:
        monkeypatch.setenv("MLC_IR_CACHE", "0")
    if chdir:
        monkeypatch.chdir(tmp_path)
