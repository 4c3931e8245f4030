"""Lineage: which run and step produced each output, from which inputs, code and machine.

Use `open_lineage(store)` to get a `Lineage`; it records runs (`start_run`, `finish_run`),
step executions (`record_step`) and datasets (`record_dataset`), and answers `list_runs`,
`find_run`, `steps_of`, `producers_of`, `output_of`, `provenance` (of a digest) and
`step_provenance` (of a run's step output). See `docs/store.md`.
"""

from mlc.store.lineage.context import (
    CodeVersion,
    code_version,
    current_host,
    current_user,
    new_run_id,
)
from mlc.store.lineage.db import LineageDB, LineageError
from mlc.store.lineage.model import (
    STEP_ID_PREFIX,
    Dataset,
    Output,
    ProvenanceNode,
    Run,
    RunStatus,
    StepExecution,
    StepStatus,
    step_name,
)
from mlc.store.lineage.provenance import provenance, render_tree, step_provenance
from mlc.store.lineage.recorder import Lineage, open_lineage
from mlc.store.lineage.sync import import_records

__all__ = [
    "STEP_ID_PREFIX",
    "CodeVersion",
    "Dataset",
    "Lineage",
    "LineageDB",
    "LineageError",
    "Output",
    "ProvenanceNode",
    "Run",
    "RunStatus",
    "StepExecution",
    "StepStatus",
    "code_version",
    "current_host",
    "current_user",
    "import_records",
    "new_run_id",
    "open_lineage",
    "provenance",
    "render_tree",
    "step_name",
    "step_provenance",
]
