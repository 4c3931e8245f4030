"""What a step's command sees of its environment, the same on every backend: its `env` values
rendered like its command (params, output paths, the `foreach` variable, `run`), and
`MLC_STEP`."""

from __future__ import annotations

from tests.conformance.harness import (
    Projects,
    assert_same_outcome,
    file_digest,
    in_background,
    outcome,
)

ENVIRONMENT = r"""
pipeline environment {
  params { who: str = "world" }
  step greet foreach letter in ["a", "b"] {
    run = ["sh", "-c", "printf '%s %s %s\n' \"$GREETING\" \"$MLC_STEP\" \"$LETTER\" > \"$OUT\""]
    env {
      GREETING = "hello {{ params.who }}"
      LETTER = "{{ letter }}"
      OUT = "{{ outputs.said }}"
    }
    outputs { said: file }
  }
  step gather {
    call = "steps:gather"
    inputs { said: list[file] = greet.said }
    outputs { all: file }
  }
  outputs { all = gather.all }
}
"""

ENVIRONMENT_STEPS = r"""
def gather(said, all):
    all.write_text("".join(path.read_text() for path in said))
"""


def test_env_values_are_rendered_like_the_command(projects: Projects) -> None:
    reference = projects.reference(ENVIRONMENT, ENVIRONMENT_STEPS)
    expected = in_background(lambda: outcome(reference, reference.apply()))
    project = projects.under_test(ENVIRONMENT, ENVIRONMENT_STEPS)
    applied = project.apply()
    assert applied.code == 0, applied
    assert applied.outputs["greet[0]"] == {"said": file_digest(b"hello world greet[0] a\n")}
    assert applied.outputs["greet[1]"] == {"said": file_digest(b"hello world greet[1] b\n")}
    both = b"hello world greet[0] a\nhello world greet[1] b\n"
    assert applied.outputs["gather"] == {"all": file_digest(both)}
    assert_same_outcome(outcome(project, applied), expected.result())
