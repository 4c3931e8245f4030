"""A list in a `run` command (a fan-in input's paths, a list param): one argument per element
in the list form, one shell-quoted word per element with `shell = true`, and its JSON text only
when asked for with `| tojson`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mlc.cli.main import main

from tests.local.environment import isolate

SPEC = """mlspec 1

pipeline lists {
  step part foreach word in ["one", "two words", "$(three)"] {
    run = ["sh", "-c", "printf '%s\\\\n' \\"$1\\" > \\"$2\\"", "sh", "{{ word }}", "{{ outputs.text }}"]
    outputs { text: file }
  }
  step listed {
    run = ["sh", "-c", "for f; do cat \\"$f\\"; done > \\"$0\\"", "{{ outputs.joined }}", "{{ inputs.parts }}"]
    inputs { parts: list[file] = part.text }
    outputs { joined: file }
  }
  step shelled {
    run = "cat {{ inputs.parts }} > {{ outputs.joined }}"
    shell = true
    inputs { parts: list[file] = part.text }
    outputs { joined: file }
  }
  step as_json {
    run = ["python3", "-c", "import json, sys; open(sys.argv[2], 'w').write(str(len(json.loads(sys.argv[1]))))", "{{ inputs.parts | tojson }}", "{{ outputs.count }}"]
    inputs { parts: list[file] = part.text }
    outputs { count: file }
  }
  outputs { listed = listed.joined, shelled = shelled.joined, count = as_json.count }
}
"""


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    isolate(monkeypatch, tmp_path)


def content(tmp_path: Path, digest: str, capsys: pytest.CaptureFixture[str]) -> str:
    target = tmp_path / f"got-{len(list(tmp_path.glob('got-*')))}"
    assert main(["data", "get", digest, str(target)]) == 0
    capsys.readouterr()
    return target.read_text()


def test_a_fan_in_list_is_one_argument_or_one_quoted_word_per_element(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = tmp_path / "pipeline.mlspec"
    spec.write_text(SPEC)
    code = main(["apply", str(spec), "--format", "json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    outputs = json.loads(captured.out)["outputs"]
    in_item_order = "one\ntwo words\n$(three)\n"
    assert content(tmp_path, outputs["listed"], capsys) == in_item_order
    assert content(tmp_path, outputs["shelled"], capsys) == in_item_order
    assert content(tmp_path, outputs["count"], capsys) == "3"
