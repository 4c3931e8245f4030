"""Finding a recorded step execution, and one of its outputs, by what a user types.

A step is recorded under its IR id (`step:train`, `step:train[2]`) and shown by its name
(`train`, `train[2]`); either form finds it. When nothing matches, the error names the
run's steps (or the step's outputs) as the spec writes them, with the closest one suggested.
"""

from __future__ import annotations

from mlc.checks.suggest import closest
from mlc.store.lineage import STEP_ID_PREFIX, Lineage, LineageError, StepExecution, step_name

LISTED = 10
"""At most this many names are listed in an error."""


def find_step(lineage: Lineage, run_id: str, typed: str) -> StepExecution:
    """The execution of the step `typed` (a name or an id) in a run; `LineageError` if the
    run recorded none."""
    name = step_name(typed)
    for step_id in dict.fromkeys((typed, STEP_ID_PREFIX + name, name)):
        try:
            return lineage.get_step(run_id, step_id)
        except LineageError:
            continue
    recorded = [step.name for step in lineage.steps_of(run_id)]
    raise LineageError(
        f"run `{run_id}` has no step `{name}`{_suggestion(name, recorded)}"
        f" (steps: {_listed(recorded, f'mlc runs show {run_id}')})"
    )


def step_with_output(lineage: Lineage, run_id: str, typed_step: str, output: str) -> StepExecution:
    """The execution of a step of a run (a unique prefix of its id will do) that has `output`."""
    step = find_step(lineage, lineage.find_run(run_id).run_id, typed_step)
    if output not in step.outputs:
        names = list(step.outputs)
        raise LineageError(
            f"step `{step.name}` of run `{step.run_id}` has no output `{output}`"
            f"{_suggestion(output, names)} (outputs: {_listed(names, f'mlc runs show {run_id}')})"
        )
    return step


def _suggestion(typed: str, names: list[str]) -> str:
    match = closest(typed, names)
    return f"; did you mean `{match}`?" if match else ""


def _listed(names: list[str], where: str, limit: int = LISTED) -> str:
    """The names quoted, at most `limit` of them (a `foreach` may have thousands)."""
    if not names:
        return "none"
    shown = ", ".join(f"`{name}`" for name in names[:limit])
    return shown if len(names) <= limit else f"{shown}, and {len(names) - limit} more: `{where}`"
