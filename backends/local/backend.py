"""`LocalBackend`: runs an IR document on this machine, the embedded default.

What it honours and what it cannot is declared in `mlc.backends.local.capabilities`.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping
from pathlib import Path

from mlc.backends.local.capabilities import DESCRIPTION
from mlc.backends.local.engine import LocalRun, Preflight, RunSettings
from mlc.backends.local.inventory import InventoryError, Machine, detect_machine
from mlc.backends.local.resources import ResourceLedger
from mlc.backends.local.workspace import remove_abandoned_runs
from mlc.ir.model import IRDocument
from mlc.runtime.code_digest import CodeDigests
from mlc.runtime.datasets import ResolvedDatasets, resolve_datasets
from mlc.runtime.errors import PreflightError
from mlc.runtime.lockfile import lock_path, read_lock
from mlc.runtime.plan import Plan, make_plan
from mlc.runtime.process import DEFAULT_KILL_GRACE_SECONDS
from mlc.runtime.report import RunObserver, RunReport, SilentObserver
from mlc.runtime.secrets import check_secrets, secret_env
from mlc.store.base import Store
from mlc.store.lineage import new_run_id, open_lineage

KILL_GRACE_ENV = "MLC_KILL_GRACE_SECONDS"


class LocalBackend:
    """Runs pipelines as processes on this machine (see the module docstring)."""

    description = DESCRIPTION

    def __init__(self, store: Store, *, environ: Mapping[str, str] | None = None) -> None:
        self.store = store
        self.environ = dict(os.environ if environ is None else environ)

    # ------------------------------------------------------------------ public

    def machine(self, document: IRDocument) -> Machine:
        """The capacity steps are scheduled against."""
        try:
            return detect_machine(document.target, self.environ)
        except InventoryError as exc:
            raise PreflightError(str(exc)) from None

    def plan(self, document: IRDocument, *, rerun: Collection[str] = ()) -> Plan:
        """What `apply` would do: per invocation, cached or why it will run."""
        document = _absolute(document)
        self._check_steps(document)
        datasets = self._datasets(document)
        lineage = open_lineage(self.store)
        try:
            plan = make_plan(
                document,
                self.store,
                lineage,
                {name: r.digest for name, r in datasets.by_name.items()},
                rerun=rerun,
            )
        finally:
            lineage.close()
        plan.warnings[:0] = datasets.warnings
        return plan

    def apply(
        self,
        document: IRDocument,
        *,
        rerun: Collection[str] = (),
        keep_going: bool = False,
        observer: RunObserver | None = None,
        run_id: str | None = None,
    ) -> RunReport:
        """Runs the pipeline; a `PreflightError` means nothing ran."""
        document = _absolute(document)
        preflight = self._preflight(document)
        ledger = ResourceLedger(self.machine(document))
        self._check_fit(document, ledger)
        remove_abandoned_runs(getattr(self.store, "local_dir", ".mlc"))
        lineage = open_lineage(self.store)
        try:
            run = LocalRun(
                document,
                run_id=run_id or new_run_id(),
                store=self.store,
                lineage=lineage,
                ledger=ledger,
                preflight=preflight,
                environ=self.environ,
                settings=RunSettings(
                    rerun=frozenset(rerun),
                    keep_going=keep_going,
                    kill_grace_seconds=self._kill_grace(document),
                    target=document.target.name if document.target else "",
                ),
                observer=observer or SilentObserver(),
            )
            return run.execute()
        finally:
            lineage.close()

    # ------------------------------------------------------------------ preflight

    def _preflight(self, document: IRDocument) -> Preflight:
        code = self._check_steps(document)
        steps = document.pipeline.steps
        check_secrets(steps, self.environ)
        secrets: dict[str, dict[str, str]] = {
            step.id: secret_env(step, self.environ) for step in steps
        }
        return Preflight(code=code, secrets=secrets, datasets=self._datasets(document))

    def _check_steps(self, document: IRDocument) -> dict[str, dict[str, str]]:
        """Features this backend cannot honour, and the code digest of every step."""
        ignored = set(document.target.ignore_unsupported) if document.target else set()
        problems: list[str] = []
        code: dict[str, dict[str, str]] = {}
        digests = CodeDigests.for_store(document.base_dir, self.store)
        for step in document.pipeline.steps:
            if step.image and "image" not in ignored:
                problems.append(
                    f"step `{step.name}` sets `image`, but local runs use the current Python "
                    'environment; add `ignore_unsupported = ["image"]` to the target to run it '
                    "anyway"
                )
            try:
                code[step.id] = digests.of(step)
            except PreflightError as exc:
                problems.append(str(exc))
        digests.save()
        if problems:
            raise PreflightError("\n".join(problems))
        return code

    def _check_fit(self, document: IRDocument, ledger: ResourceLedger) -> None:
        problems = []
        for step in document.pipeline.steps:
            reason = ledger.never_fits(step.resources)
            if reason is not None:
                problems.append(f"step `{step.name}` can never run here: {reason}")
        if problems:
            raise PreflightError("\n".join(problems))

    def _datasets(self, document: IRDocument) -> ResolvedDatasets:
        if not document.pipeline.datasets:
            return ResolvedDatasets()
        return resolve_datasets(document, self.store, read_lock(lock_path(document)))

    def _kill_grace(self, document: IRDocument) -> float:
        value = self.environ.get(KILL_GRACE_ENV)
        if value is None and document.target is not None:
            value = document.target.settings.get("kill_grace")
        if value is None:
            return DEFAULT_KILL_GRACE_SECONDS
        try:
            seconds: float = float(str(value))
            return max(0.0, seconds)
        except (TypeError, ValueError):
            raise PreflightError(f"kill grace `{value}` is not a number of seconds") from None


def _absolute(document: IRDocument) -> IRDocument:
    """The document with `base_dir` made absolute (steps run with it as working directory)."""
    base = str(Path(document.base_dir).resolve())
    return document if base == document.base_dir else document.model_copy(update={"base_dir": base})
