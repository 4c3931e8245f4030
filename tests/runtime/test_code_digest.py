"""A step's code: its function's module and the project's modules that one imports."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from mlc.ir.model import Command
from mlc.runtime import code_digest, named_files
from mlc.runtime import local_imports as local_imports_module
from mlc.runtime.code_digest import CodeDigests, file_digest
from mlc.runtime.errors import PreflightError
from mlc.runtime.local_imports import ImportIndex, local_imports

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


def run_step(*argv: str, shell: bool = False) -> object:
    command = Command(kind="shell", argv=argv) if shell else Command(kind="exec", argv=argv)
    return step("train", command)


def test_the_scripts_and_configs_a_command_names_are_its_code(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "train.py": "import helpers\n",
            "helpers.py": "",
            "conf/base.yaml": "lr: 0.1\n",
            "data/rows.csv": "1,2\n",
        },
    )
    code = CodeDigests(str(tmp_path)).of(
        run_step(  # type: ignore[arg-type]
            "python",
            "train.py",
            "--config=conf/base.yaml",
            "--data",
            "data/rows.csv",  # data is an input, not code
            "--out",
            "{{ outputs.model }}",
        )
    )
    assert code == {
        "train.py": file_digest(tmp_path / "train.py"),
        "module helpers": file_digest(tmp_path / "helpers.py"),
        "conf/base.yaml": file_digest(tmp_path / "conf/base.yaml"),
    }


def test_a_shell_command_is_split_into_words_and_python_m_names_a_module(tmp_path: Path) -> None:
    write(tmp_path, {"tools/__init__.py": "", "tools/prep.py": "", "run.sh": "echo hi\n"})
    digests = CodeDigests(str(tmp_path))
    shell = digests.of(run_step("sh run.sh && python -m tools.prep > {{ outputs.x }}", shell=True))  # type: ignore[arg-type]
    assert list(shell) == ["run.sh", "module tools.prep", "module tools"]
    # An installed module run with -m (pip, pytest) is the environment, not the step's code.
    assert digests.of(run_step("python", "-m", "json.tool", "x.json")) == {}  # type: ignore[arg-type]


def test_files_outside_the_project_or_missing_are_not_code(tmp_path: Path) -> None:
    project = tmp_path / "project"
    write(tmp_path, {"elsewhere.py": "", "project/here.py": ""})
    code = CodeDigests(str(project)).of(
        run_step("python", "../elsewhere.py", "missing.py", "here.py")  # type: ignore[arg-type]
    )
    assert list(code) == ["here.py"]


def test_odd_words_are_not_files(tmp_path: Path) -> None:
    odd = run_step("python", "a\0b.py", "x" * 5000 + ".py", "*.py")
    assert CodeDigests(str(tmp_path)).of(odd) == {}  # type: ignore[arg-type]


def test_unreadable_code_is_a_preflight_error_and_an_unreadable_named_file_is_left_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path, {"secret.py": "", "tool/a.sh": ""})

    def denied(path: Path) -> str:
        raise PermissionError(13, "Permission denied", str(path))

    # As if the files could not be read (root reads any file, so chmod would not do).
    monkeypatch.setattr(code_digest, "file_digest", denied)
    monkeypatch.setattr(named_files.os, "access", lambda path, mode: False)
    digests = CodeDigests(str(tmp_path))
    assert digests.of(run_step("python", "secret.py")) == {}  # type: ignore[arg-type]
    declared = step("use", Command(kind="exec", argv=("true",)), code=["tool"])
    with pytest.raises(
        PreflightError, match=r"declares code `tool`, which cannot be read: .*a\.sh"
    ):
        digests.of(declared)  # type: ignore[arg-type]
    with pytest.raises(PreflightError, match=r"cannot read .*secret\.py: Permission denied"):
        digests.of(step("use", Command(kind="exec", argv=("true",)), code=["secret.py"]))  # type: ignore[arg-type]


def test_an_unchanged_file_is_not_parsed_again_by_the_next_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project, index = tmp_path / "project", tmp_path / "store" / "imports.json"
    write(project, {"steps.py": "import helpers\n", "helpers.py": "import units\n", "units.py": ""})
    parsed: list[str] = []
    parse = local_imports_module._parse

    def counting(source: Path) -> object:
        parsed.append(source.name)
        return parse(source)

    monkeypatch.setattr(local_imports_module, "_parse", counting)

    def code() -> dict[str, str]:
        digests = CodeDigests(str(project), ImportIndex(index))
        found = digests.of(call_step("steps:train"))  # type: ignore[arg-type]
        digests.save()
        return found

    first = code()
    assert sorted(parsed) == ["helpers.py", "steps.py", "units.py"]
    parsed.clear()
    assert code() == first and parsed == []  # a later command: nothing parsed
    (project / "helpers.py").write_text("import units\nimport extra\n")
    (project / "extra.py").write_text("")
    assert list(code()) == ["module steps", "module extra", "module helpers", "module units"]
    assert sorted(parsed) == ["extra.py", "helpers.py"]


@pytest.mark.parametrize("damage", ["{not json", '{"%s": [[1, 2], "garbage"]}', "[]"])
def test_a_damaged_import_index_is_read_past(tmp_path: Path, damage: str) -> None:
    project, index = tmp_path / "project", tmp_path / "imports.json"
    write(project, {"steps.py": "import helpers\n", "helpers.py": ""})
    expected = CodeDigests(str(project)).of(call_step("steps:train"))  # type: ignore[arg-type]
    index.write_text(damage.replace("%s", str(project / "steps.py")))
    digests = CodeDigests(str(project), ImportIndex(index))
    assert digests.of(call_step("steps:train")) == expected  # type: ignore[arg-type]
    digests.save()
    assert json.loads(index.read_text())  # rewritten whole
