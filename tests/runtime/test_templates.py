"""Command templates: sandboxed Jinja2, StrictUndefined, shell quoting, and what steps see."""

from __future__ import annotations

import pytest
from mlc.runtime.context import RunInfo, StepPaths, template_context
from mlc.runtime.errors import TemplateFailure
from mlc.runtime.invocation import Invocation, invocations_of
from mlc.runtime.templates import referenced_names, render_argv, render_template

from tests.runtime.builders import sh, step


def context_for(**paths: object) -> dict[str, object]:
    train = step("train", sh("true"), foreach=("lr", [0.1, 0.01]))
    invocation = invocations_of(train)[1]
    return template_context(
        invocation,
        {"epochs": 3, "verbose": True, "layers": [64, 32]},
        StepPaths(
            inputs={"data": "/in/data", "parts": ["/in/p/0", "/in/p/1"]},
            outputs={"model": "/out/model"},
        ),
        RunInfo("run-1", "running"),
    )


def test_each_argv_element_is_rendered_on_its_own() -> None:
    argv = render_argv(
        [
            "python",
            "--data",
            "{{ inputs.data }}",
            "--lr",
            "{{ lr }}",
            "--epochs",
            "{{ params.epochs }}",
            "--out",
            "{{ outputs.model }}",
            "{{ step.name }}-{{ run.id }}",
        ],
        context_for(),
    )
    assert argv == [
        "python",
        "--data",
        "/in/data",
        "--lr",
        "0.01",
        "--epochs",
        "3",
        "--out",
        "/out/model",
        "train-run-1",
    ]


def test_values_render_as_on_a_command_line() -> None:
    assert render_template("{{ params.verbose }} {{ params.layers | tojson }}", context_for()) == (
        "true [64, 32]"
    )
    assert render_template("{{ inputs.parts | join(',') }}", context_for()) == "/in/p/0,/in/p/1"


def test_a_list_alone_in_an_argv_element_is_one_argument_per_element() -> None:
    argv = render_argv(["cat", "{{ inputs.parts }}", "--sizes", "{{params.layers}}"], context_for())
    assert argv == ["cat", "/in/p/0", "/in/p/1", "--sizes", "64", "32"]


def test_the_json_text_of_a_list_is_asked_for_with_tojson() -> None:
    argv = render_argv(["--parts", "{{ inputs.parts | tojson }}"], context_for())
    assert argv == ["--parts", '["/in/p/0", "/in/p/1"]']
    # Not HTML-escaped, unlike Jinja2's own `tojson`.
    assert render_template("{{ p | tojson }}", {"p": ["<a & 'b'>"]}) == "[\"<a & 'b'>\"]"


def test_a_list_in_a_shell_command_is_one_quoted_word_per_element() -> None:
    context = {"inputs": {"parts": ["/in/p 0", "/in/$(p)1"]}}
    rendered = render_template("cat {{ inputs.parts }} | wc -l", context, shell=True)
    assert rendered == "cat '/in/p 0' '/in/$(p)1' | wc -l"
    rendered = render_template("echo {{ inputs.parts | tojson }}", context, shell=True)
    assert rendered == """echo '["/in/p 0", "/in/$(p)1"]'"""


def test_a_list_inside_a_longer_string_must_say_which_text_it_wants() -> None:
    with pytest.raises(TemplateFailure, match=r"a list is substituted into a longer string"):
        render_argv(["--parts={{ inputs.parts }}"], context_for())
    assert render_argv(["--parts={{ inputs.parts | join(',') }}"], context_for()) == [
        "--parts=/in/p/0,/in/p/1"
    ]


def test_an_unknown_name_is_an_error_not_an_empty_string() -> None:
    with pytest.raises(TemplateFailure, match="has no attribute 'epoch'"):
        render_template("{{ params.epoch }}", context_for())
    with pytest.raises(TemplateFailure, match="'learning_rate' is undefined"):
        render_template("{{ learning_rate }}", context_for())


def test_shell_templates_quote_every_substituted_value() -> None:
    context = {"params": {"name": "x; rm -rf / #"}, "outputs": {"o": "/out dir/o"}}
    rendered = render_template("echo {{ params.name }} > {{ outputs.o }}", context, shell=True)
    assert rendered == "echo 'x; rm -rf / #' > '/out dir/o'"


def test_the_sandbox_refuses_to_reach_into_python() -> None:
    with pytest.raises(TemplateFailure, match=r"unsafe|access"):
        render_template("{{ params.__class__.__mro__ }}", context_for())
    with pytest.raises(TemplateFailure):
        render_template("{{ ''.__class__.__subclasses__() }}", {})


def test_names_that_are_dict_methods_are_still_inputs() -> None:
    invocation = Invocation(step("s", sh("true")))
    context = template_context(
        invocation, {}, StepPaths(inputs={"values": "/v", "items": "/i"}), RunInfo("r")
    )
    assert render_template("{{ inputs.values }} {{ inputs.items }}", context) == "/v /i"


def test_referenced_names_are_the_top_level_variables() -> None:
    assert referenced_names(["{{ inputs.a }}", "{% if run.status %}x{% endif %}"]) == {
        "inputs",
        "run",
    }
