"""`LocalBackend`: runs an IR document on this machine, the embedded default.

The run itself is the coordinator's (`mlc.coordinator`); this backend contributes the local
executor (`mlc.backends.local.executor`) and the machine's capacity. What it honours and what
it cannot is declared in `mlc.backends.local.capabilities`.
"""

from __future__ import annotations

from mlc.backends.local.capabilities import DESCRIPTION
from mlc.backends.local.executor import LocalExecutor
from mlc.backends.local.inventory import InventoryError, Machine, detect_machine
from mlc.backends.local.workspace import remove_abandoned_runs
from mlc.coordinator.backend import CoordinatedBackend
from mlc.ir.model import IRDocument
from mlc.runtime.errors import PreflightError


class LocalBackend(CoordinatedBackend):
    """Runs pipelines as processes on this machine (see the module docstring)."""

    description = DESCRIPTION

    def machine(self, document: IRDocument) -> Machine:
        """The capacity steps are scheduled against."""
        try:
            return detect_machine(document.target, self.environ)
        except InventoryError as exc:
            raise PreflightError(str(exc)) from None

    def executor(self, document: IRDocument) -> LocalExecutor:
        """Worker processes on this machine, against its CPUs, memory and GPU slots."""
        return LocalExecutor(self.store, self.environ, lambda: self.machine(document))

    def before_run(self, document: IRDocument) -> None:
        """Removes what runs killed earlier left in the store's work directory."""
        remove_abandoned_runs(getattr(self.store, "local_dir", ".mlc"))
