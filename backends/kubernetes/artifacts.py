"""What `mlc compile SPEC --target NAME --output DIR` writes for a Kubernetes target: YAML a
platform team reviews, diffs and checks against its admission policies.

```
DIR/pipeline.ir.json    the IR document
DIR/rbac.yaml           what `mlc apply` needs in the namespace: a ServiceAccount to run it as
                        (in CI, in the cluster), a Role with exactly the verbs it uses, a binding
DIR/jobs/STEP.yaml      one Job per step, as `mlc apply` creates it for an attempt, with
                        placeholders for what only a run knows (`${RUN_ID}`, `${CACHE_KEY}`,
                        `${ATTEMPT}`, the run's ConfigMap uid)
```
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from mlc.backends.kubernetes.executor import pod_store_address
from mlc.backends.kubernetes.manifests import JobIdentity, PodEnvironment, job_manifest
from mlc.backends.kubernetes.message import ATTEMPT, STORE
from mlc.backends.kubernetes.names import ATTEMPT as ATTEMPT_LABEL
from mlc.backends.kubernetes.names import RUN, dns_slug
from mlc.backends.kubernetes.settings import KubeSettings
from mlc.ir.model import IRDocument
from mlc.ir.serialize import to_json
from mlc.runtime.process import DEFAULT_KILL_GRACE_SECONDS

ROLE = "mlc-coordinator"
RULES: list[dict[str, Any]] = [
    {
        "apiGroups": ["batch"],
        "resources": ["jobs"],
        "verbs": ["create", "get", "list", "watch", "delete"],
    },
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["list", "watch", "deletecollection"]},
    {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]},
    {"apiGroups": [""], "resources": ["events"], "verbs": ["list", "watch"]},
    {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["create", "get"]},
]
"""Every call `mlc apply` makes (`api.py`): create/adopt Jobs and the run's ConfigMap, watch
Jobs, pods and events, delete a cancelled attempt's Job and pods, read a running pod's log."""


def write_artifacts(document: IRDocument, output: Path) -> list[Path]:
    """Writes the IR, the RBAC and one Job per step into `output`."""
    import yaml

    try:
        settings = KubeSettings.of(document.target, document.base_dir)
    except ValueError as exc:
        raise ValueError(str(exc)) from None
    output.mkdir(parents=True, exist_ok=True)
    written = []
    ir_path = output / "pipeline.ir.json"
    ir_path.write_text(to_json(document), encoding="utf-8")
    written.append(ir_path)
    rbac = output / "rbac.yaml"
    rbac.write_text(yaml.safe_dump_all(rbac_manifests(settings), sort_keys=False), "utf-8")
    written.append(rbac)
    jobs = output / "jobs"
    jobs.mkdir(exist_ok=True)
    store = _store_placeholder(document)
    for step in document.pipeline.steps:
        identity = JobIdentity(
            run_id="${RUN_ID}",
            pipeline=document.pipeline.name,
            invocation=step.name,
            cache_key="${CACHE_KEY}",
            number=1,
            owner={"name": "mlc-run-${RUN_ID}", "uid": "${RUN_CONFIGMAP_UID}"},
        )
        manifest = job_manifest(
            step,
            identity,
            settings,
            PodEnvironment({STORE: store, ATTEMPT: "${ATTEMPT}"}),
            kill_grace_seconds=DEFAULT_KILL_GRACE_SECONDS,
        )
        manifest["metadata"]["name"] = f"mlc-{dns_slug(step.name, 30)}-${{JOB_DIGEST}}"
        for labels in (
            manifest["metadata"]["labels"],
            manifest["spec"]["template"]["metadata"]["labels"],
        ):
            labels.update({RUN: "${RUN_ID}", ATTEMPT_LABEL: "${ATTEMPT_NUMBER}"})
        path = jobs / f"{re.sub(r'[^A-Za-z0-9_.-]', '_', step.name)}.yaml"
        header = (
            f"# Job of step `{step.name}` of pipeline `{document.pipeline.name}`, as "
            "`mlc apply` creates it for each attempt;\n# ${…} are filled per run and attempt.\n"
        )
        path.write_text(header + yaml.safe_dump(manifest, sort_keys=False), encoding="utf-8")
        written.append(path)
    return written


def rbac_manifests(settings: KubeSettings) -> list[dict[str, Any]]:
    """A ServiceAccount to run `mlc apply` as, its Role and the binding, in the namespace."""
    namespace = settings.namespace
    labels = {"app.kubernetes.io/managed-by": "mlc", **settings.labels}
    account = {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": ROLE, "namespace": namespace, "labels": labels},
    }
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": ROLE, "namespace": namespace, "labels": labels},
        "rules": RULES,
    }
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": ROLE, "namespace": namespace, "labels": labels},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": ROLE},
        "subjects": [{"kind": "ServiceAccount", "name": ROLE, "namespace": namespace}],
    }
    return [account, role, binding]


def _store_placeholder(document: IRDocument) -> str:
    target = document.target
    if target is None or not target.store or "://" not in target.store:
        return "${STORE}"
    from mlc.store.uri import open_store

    try:
        store = open_store(target.store, create=False)
    except Exception:
        return json.dumps({"uri": target.store, "storage_options": {}})
    return json.dumps(pod_store_address(store), sort_keys=True)
