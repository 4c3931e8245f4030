"""`CoordinatedBackend`: the `plan` and `apply` every runnable backend offers, on the coordinator.

A backend subclasses it and says which executor a document runs on (`executor`); the run is
the coordinator's, so every backend plans, checks and runs with the same semantics.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping

from mlc.coordinator import RunSettings, apply_run
from mlc.coordinator import preflight as checks
from mlc.coordinator.executor import Executor
from mlc.ir.model import IRDocument
from mlc.runtime.errors import PreflightError
from mlc.runtime.plan import Plan
from mlc.runtime.process import DEFAULT_KILL_GRACE_SECONDS
from mlc.runtime.report import RunObserver, RunReport
from mlc.store.base import Store

KILL_GRACE_ENV = "MLC_KILL_GRACE_SECONDS"


class CoordinatedBackend:
    """A backend whose runs the coordinator drives (see the module docstring)."""

    def __init__(self, store: Store, *, environ: Mapping[str, str] | None = None) -> None:
        self.store = store
        self.environ = dict(os.environ if environ is None else environ)

    def executor(self, document: IRDocument) -> Executor:
        """The executor a run of `document` uses (cheap: it connects when a step must run)."""
        raise NotImplementedError

    def before_run(self, document: IRDocument) -> None:
        """Housekeeping before a run starts (the local backend removes abandoned work)."""

    def plan(self, document: IRDocument, *, rerun: Collection[str] = ()) -> Plan:
        """What `apply` would do: per invocation, cached or why it will run."""
        return checks.plan(
            document, self.store, self.executor(document), rerun=rerun, environ=self.environ
        )

    def apply(
        self,
        document: IRDocument,
        *,
        rerun: Collection[str] = (),
        keep_going: bool = False,
        observer: RunObserver | None = None,
        run_id: str | None = None,
        detach: bool = False,
    ) -> RunReport:
        """Runs the pipeline; a `PreflightError` means nothing ran. `detach` (return once the
        run is submitted) needs a backend whose runs go on without this process."""
        if detach:
            name = document.target.name if document.target else "(default)"
            raise PreflightError(
                f"--detach needs a target whose run goes on without `mlc apply` (a Ray target "
                f"with a Jobs API address); target `{name}` runs here"
            )
        settings = RunSettings(
            rerun=frozenset(rerun),
            keep_going=keep_going,
            kill_grace_seconds=self.kill_grace(document),
            target=document.target.name if document.target else "",
        )
        executor = self.executor(document)
        self.before_run(document)
        return apply_run(
            document,
            executor,
            store=self.store,
            environ=self.environ,
            settings=settings,
            observer=observer,
            run_id=run_id,
        )

    def kill_grace(self, document: IRDocument) -> float:
        """Seconds a stopped step gets between SIGTERM and SIGKILL: `MLC_KILL_GRACE_SECONDS`,
        else the target's `kill_grace` setting, else 10."""
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
