"""A pipeline that succeeds: every step runs once and writes what it computes; applied again,
every step comes from the cache with the same keys and digests; `--rerun` runs one step again."""

from __future__ import annotations

from tests.conformance.harness import (
    Applied,
    Outcome,
    Project,
    Projects,
    Shape,
    assert_same_outcome,
    dir_digest,
    file_digest,
    in_background,
    outcome,
    provenance_shape,
)

# Fan-out from `source` to a `call` step and a `run` step, joined into a directory.
DAG = r"""
pipeline dag {
  step source {
    call = "steps:source"
    outputs { numbers: file }
  }
  step double {
    call = "steps:double"
    inputs { numbers = source.numbers }
    outputs { doubled: file }
  }
  step descending {
    run = ["sh", "-c", "tr ' ' '\\n' < \"$1\" | sort -rn > \"$2\"", "sh", "{{ inputs.numbers }}", "{{ outputs.sorted }}"]
    inputs { numbers = source.numbers }
    outputs { sorted: file }
  }
  step join {
    call = "steps:join"
    inputs { doubled = double.doubled, sorted = descending.sorted }
    outputs { joined: dir }
  }
  outputs { joined = join.joined }
}
"""

DAG_STEPS = r"""
def source(numbers):
    count("source")
    numbers.write_text("1 2 3\n")


def double(numbers, doubled):
    count("double")
    doubled.write_text(" ".join(str(2 * int(n)) for n in numbers.read_text().split()) + "\n")


def join(doubled, sorted, joined):
    count("join")
    (joined / "doubled.txt").write_bytes(doubled.read_bytes())
    (joined / "sorted.txt").write_bytes(sorted.read_bytes())
"""

NUMBERS, DOUBLED, SORTED = b"1 2 3\n", b"2 4 6\n", b"3\n2\n1\n"
JOINED = dir_digest({"doubled.txt": DOUBLED, "sorted.txt": SORTED})
EXPECTED_OUTPUTS = {
    "source": {"numbers": file_digest(NUMBERS)},
    "double": {"doubled": file_digest(DOUBLED)},
    "descending": {"sorted": file_digest(SORTED)},
    "join": {"joined": JOINED},
}
STEPS = list(EXPECTED_OUTPUTS)


def attempts(applied: Applied) -> dict[str, int]:
    return {name: step["attempts"] for name, step in applied.steps.items()}


def test_a_dag_runs_every_step_once_and_stores_what_the_steps_wrote(projects: Projects) -> None:
    reference = projects.reference(DAG, DAG_STEPS)
    expected = in_background(lambda: outcome(reference, reference.apply()))
    project = projects.under_test(DAG, DAG_STEPS)
    applied = project.apply()
    assert applied.code == 0, applied
    assert applied.status == "succeeded"
    assert applied.statuses == dict.fromkeys(STEPS, "ran")
    assert attempts(applied) == dict.fromkeys(STEPS, 1)
    assert applied.outputs == EXPECTED_OUTPUTS
    assert applied.report["outputs"] == {"joined": JOINED}
    assert all(project.executions(name) == 1 for name in ("source", "double", "join"))

    # Lineage: the run, each execution with the digests it read and wrote, and the provenance
    # of the exported output back through both branches to `source`.
    record = project.run_record(applied.run_id)
    assert (record["status"], record["pipeline"], record["target"]) == (
        "succeeded",
        "dag",
        "conformance",
    )
    executions = {e["step_id"]: e for e in record["steps"]}
    assert {sid: e["status"] for sid, e in executions.items()} == {
        f"step:{name}": "ran" for name in STEPS
    }
    assert executions["step:join"]["inputs"] == {
        "doubled": file_digest(DOUBLED),
        "sorted": file_digest(SORTED),
    }
    assert executions["step:join"]["outputs"] == {"joined": {"digest": JOINED, "kind": "dir"}}
    assert {sid: e["cache_key"] for sid, e in executions.items()} == {
        f"step:{name}": key for name, key in applied.cache_keys.items()
    }
    source: Shape = ("step:source", {})
    assert provenance_shape(project.lineage(f"{applied.run_id}:join.joined")) == (
        "step:join",
        {
            "doubled": ("step:double", {"numbers": source}),
            "sorted": ("step:descending", {"numbers": source}),
        },
    )

    assert_same_outcome(outcome(project, applied), expected.result())


def applied_twice(project: Project) -> tuple[Outcome, Outcome]:
    """The outcomes of applying twice, each read right after its run."""
    first = outcome(project, project.apply())
    return first, outcome(project, project.apply())


def test_applying_again_takes_every_step_from_the_cache(projects: Projects) -> None:
    reference = projects.reference(DAG, DAG_STEPS)
    expected = in_background(lambda: applied_twice(reference))
    project = projects.under_test(DAG, DAG_STEPS)
    first = project.apply()
    assert first.code == 0, first
    first_outcome = outcome(project, first)
    again = project.apply()
    assert again.code == 0, again
    assert again.status == "succeeded"
    assert again.statuses == dict.fromkeys(STEPS, "cached")
    assert attempts(again) == dict.fromkeys(STEPS, 0)
    assert again.outputs == first.outputs == EXPECTED_OUTPUTS
    assert again.cache_keys == first.cache_keys
    assert all(key is not None and key.startswith("sha256:") for key in again.cache_keys.values())
    assert all(project.executions(name) == 1 for name in ("source", "double", "join"))

    # Lineage records the cache hits with the keys and digests of the executions they reuse.
    def facts(run_id: str) -> dict[str, tuple[object, ...]]:
        steps = project.run_record(run_id)["steps"]
        return {s["step_id"]: (s["cache_key"], s["inputs"], s["outputs"]) for s in steps}

    assert facts(again.run_id) == facts(first.run_id)
    assert {s["status"] for s in project.run_record(again.run_id)["steps"]} == {"cached"}

    expected_first, expected_again = expected.result()
    assert_same_outcome(first_outcome, expected_first)
    assert_same_outcome(outcome(project, again), expected_again)


def test_rerun_runs_a_cached_step_again_and_what_needs_it_only_if_its_output_changed(
    projects: Projects,
) -> None:
    reference = projects.reference(DAG, DAG_STEPS)
    expected = in_background(lambda: rerun_double(reference))
    project = projects.under_test(DAG, DAG_STEPS)
    first = project.apply()
    assert first.code == 0, first
    rerun = project.apply("--rerun", "double")
    assert rerun.code == 0, rerun
    assert rerun.statuses == {
        "source": "cached",
        "double": "ran",
        "descending": "cached",
        "join": "cached",  # `double` wrote the same bytes again
    }
    assert rerun.steps["double"]["reasons"] == ["--rerun asked for it"]
    assert rerun.outputs == EXPECTED_OUTPUTS
    assert rerun.cache_keys == first.cache_keys
    assert (project.executions("double"), project.executions("join")) == (2, 1)

    assert_same_outcome(outcome(project, rerun), expected.result())


def rerun_double(project: Project) -> Outcome:
    """Applies, then applies again with `--rerun double`: the second run's outcome."""
    project.apply()
    return outcome(project, project.apply("--rerun", "double"))
