"""What the IR says about a spec: canonical units, bound params, resolved references."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from mlc.compile import CompileResult
from mlc.ir.graph import build_graph, steps_in_order
from mlc.ir.model import Const
from mlc.ir.serialize import load, to_json

from tests.compiler.conftest import codes

PIPELINE = """
pipeline p {
  params {
    workers: int(1..16) = 2
    rates: list[float] = [0.1, 0.01]
    gate: float(0.0..1.0) = 0.5
  }
  dataset raw { uri = "data/raw.csv", version = "sha256:%s" }
  step prep {
    run = "prep --in {{ inputs.raw }} --out {{ outputs.table }} --workers {{ params.workers }}"
    inputs { raw = raw }
    outputs { table: dataset }
    resources { cpu = 500m, memory = 1.5Gi, shm = 64Mi }
    timeout = 90m
    retries = 3
    backoff = 30s
    cache = 7d
  }
  step fit foreach rate in params.rates {
    parallelism = 2
    call = "fit:main"
    args { workers = params.workers }
    inputs { table: dataset = prep.table }
    outputs { model: model, score: metrics { loss: float } }
    resources { cpu = params.workers * 2, memory = 2Gi * params.workers, gpu = 1 of "a100-80gb/1g.10gb" }
  }
  step pick {
    call = "fit:pick"
    inputs { models: list[model] = fit.model, scores = fit.score }
    outputs { best: model, report: metrics { loss: float } }
  }
  step publish {
    when = pick.report.loss <= params.gate and true
    call = "fit:publish"
    inputs { best = pick.best }
    after = [prep]
  }
  outputs { best = pick.best }
}
""" % ("0" * 64)


def test_units_are_canonical_and_params_bound(compile_text: Callable[..., CompileResult]) -> None:
    result = compile_text(PIPELINE)
    assert codes(result) == []
    assert result.document is not None
    steps = {s.name: s for s in result.document.pipeline.steps}
    prep = steps["prep"]
    assert prep.resources.cpu_millis == 500
    assert prep.resources.memory_bytes == int(1.5 * 2**30)
    assert prep.resources.shm_bytes == 64 * 2**20
    assert prep.timeout_seconds == 5400
    assert prep.retry.retries == 3 and prep.retry.backoff_seconds == 30
    assert prep.cache.expire_seconds == 7 * 86400
    assert prep.command.kind == "exec"
    assert prep.command.argv[0] == "prep" and "{{ inputs.raw }}" in prep.command.argv
    assert prep.params_used == {"workers": 2}

    fit = steps["fit"]
    assert fit.resources.cpu_millis == 4000
    assert fit.resources.memory_bytes == 4 * 2**30
    assert fit.resources.gpu is not None
    assert (fit.resources.gpu.count, fit.resources.gpu.accelerator, fit.resources.gpu.mig) == (
        1,
        "a100-80gb",
        "1g.10gb",
    )
    assert fit.foreach is not None and fit.foreach.items == (0.1, 0.01)
    assert fit.foreach.parallelism == 2
    assert fit.command.args == {"workers": 2}


def test_params_given_on_the_command_line_replace_defaults(
    compile_text: Callable[..., CompileResult],
) -> None:
    result = compile_text(PIPELINE, params={"workers": "4"})
    assert result.document is not None
    fit = next(s for s in result.document.pipeline.steps if s.name == "fit")
    assert fit.resources.cpu_millis == 8000
    assert fit.params_used == {"workers": 4}


SWEEP = """
pipeline sweep {
  params {
    rates: list[float] = [0.1, 0.01]
    sizes: list[int] = [1, 2]
  }
  step fit foreach rate in params.rates {
    run = "fit --rate {{ rate }}"
  }
  step fit_all foreach size in params.sizes {
    run = "fit --size {{ size }} --all-sizes '{{ params.sizes }}'"
  }
}
"""


def test_a_foreach_list_is_not_a_param_of_each_item(
    compile_text: Callable[..., CompileResult],
) -> None:
    # Each item's cache key has its own value (`item`): adding a rate to the sweep must not
    # re-run the others. A step that also reads the whole list does depend on all of it.
    result = compile_text(SWEEP)
    assert codes(result) == []  # neither param is reported unused (W0501)
    assert result.document is not None
    steps = {s.name: s for s in result.document.pipeline.steps}
    assert steps["fit"].params_used == {}
    assert steps["fit"].foreach is not None and steps["fit"].foreach.items == (0.1, 0.01)
    assert steps["fit_all"].params_used == {"sizes": [1, 2]}


def test_a_param_value_outside_its_range_is_an_error(
    compile_text: Callable[..., CompileResult],
) -> None:
    assert codes(compile_text(PIPELINE, params={"workers": "99"})) == ["E0202"]
    assert codes(compile_text(PIPELINE, params={"workers": "many"})) == ["E0211"]
    assert codes(compile_text(PIPELINE, params={"nope": "1"})) == ["E0111"]


def test_fan_in_and_gates_are_bound_to_typed_ids(
    compile_text: Callable[..., CompileResult],
) -> None:
    result = compile_text(PIPELINE)
    assert result.document is not None
    steps = {s.name: s for s in result.document.pipeline.steps}
    pick = steps["pick"]
    assert [(p.name, p.fan_in, p.source.node, p.source.output) for p in pick.inputs] == [
        ("models", True, "step:fit", "model"),
        ("scores", True, "step:fit", "score"),
    ]
    when = steps["publish"].when
    assert when is not None
    dumped = when.model_dump()
    assert dumped["op"] == "and"
    assert dumped["args"][0]["args"][0] == {
        "kind": "metric",
        "step": "step:pick",
        "output": "report",
        "key": "loss",
    }
    assert steps["prep"].inputs[0].source.node == "dataset:raw"


def test_the_graph_orders_steps_by_every_kind_of_dependency(
    compile_text: Callable[..., CompileResult],
) -> None:
    result = compile_text(PIPELINE)
    assert result.document is not None
    graph = build_graph(result.document)
    assert graph.edges["step:pick", "step:publish"]["kind"] == "data"
    assert graph.edges["step:prep", "step:publish"]["kind"] == "order"
    assert graph.edges["dataset:raw", "step:prep"]["inputs"] == ("raw",)
    assert [s.name for s in steps_in_order(result.document)] == ["prep", "fit", "pick", "publish"]


def test_the_ir_is_byte_identical_across_compilations_and_round_trips(
    compile_text: Callable[..., CompileResult],
) -> None:
    first = compile_text(PIPELINE)
    second = compile_text(PIPELINE)
    assert first.document is not None and second.document is not None
    text = to_json(first.document)
    assert text == to_json(second.document)
    assert to_json(load(text)) == text


def test_conditions_on_params_alone_are_evaluated_at_compile_time_and_kept(
    compile_text: Callable[..., CompileResult],
) -> None:
    spec = """
pipeline p {
  params { big: bool = false }
  step a { run = "true", when = params.big or 1 < 2 }
  step b { run = "true", when = params.big }
}
"""
    result = compile_text(spec)
    assert result.document is not None
    a, b = result.document.pipeline.steps
    assert a.when == Const(value=True, text="params.big or 1 < 2")
    # A false one stays too: every backend must skip the step, not run it.
    assert b.when == Const(value=False, text="params.big")


def test_the_scheduler_order_agrees_with_the_networkx_graph() -> None:
    # `steps_in_order` and `dependencies` skip building the graph; they must read it alike.
    import networkx as nx
    from mlc.ir.graph import dependencies

    from tests.runtime.builders import document, inp, metric, op, out, sh, step

    steps = [
        step("late", sh("true"), after=["b"]),
        step("a", sh("true"), inputs=[inp("d", "dataset:raw")], outputs=[out("m", "metrics")]),
        step("b", sh("true"), inputs=[inp("x", "a.m"), inp("y", "a.m")]),
        step("c", sh("true"), when=op(">", metric("a", "m", "acc"), 0.5)),
        step("cleanup", sh("true"), is_finally=True),
        step("free", sh("true")),
    ]
    doc = document(Path("/p"), steps)
    graph = build_graph(doc)
    position = {s.id: index for index, s in enumerate(steps)}
    expected = nx.lexicographical_topological_sort(graph, key=lambda n: position.get(n, -1))
    assert [s.id for s in steps_in_order(doc)] == [n for n in expected if n.startswith("step:")]
    needs = dependencies(doc)
    for s in steps:
        assert needs[s.id] == [p for p in graph.predecessors(s.id) if p.startswith("step:")]
    assert needs["step:b"] == ["step:a"]
    assert needs["step:cleanup"] == ["step:late", "step:a", "step:b", "step:c", "step:free"]
