"""A step's code: its function's module and the project's modules that one imports."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from mlc.ir.model import Command
from mlc.runtime.code_digest import CodeDigests, file_digest
from mlc.runtime.errors import PreflightError
from mlc.runtime.local_imports import local_imports

from tests.runtime.builders import step


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def imports_of(root: Path, module: str, file: str) -> list[str]:
    return list(local_imports(module, root / file, root))


def test_direct_and_transitive_imports_of_project_modules_are_found(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "steps.py": "import json\nimport helpers\nfrom numpy import array\n",
            "helpers.py": "def load():\n    import features.scaling\n",
            "features/__init__.py": "",
            "features/scaling.py": "from . import units\nfrom .units import METRES\n",
            "features/units.py": "METRES = 1\n",
            "unused.py": "",
        },
    )
    assert imports_of(tmp_path, "steps", "steps.py") == [
        "features",
        "features.scaling",
        "features.units",
        "helpers",
    ]


def test_from_imports_count_submodules_and_relative_imports_resolve_in_their_package(
    tmp_path: Path,
) -> None:
    write(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/train.py": "from pkg import model, CONSTANT\nfrom ..outside import x\n",
            "pkg/model.py": "from .layers.dense import Dense\n",
            "pkg/layers/__init__.py": "",
            "pkg/layers/dense.py": "",
            "outside.py": "",
        },
    )
    # `CONSTANT` is no module; `..outside` reaches above the top-level package (Python
    # refuses it too), so it is not followed.
    assert imports_of(tmp_path, "pkg.train", "pkg/train.py") == [
        "pkg",
        "pkg.layers",
        "pkg.layers.dense",
        "pkg.model",
    ]


def test_a_module_that_does_not_parse_counts_only_itself(tmp_path: Path) -> None:
    write(tmp_path, {"steps.py": "import helpers\n", "helpers.py": "def broken(:\n"})
    assert imports_of(tmp_path, "steps", "steps.py") == ["helpers"]


def call_step(function: str) -> object:
    return step("train", Command(kind="call", function=function))


def test_a_call_steps_code_is_its_module_and_the_project_modules_it_imports(
    tmp_path: Path,
) -> None:
    write(tmp_path, {"steps.py": "import helpers\n", "helpers.py": "X = 1\n"})
    code = CodeDigests(str(tmp_path)).of(call_step("steps:train"))  # type: ignore[arg-type]
    assert code == {
        "module steps": file_digest(tmp_path / "steps.py"),
        "module helpers": file_digest(tmp_path / "helpers.py"),
    }


def test_installed_packages_are_the_environment_not_followed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    installed = tmp_path / "site-packages"
    write(installed, {"vendor_steps.py": "import vendor_helpers\n", "vendor_helpers.py": ""})
    monkeypatch.setattr(sys, "path", [*sys.path, str(installed)])
    project = tmp_path / "project"
    project.mkdir()
    code = CodeDigests(str(project)).of(call_step("vendor_steps:train"))  # type: ignore[arg-type]
    assert list(code) == ["module vendor_steps"]


def test_a_missing_module_is_a_preflight_error(tmp_path: Path) -> None:
    with pytest.raises(PreflightError, match="no module `nowhere` is found"):
        CodeDigests(str(tmp_path)).of(call_step("nowhere:train"))  # type: ignore[arg-type]
