"""`when` conditions and metrics outputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mlc.runtime.conditions import evaluate, explain
from mlc.runtime.errors import ConditionFailure, StepFailure
from mlc.runtime.metrics import check_metrics, load_metrics

from tests.runtime.builders import artifact, metric, op

METRICS = {("evaluate", "m", "accuracy"): 0.91, ("evaluate", "m", "name"): "rf"}


def lookup(ref: object) -> object:
    key = (ref.step.removeprefix("step:"), ref.output, ref.key)  # type: ignore[attr-defined]
    if key not in METRICS:
        raise ConditionFailure("unavailable")
    return METRICS[key]


ACCURACY = metric("evaluate", "m", "accuracy")


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        (op(">=", ACCURACY, 0.9), True),
        (op("<", ACCURACY, 0.9), False),
        (op("and", op(">", ACCURACY, 0.5), op("!=", metric("evaluate", "m", "name"), "svm")), True),
        (op("or", op(">", ACCURACY, 0.95), op("not", op(">", ACCURACY, 0.95))), True),
        (op(">=", op("-", 1, ACCURACY), 0.1), False),
        (op("in", metric("evaluate", "m", "name"), ["rf", "gb"]), True),
    ],
)
def test_conditions_evaluate_on_metrics(condition: object, expected: bool) -> None:
    assert evaluate(condition, lookup) is expected  # type: ignore[arg-type]


def test_a_type_error_names_the_values() -> None:
    with pytest.raises(ConditionFailure, match=r"cannot apply `>=` to str 'rf' and float 0.9"):
        evaluate(op(">=", metric("evaluate", "m", "name"), 0.9), lookup)
    with pytest.raises(ConditionFailure, match="`and` needs booleans"):
        evaluate(op("and", ACCURACY, True), lookup)


def test_explain_shows_the_values_read() -> None:
    assert explain(op(">=", ACCURACY, 0.95), lookup) == "evaluate.m.accuracy (0.91) >= 0.95"


def test_metrics_are_checked_against_their_declared_types(tmp_path: Path) -> None:
    declared = artifact("metrics", {"accuracy": "float", "n": "int", "ok": "bool"})
    check_metrics("m", declared, {"accuracy": 1, "n": 3, "ok": True, "extra": "fine"})
    with pytest.raises(StepFailure) as failure:
        check_metrics("m", declared, {"accuracy": "0.9", "n": 2.5})
    assert str(failure.value) == (
        "metrics output `m`: key `accuracy` should be float, got str '0.9'; "
        "key `n` should be int, got float 2.5; key `ok` (bool) is missing"
    )
    with pytest.raises(StepFailure, match="should be int, got bool"):
        check_metrics("m", artifact("metrics", {"n": "int"}), {"n": True})


def test_a_metrics_file_must_hold_a_json_object(tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    path.write_text(json.dumps([1, 2]))
    with pytest.raises(StepFailure, match="must be a JSON object, got a list"):
        load_metrics(str(path), "m")
    path.write_text("{not json")
    with pytest.raises(StepFailure, match="is not valid JSON"):
        load_metrics(str(path), "m")
