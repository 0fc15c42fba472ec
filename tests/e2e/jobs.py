"""Jobs in e2e tests, with or without kube-controller-manager.

Where the control plane runs kube-controller-manager (its leader Lease exists), the Job
controller makes a Job's pods; where it does not, :func:`job_pods` makes them as the Job
controller would: owned by the Job (controller ownerReference), with its selector labels and
its template, and no gang fields - which is all the scheduler looks at.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from kubernetes.client.exceptions import ApiException

from tests.e2e.k8s import pod_manifest

Request = Callable[..., dict[str, Any]]


def controller_manager_runs(request: Request) -> bool:
    """Whether kube-controller-manager runs: its Job controller's ServiceAccount exists
    (made at start-up with ``--use-service-account-credentials``), or its leader Lease."""
    for path in (
        "/api/v1/namespaces/kube-system/serviceaccounts/job-controller",
        "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/kube-controller-manager",
    ):
        try:
            request("GET", path)
        except ApiException:
            continue
        return True
    return False


def create_job(
    request: Request,
    ns: str,
    name: str,
    count: int,
    annotations: dict[str, str] | None = None,
    *,
    scheduler: str,
    node_selector: dict[str, str],
    cpu: str = "1",
    scheduling: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """An Indexed Job of ``count`` pods at once (a generous backoffLimit: tests delete pods)."""
    pod = pod_manifest("x", cpu=cpu, scheduler=scheduler, node_selector=node_selector)
    pod["spec"]["restartPolicy"] = "Never"
    spec: dict[str, Any] = {
        "parallelism": count,
        "completions": count,
        "completionMode": "Indexed",
        "backoffLimit": 100,
        "template": {"metadata": {"labels": {"app": name}}, "spec": pod["spec"]},
    }
    if scheduling is not None:
        spec["scheduling"] = scheduling
    return request(
        "POST",
        f"/apis/batch/v1/namespaces/{ns}/jobs",
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": name, "annotations": annotations or {}},
            "spec": spec,
        },
    )


def job_pods(request: Request, job: dict[str, Any], indexes: range | list[int]) -> None:
    """The Job's pods: made by kube-controller-manager if it runs, else here."""
    if controller_manager_runs(request):
        return
    meta = job["metadata"]
    template = job["spec"]["template"]
    for i in indexes:
        request(
            "POST",
            f"/api/v1/namespaces/{meta['namespace']}/pods",
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {
                    "name": f"{meta['name']}-{i}-{uuid.uuid4().hex[:5]}",
                    "labels": {
                        **template["metadata"]["labels"],
                        "batch.kubernetes.io/controller-uid": meta["uid"],
                        "batch.kubernetes.io/job-name": meta["name"],
                        "batch.kubernetes.io/job-completion-index": str(i),
                    },
                    "ownerReferences": [
                        {
                            "apiVersion": "batch/v1",
                            "kind": "Job",
                            "name": meta["name"],
                            "uid": meta["uid"],
                            "controller": True,
                            "blockOwnerDeletion": True,
                        }
                    ],
                },
                "spec": template["spec"],
            },
        )
