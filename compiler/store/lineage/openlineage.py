"""A provenance tree as OpenLineage run events, for Marquez or any OpenLineage consumer.

Each step execution on the tree becomes one `RunEvent` (OpenLineage 2-0-2): a `COMPLETE` event
(`FAIL` for a failed one) at the time it ended, for the job `<pipeline>.<step>` in the namespace
`mlc`, whose run id is a UUID derived from the mlc run id and the step (the same every export),
with the pipeline's run as its parent. Its inputs and outputs are datasets named in the store's
namespace (the store's URI): a step's output is `<pipeline>/<step>.<output>`, a declared dataset
`dataset/<name>`, each with its digest as the dataset version, so a consumer joins an output of
one event to the input of the next. What mlc knows beyond the standard facets (params, code
digests, git commit, image, host, backend, cache key) is the run facet `mlc_step`, whose schema
is `docs/openlineage/MlcStepRunFacet.json`; for a cache hit it names, as `cachedFrom`, the
execution of the earlier run that made the output, with the run id of that execution's own
event. Events come upstream first.
"""

from __future__ import annotations

import datetime as dt
import urllib.parse
import uuid
from typing import Any

from mlc.store.lineage.model import ProvenanceNode, StepExecution

SCHEMA = "https://openlineage.io/spec/2-0-2/OpenLineage.json"
RUN_EVENT = f"{SCHEMA}#/$defs/RunEvent"
PARENT_FACET = "https://openlineage.io/spec/facets/1-0-1/ParentRunFacet.json#/$defs/ParentRunFacet"
ENGINE_FACET = (
    "https://openlineage.io/spec/facets/1-1-1/ProcessingEngineRunFacet.json"
    "#/$defs/ProcessingEngineRunFacet"
)
ERROR_FACET = (
    "https://openlineage.io/spec/facets/1-0-1/ErrorMessageRunFacet.json#/$defs/ErrorMessageRunFacet"
)
JOB_TYPE_FACET = (
    "https://openlineage.io/spec/facets/2-0-3/JobTypeJobFacet.json#/$defs/JobTypeJobFacet"
)
VERSION_FACET = (
    "https://openlineage.io/spec/facets/1-0-1/DatasetVersionDatasetFacet.json"
    "#/$defs/DatasetVersionDatasetFacet"
)
DATASOURCE_FACET = (
    "https://openlineage.io/spec/facets/1-0-1/DatasourceDatasetFacet.json"
    "#/$defs/DatasourceDatasetFacet"
)
MLC_FACET = "https://mlc.dev/schemas/openlineage/MlcStepRunFacet-1-1-0.json"
NAMESPACE = "mlc"
_IDS = uuid.UUID("6f1b0a52-3c1e-4d5e-9a55-6d6c63000000")
"""The UUID namespace the run ids of exported events are derived in."""


def run_events(tree: ProvenanceNode, store_uri: str, mlc_version: str) -> list[dict[str, Any]]:
    """One run event per step execution of the tree, upstream first."""
    producer = f"https://mlc.dev/mlc/{mlc_version}"
    events: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()
    _collect(tree, store_uri, producer, mlc_version, events, seen)
    return events


def _collect(
    node: ProvenanceNode,
    store_uri: str,
    producer: str,
    version: str,
    events: list[dict[str, Any]],
    seen: set[tuple[str, str]],
) -> None:
    for _, child in node.inputs:
        _collect(child, store_uri, producer, version, events, seen)
    step = node.step
    if step is None or (step.run_id, step.step_id) in seen:
        return
    seen.add((step.run_id, step.step_id))
    events.append(_event(node, step, store_uri, producer, version))


def _event(
    node: ProvenanceNode, step: StepExecution, store_uri: str, producer: str, version: str
) -> dict[str, Any]:
    run = node.run
    pipeline = run.pipeline if run is not None else "pipeline"
    facets: dict[str, Any] = {
        "parent": {
            **_facet(producer, PARENT_FACET),
            "run": {"runId": str(uuid.uuid5(_IDS, step.run_id))},
            "job": {"namespace": NAMESPACE, "name": pipeline},
        },
        "processing_engine": {
            **_facet(producer, ENGINE_FACET),
            "version": version,
            "name": "mlc",
            "openlineageAdapterVersion": version,
        },
        "mlc_step": {
            **_facet(producer, MLC_FACET),
            "runId": step.run_id,
            "step": step.name,
            "status": step.status,
            "cacheKey": step.cache_key,
            "params": dict(sorted(step.params.items())),
            "code": dict(sorted(step.code.items())),
            "gitCommit": run.git_commit if run is not None else None,
            "gitDirty": run.git_dirty if run is not None else None,
            "image": step.image or None,
            "host": step.host or None,
            "backend": (run.backend if run is not None else "") or None,
            "target": (run.target if run is not None else "") or None,
        },
    }
    if step.status == "cached":
        maker = node.cached_from
        facets["mlc_step"]["cachedFrom"] = (
            None
            if maker is None
            else {
                "runId": maker.run_id,
                "step": maker.name,
                "openlineageRunId": _run_uuid(maker),
            }
        )
    if step.status == "failed" and step.error:
        facets["errorMessage"] = {
            **_facet(producer, ERROR_FACET),
            "message": step.error,
            "programmingLanguage": "shell",
        }
    return {
        "eventType": "FAIL" if step.status == "failed" else "COMPLETE",
        "eventTime": _time(step.ended_at or step.started_at or (run.started_at if run else 0)),
        "producer": producer,
        "schemaURL": RUN_EVENT,
        "run": {"runId": _run_uuid(step), "facets": facets},
        "job": {
            "namespace": NAMESPACE,
            "name": f"{pipeline}.{step.name}",
            "facets": {
                "jobType": {
                    **_facet(producer, JOB_TYPE_FACET),
                    "processingType": "BATCH",
                    "integration": "MLC",
                    "jobType": "STEP",
                }
            },
        },
        "inputs": [
            _dataset(child, name, pipeline, store_uri, producer) for name, child in node.inputs
        ],
        "outputs": [
            _dataset(node, node.output or "output", pipeline, store_uri, producer, made_by=step)
        ],
    }


def _run_uuid(step: StepExecution) -> str:
    """The OpenLineage run id of a step execution's event: the same in every export."""
    return str(uuid.uuid5(_IDS, f"{step.run_id}/{step.step_id}"))


def _dataset(
    node: ProvenanceNode,
    name: str,
    pipeline: str,
    store_uri: str,
    producer: str,
    made_by: StepExecution | None = None,
) -> dict[str, Any]:
    """A dataset of an event, named after what made it (a step's output, a declared dataset)."""
    facets: dict[str, Any] = {
        "version": {**_facet(producer, VERSION_FACET), "datasetVersion": node.digest}
    }
    step = made_by or node.step
    if step is not None:
        dataset_name = f"{pipeline}/{step.name}.{node.output or name}"
    elif node.datasets:
        declared = node.datasets[0]
        dataset_name = f"dataset/{declared.name}"
        if declared.uri:
            facets["dataSource"] = {
                **_facet(producer, DATASOURCE_FACET),
                "name": declared.name,
                "uri": _as_uri(declared.uri),
            }
    else:
        dataset_name = f"object/{node.digest}"
    return {"namespace": store_uri, "name": dataset_name, "facets": facets}


def _as_uri(location: str) -> str:
    """A declared location as a URI: `s3://…` as it is, a path as `file:` (relative to the
    spec, as declared).

    >>> _as_uri("data/iris 2.csv"), _as_uri("s3://b/k")
    ('file:data/iris%202.csv', 's3://b/k')
    """
    if "://" in location or location.startswith("file:"):
        return location
    return "file:" + urllib.parse.quote(location)


def _facet(producer: str, schema: str) -> dict[str, str]:
    return {"_producer": producer, "_schemaURL": schema}


def _time(seconds: float) -> str:
    moment = dt.datetime.fromtimestamp(seconds, dt.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
