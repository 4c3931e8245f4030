"""The log of a step still running on Kubernetes: its pod's log, through the API server.

`mlc logs RUN STEP` (and `-f`) reads a step's log from the store once the step has ended; while
it runs, the log is its pod's. The store holds where each run's Jobs are (`record_cluster`,
written when the run's first Job is created), so the command needs no spec: it finds the
step's newest pod by its labels and streams its log.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from typing import Any

from mlc.backends.kubernetes import names
from mlc.backends.kubernetes.api import KubeApi, KubeError
from mlc.backends.kubernetes.manifests import CONTAINER
from mlc.backends.kubernetes.settings import KubeSettings
from mlc.store.base import Store
from mlc.store.errors import StoreError

RECORD_KIND = "kubernetes-runs"
WAIT_SECONDS = 0.5


def record_cluster(store: Store, run_id: str, settings: KubeSettings) -> None:
    """Notes in the store where a run's Jobs are (once per run)."""
    document = {
        "namespace": settings.namespace,
        "kubeconfig": settings.kubeconfig,
        "context": settings.context,
    }
    with contextlib.suppress(StoreError):  # already noted
        store.put_record(RECORD_KIND, run_id, document)


def follow_log(
    store: Store, run_id: str, invocation: str, *, ended: Callable[[], bool]
) -> Iterator[bytes]:
    """The log of the step's newest pod so far, then (until `ended()`) what it adds."""
    try:
        where = store.get_record(RECORD_KIND, run_id)
    except StoreError:
        return
    settings = KubeSettings(
        namespace=where["namespace"],
        kubeconfig=where.get("kubeconfig"),
        context=where.get("context"),
    )
    try:
        api = KubeApi(settings)
    except KubeError:
        return
    try:
        while True:
            pod = _newest_pod(api, run_id, invocation)
            if pod is not None:
                yield from _stream(api, pod, follow=not ended())
                return
            if ended():
                return
            time.sleep(WAIT_SECONDS)
    finally:
        api.close()


def _newest_pod(api: KubeApi, run_id: str, invocation: str) -> str | None:
    selector = f"{names.MANAGED_BY}={names.MANAGER},{names.RUN}={names.label_value(run_id)}"
    try:
        listed = api.list(api.pods_path(), selector)
    except KubeError:
        return None
    pods: list[dict[str, Any]] = [
        p
        for p in listed.get("items") or []
        if (p["metadata"].get("annotations") or {}).get(names.INVOCATION) == invocation
        and (p.get("status") or {}).get("phase") != "Pending"
    ]
    if not pods:
        return None
    newest = max(pods, key=lambda p: int(p["metadata"]["labels"].get(names.ATTEMPT, "0")))
    return str(newest["metadata"]["name"])


def _stream(api: KubeApi, pod: str, *, follow: bool) -> Iterator[bytes]:
    try:
        response = api.request(
            "GET",
            f"{api.pods_path()}/{pod}/log",
            query={"container": CONTAINER, "follow": "true" if follow else None},
            timeout=(10.0, None) if follow else 30.0,
            stream=True,
        )
    except KubeError:
        return
    try:
        for chunk in response.stream(amt=None, decode_content=False):
            if chunk:
                yield chunk
    finally:
        response.release_conn()
