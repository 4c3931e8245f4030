"""A hand-written chain of Kubernetes Jobs, for `bench/bench_k8s.py`: the peer of `mlc apply`.

    python bench/k8s_peer.py NAMESPACE LINKS RUN_FOR TERMINATION_MESSAGE

What a careful engineer writes by hand with the official `kubernetes` client (KUBECONFIG):
one watch of the namespace's pods (from the resource version of a first list, so nothing is
missed), and LINKS Jobs `c00`, `c01`, … created in order, each as soon as the watch shows the
previous Job's pod terminal (`Succeeded` or `Failed`), not the Job's `Complete` condition,
which lags about a second. Every Job is the same as an mlc step's in what the cluster sees:
`backoffLimit: 0`, `restartPolicy: Never`, the same image, CPU request and pod annotations
(kwok ends the pod as they say, after `RUN_FOR`, with `TERMINATION_MESSAGE`), labelled
`app.kubernetes.io/component: cNN` as mlc labels a step's Job and pod. It does not read the
termination message, store anything or record lineage.

Prints one line, `k8s_peer: {json}`: `start` and `end` (wall clock, `time.time()`, around
the chain, after connecting), `connect_s` (the client and the first list), `cpu_s` (this
process during the chain), `created` (Jobs created) and `ended` (pods seen terminal).
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from typing import Any

IMAGE = "registry.invalid/mlc/step:1"
CPU_REQUEST = "1"
COMPONENT = "app.kubernetes.io/component"
JOB_NAME = "batch.kubernetes.io/job-name"


def job(name: str, run_for: str, message: str) -> dict[str, Any]:
    labels = {"app.kubernetes.io/managed-by": "k8s-peer", COMPONENT: name}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": f"peer-{name}", "labels": labels},
        "spec": {
            "backoffLimit": 0,
            "ttlSecondsAfterFinished": 86400,
            "template": {
                "metadata": {
                    "labels": labels,
                    "annotations": {
                        "mlc.test/run-for": run_for,
                        "mlc.test/termination-message": message,
                    },
                },
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [
                        {
                            "name": "main",
                            "image": IMAGE,
                            "command": ["true", name],
                            "resources": {"requests": {"cpu": CPU_REQUEST}},
                        }
                    ],
                },
            },
        },
    }


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    namespace, links, run_for, message = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    began = time.time()
    from kubernetes import client, config, watch

    api = config.new_client_from_config(config_file=os.environ["KUBECONFIG"])
    batch, core = client.BatchV1Api(api), client.CoreV1Api(api)
    selector = "app.kubernetes.io/managed-by=k8s-peer"
    version = core.list_namespaced_pod(namespace, label_selector=selector).metadata.resource_version
    names = [f"c{index:02d}" for index in range(links)]
    start, cpu_before = time.time(), cpu()
    batch.create_namespaced_job(namespace, job(names[0], run_for, message))
    created, ended = 1, 0
    stream = watch.Watch()
    for event in stream.stream(
        core.list_namespaced_pod,
        namespace,
        label_selector=selector,
        resource_version=version,
        timeout_seconds=600,
    ):
        pod = event["object"]
        if pod.status.phase not in ("Succeeded", "Failed"):
            continue
        if pod.metadata.labels.get(JOB_NAME) != f"peer-{names[created - 1]}":
            continue  # an earlier link's pod, changed again
        ended += 1
        if created == links:
            break
        batch.create_namespaced_job(namespace, job(names[created], run_for, message))
        created += 1
    stream.stop()
    end = time.time()
    figures = {
        "start": start,
        "end": end,
        "connect_s": start - began,
        "cpu_s": cpu() - cpu_before,
        "created": created,
        "ended": ended,
    }
    print("k8s_peer: " + json.dumps(figures), flush=True)


if __name__ == "__main__":
    main()
