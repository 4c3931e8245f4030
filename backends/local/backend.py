"""`LocalBackend`: runs an IR document on this machine, the embedded default.

The run itself is the coordinator's (`mlc.coordinator`); this backend contributes the local
executor (`mlc.backends.local.executor`), the machine's capacity and the kill grace period.
What it honours and what it cannot is declared in `mlc.backends.local.capabilities`.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping

from mlc.backends.local.capabilities import DESCRIPTION
from mlc.backends.local.executor import LocalExecutor
from mlc.backends.local.inventory import InventoryError, Machine, detect_machine
from mlc.backends.local.workspace import remove_abandoned_runs
from mlc.coordinator import RunSettings, apply_run
from mlc.coordinator import preflight as checks
from mlc.ir.model import IRDocument
from mlc.runtime.errors import PreflightError
from mlc.runtime.plan import Plan
from mlc.runtime.process import DEFAULT_KILL_GRACE_SECONDS
from mlc.runtime.report import RunObserver, RunReport
from mlc.store.base import Store

KILL_GRACE_ENV = "MLC_KILL_GRACE_SECONDS"


class LocalBackend:
    """Runs pipelines as processes on this machine (see the module docstring)."""

    description = DESCRIPTION

    def __init__(self, store: Store, *, environ: Mapping[str, str] | None = None) -> None:
        self.store = store
        self.environ = dict(os.environ if environ is None else environ)

    def machine(self, document: IRDocument) -> Machine:
        """The capacity steps are scheduled against."""
        try:
            return detect_machine(document.target, self.environ)
        except InventoryError as exc:
            raise PreflightError(str(exc)) from None

    def executor(self, document: IRDocument) -> LocalExecutor:
        """The executor a run of `document` uses."""
        return LocalExecutor(self.store, self.environ, lambda: self.machine(document))

    def plan(self, document: IRDocument, *, rerun: Collection[str] = ()) -> Plan:
        """What `apply` would do: per invocation, cached or why it will run."""
        return checks.plan(document, self.store, self.executor(document), rerun=rerun)

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
        settings = RunSettings(
            rerun=frozenset(rerun),
            keep_going=keep_going,
            kill_grace_seconds=self._kill_grace(document),
            target=document.target.name if document.target else "",
        )
        executor = self.executor(document)
        remove_abandoned_runs(getattr(self.store, "local_dir", ".mlc"))
        return apply_run(
            document,
            executor,
            store=self.store,
            environ=self.environ,
            settings=settings,
            observer=observer,
            run_id=run_id,
        )

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
