"""`mlc plan --target NAME`: the API server's verdict on every step's Job, before anything runs.

Each distinct pod template is sent once as a server-side dry run (`dryRun=All`): schema and
admission errors (an invalid name, a request above its limit, a webhook's refusal) come back
at the step's line in the spec, and the API server's warnings (a PodSecurity level the pods
would violate) as plan warnings. Nothing is created.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from mlc.backends.kubernetes.api import KubeApi, KubeError
from mlc.backends.kubernetes.manifests import JobIdentity, PodEnvironment, job_manifest, spec_hash
from mlc.backends.kubernetes.message import ATTEMPT, STORE
from mlc.backends.kubernetes.settings import KubeSettings
from mlc.ir.model import IRDocument, Step

DRY_RUN_ID = "dry-run"


@dataclass
class Verdicts:
    """What the API server said: refusals (errors) and warnings, one line each."""

    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def dry_run(api: KubeApi, document: IRDocument, settings: KubeSettings, store: str) -> Verdicts:
    """Dry-runs one Job per distinct pod template of the document's steps."""
    verdicts = Verdicts()
    seen: set[str] = set()
    for step in document.pipeline.steps:
        manifest = job_manifest(
            step,
            JobIdentity(DRY_RUN_ID, document.pipeline.name, step.name, None, 1),
            settings,
            PodEnvironment({STORE: store, ATTEMPT: "-"}),
            kill_grace_seconds=10,
        )
        key = spec_hash(manifest["spec"]["template"]["spec"])
        if key in seen:
            continue
        seen.add(key)
        try:
            api.request("POST", api.jobs_path(), query={"dryRun": "All"}, body=manifest)
        except KubeError as exc:
            if exc.status == 0:
                raise
            verdicts.problems.append(f"{where(step)}: the cluster refuses its Job: {exc}")
        verdicts.warnings += [f"{where(step)}: {text}" for text in api.take_warnings()]
    return verdicts


def where(step: Step) -> str:
    source = step.source
    return f"{source.file}:{source.line}:{source.column}: step `{step.name}`"


def store_text(address: dict[str, object]) -> str:
    return json.dumps(address, sort_keys=True)
