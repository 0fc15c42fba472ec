"""Small helpers for end-to-end tests: manifests and waiting on the real API server."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

SCHEDULER = "workload-scheduler"


def pod_manifest(
    name: str,
    *,
    cpu: str | None = "100m",
    memory: str | None = "64Mi",
    gpu: str | None = None,
    scheduler: str = SCHEDULER,
    node_selector: dict[str, str] | None = None,
    tolerations: list[dict[str, Any]] | None = None,
    affinity: dict[str, Any] | None = None,
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    priority: int | None = None,
    extra_spec: dict[str, Any] | None = None,
) -> dict[str, Any]:
    requests: dict[str, str] = {}
    if cpu:
        requests["cpu"] = cpu
    if memory:
        requests["memory"] = memory
    limits: dict[str, str] = {}
    if gpu:
        requests["nvidia.com/gpu"] = gpu
        limits["nvidia.com/gpu"] = gpu
    spec: dict[str, Any] = {
        "schedulerName": scheduler,
        "terminationGracePeriodSeconds": 0,
        "containers": [
            {
                "name": "main",
                "image": "registry.k8s.io/pause:3.10",
                "resources": {"requests": requests, "limits": limits},
            }
        ],
    }
    if node_selector:
        spec["nodeSelector"] = node_selector
    if tolerations:
        spec["tolerations"] = tolerations
    if affinity:
        spec["affinity"] = affinity
    if priority is not None:
        spec["priority"] = priority
    spec.update(extra_spec or {})
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels or {}, "annotations": annotations or {}},
        "spec": spec,
    }


def job_manifest(
    name: str, template: dict[str, Any], *, completions: int, indexed: bool = True
) -> dict[str, Any]:
    """A Job running ``completions`` pods of ``template`` at once (``metadata`` and ``spec``
    of a pod; ``restartPolicy`` defaults to Never).  kube-controller-manager creates its
    pods; kwok finishes them as their annotations say (``devcluster.kwok.COMPLETE_AFTER``)."""
    pod_template = {"metadata": dict(template.get("metadata", {})), "spec": dict(template["spec"])}
    pod_template["metadata"].pop("name", None)
    pod_template["spec"].setdefault("restartPolicy", "Never")
    spec: dict[str, Any] = {
        "completions": completions,
        "parallelism": completions,
        "backoffLimit": 0,
        "template": pod_template,
    }
    if indexed:
        spec["completionMode"] = "Indexed"
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name}, "spec": spec}


def wait_until(
    check: Callable[[], T], timeout: float = 30.0, interval: float = 0.25, what: str = "condition"
) -> T:
    """Poll ``check`` until it returns something truthy; that value is returned."""
    deadline = time.monotonic() + timeout
    last: T = check()
    while not last:
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)
        last = check()
    return last


def pods_by_name(core: Any, namespace: str) -> dict[str, Any]:
    return {p.metadata.name: p for p in core.list_namespaced_pod(namespace).items}


def placements(core: Any, namespace: str) -> dict[str, str | None]:
    return {name: p.spec.node_name for name, p in pods_by_name(core, namespace).items()}


def events_for(core: Any, namespace: str, name: str) -> list[Any]:
    return [
        e for e in core.list_namespaced_event(namespace).items if e.involved_object.name == name
    ]


def failed_scheduling_message(core: Any, namespace: str, name: str) -> str | None:
    msgs = [e.message for e in events_for(core, namespace, name) if e.reason == "FailedScheduling"]
    return msgs[-1] if msgs else None
