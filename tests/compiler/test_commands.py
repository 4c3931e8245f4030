"""How `run` templates become argv: split before substitution, so values never become syntax."""

from __future__ import annotations

import pytest
from mlc.checks.templates import split_command


@pytest.mark.parametrize(
    ("command", "argv"),
    [
        ("python -m train", ["python", "-m", "train"]),
        ("train --data {{ inputs.data }}", ["train", "--data", "{{ inputs.data }}"]),
        ("x {{ params.items | join(' ') }} y", ["x", "{{ params.items | join(' ') }}", "y"]),
        ('echo "two words" {{ a }}', ["echo", "two words", "{{ a }}"]),
        ("--out={{ outputs.model }}/m.pkl", ["--out={{ outputs.model }}/m.pkl"]),
        ("  spaced   out  ", ["spaced", "out"]),
        ("", []),
    ],
)
def test_commands_split_on_whitespace_outside_quotes_and_templates(
    command: str, argv: list[str]
) -> None:
    assert split_command(command) == argv
