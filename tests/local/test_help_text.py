"""`mlc COMMAND --help` explains everything it lists: every option and positional has a
description, an option shared by several commands is described the same way in each, and
what a command writes is said where it writes it."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from mlc.cli.main import COMMANDS, UsageParser, _load, main

REPO = Path(__file__).resolve().parents[2]


def parsers() -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """Every command's parser, and those of its own actions (`mlc data add`)."""
    for name in COMMANDS:
        parser = UsageParser(prog=f"mlc {name}")
        _load(name).configure(parser)
        yield f"mlc {name}", parser
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub, subparser in action.choices.items():
                    yield f"mlc {name} {sub}", subparser


def arguments() -> Iterator[tuple[str, argparse.Action]]:
    for prog, parser in parsers():
        for action in parser._actions:
            if not isinstance(action, argparse._HelpAction | argparse._SubParsersAction):
                yield prog, action


def test_every_option_and_positional_is_described() -> None:
    undescribed = [
        f"{prog} {action.option_strings or action.dest}"
        for prog, action in arguments()
        if not action.help
    ]
    assert undescribed == []


@pytest.mark.parametrize("option", ["--store", "--target"])
def test_a_shared_option_has_one_wording(option: str) -> None:
    wordings = {a.help for _, a in arguments() if option in a.option_strings}
    assert len(wordings) == 1, wordings


def test_compile_emits_the_schema_without_a_spec(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compile", "--emit", "schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["title"] == "IRDocument" or "$defs" in schema


def test_compile_help_names_what_a_directory_output_holds(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        main(["compile", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "DIR/pipeline.ir.json" in text and "RBAC and Job YAML" in text


def test_graph_says_which_file_it_wrote(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    output = tmp_path / "q.mmd"
    spec = str(REPO / "examples" / "quickstart" / "pipeline.mlspec")
    assert main(["graph", spec, "--format", "mermaid", "-o", str(output)]) == 0
    assert capsys.readouterr().err == f"wrote {output}\n"
    assert output.read_text().startswith("flowchart LR")
