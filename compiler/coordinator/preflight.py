"""What is checked and computed before a run, the same for every backend.

Nothing runs until all of it holds: every step's code can be digested, the executor can run
every step (`Executor.check`), every secret is in the environment (unless the executor holds
secrets itself: `holds_secrets`, as Kubernetes does), every dataset resolves,
and every resource request can ever be granted (`Capacity.never_fits`). Every problem is
reported at once, in one `PreflightError`. `mlc plan` runs the same checks (a backend's plan
passes its environment), so a plan is refused for every reason a run would be.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path

from mlc.coordinator.executor import Executor
from mlc.ir.model import IRDocument
from mlc.runtime.code_digest import CodeDigests
from mlc.runtime.datasets import ResolvedDatasets, resolve_datasets
from mlc.runtime.errors import PreflightError
from mlc.runtime.lockfile import lock_entries, lock_path
from mlc.runtime.plan import Plan, make_plan
from mlc.runtime.secrets import check_secrets, secret_env
from mlc.store.base import Store
from mlc.store.lineage import open_lineage


@dataclass(frozen=True, slots=True)
class Preflight:
    """What was checked and computed before the run: per-step code digests and secrets,
    resolved datasets."""

    code: Mapping[str, dict[str, str]]
    secrets: Mapping[str, dict[str, str]]
    datasets: ResolvedDatasets


def absolute(document: IRDocument) -> IRDocument:
    """The document with `base_dir` made absolute (steps run with it as working directory)."""
    base = str(Path(document.base_dir).resolve())
    return document if base == document.base_dir else document.model_copy(update={"base_dir": base})


def check_steps(
    document: IRDocument, store: Store, executor: Executor
) -> dict[str, dict[str, str]]:
    """What the executor cannot run, and the code digest of every step."""
    problems: list[str] = []
    code = _steps(document, store, executor, problems)
    if problems:
        raise PreflightError("\n".join(problems))
    return code


def _steps(
    document: IRDocument, store: Store, executor: Executor, problems: list[str]
) -> dict[str, dict[str, str]]:
    problems += executor.check(document)
    code: dict[str, dict[str, str]] = {}
    digests = CodeDigests.for_store(document.base_dir, store)
    for step in document.pipeline.steps:
        try:
            code[step.id] = digests.of(step)
        except PreflightError as exc:
            problems.append(str(exc))
    digests.save()
    return code


def datasets_of(document: IRDocument, store: Store) -> ResolvedDatasets:
    """The document's datasets resolved (through `mlc.lock` for moving references, or the lock
    `mlc plan` previews: `mlc.runtime.lockfile.previewed_lock`)."""
    if not document.pipeline.datasets:
        return ResolvedDatasets()
    return resolve_datasets(document, store, lock_entries(lock_path(document)))


def fit_problems(document: IRDocument, executor: Executor) -> list[str]:
    """Each step whose request can never be granted, and why."""
    problems = []
    for step in document.pipeline.steps:
        reason = executor.capacity.never_fits(step.resources)
        if reason is not None:
            problems.append(f"step `{step.name}` can never run here: {reason}")
    return problems


def check_fit(document: IRDocument, executor: Executor) -> None:
    """Every step's request can be granted some day, or a `PreflightError` names each that
    cannot."""
    problems = fit_problems(document, executor)
    if problems:
        raise PreflightError("\n".join(problems))


def preflight_run(
    document: IRDocument, store: Store, executor: Executor, environ: Mapping[str, str]
) -> Preflight:
    """Everything a run checks before it starts (see the module docstring). Every problem
    found is reported, in one `PreflightError`."""
    problems: list[str] = []
    code = _steps(document, store, executor, problems)
    steps = document.pipeline.steps
    secrets: dict[str, dict[str, str]] = {step.id: {} for step in steps}
    if not getattr(executor, "holds_secrets", False):  # else the cluster's secret store does
        try:
            check_secrets(steps, environ)
            secrets = {step.id: secret_env(step, environ) for step in steps}
        except PreflightError as exc:
            problems.append(str(exc))
    datasets = ResolvedDatasets()
    try:
        datasets = datasets_of(document, store)
    except PreflightError as exc:
        problems.append(str(exc))
    problems += fit_problems(document, executor)
    if problems:
        raise PreflightError("\n".join(problems))
    return Preflight(code=code, secrets=secrets, datasets=datasets)


def plan(
    document: IRDocument,
    store: Store,
    executor: Executor,
    *,
    rerun: Collection[str] = (),
    environ: Mapping[str, str] | None = None,
) -> Plan:
    """What a run would do: per invocation, cached or why it will run. The run's whole
    preflight comes first (with `environ`, the secrets too), so a plan is refused for every
    reason a run would be."""
    document = absolute(document)
    if environ is None:
        check_steps(document, store, executor)
        datasets = datasets_of(document, store)
    else:
        datasets = preflight_run(document, store, executor, environ).datasets
    lineage = open_lineage(store)
    try:
        made = make_plan(
            document,
            store,
            lineage,
            {name: r.digest for name, r in datasets.by_name.items()},
            rerun=rerun,
        )
    finally:
        lineage.close()
    made.warnings[:0] = datasets.warnings
    return made
