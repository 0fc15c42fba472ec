"""Status written back to group objects that have a status: PodGroups and our CRD.

Server-side apply bodies (pure functions): only the entry we own is sent, so
conditions written by others (e.g. ``DisruptionTarget``) are left alone.
"""

from __future__ import annotations

from typing import Any

from scheduler.gang.model import CRD_WORKLOAD, PODGROUP, GroupKey, GroupObject
from scheduler.model.refs import now_rfc3339

SCHEDULED, UNSCHEDULABLE, SCHEDULER_ERROR = "Scheduled", "Unschedulable", "SchedulerError"


def condition_type(api_version: str) -> str:
    """``PodGroupScheduled`` in v1alpha2 (1.36); ``PodGroupInitiallyScheduled`` later."""
    return (
        "PodGroupScheduled" if api_version.endswith("/v1alpha2") else ("PodGroupInitiallyScheduled")
    )


def status_apply(
    obj: GroupObject, group: GroupKey, scheduled: bool, reason: str, message: str
) -> tuple[str, dict[str, Any]] | None:
    """(path, body) for the object's status, or None when its API has no status."""
    ref = obj.ref
    path = f"{obj.resource}/namespaces/{ref.namespace}/{_plural(obj)}/{ref.name}/status"
    now = now_rfc3339()
    head = {"apiVersion": obj.api_version, "kind": ref.kind, "metadata": {"name": ref.name}}
    if obj.key.kind == PODGROUP:
        condition = {
            "type": condition_type(obj.api_version),
            "status": "True" if scheduled else "False",
            "reason": reason,
            "message": message[:32768],
            "lastTransitionTime": now,
        }
        return path, {**head, "status": {"conditions": [condition]}}
    if obj.key.kind == CRD_WORKLOAD:
        entry = {
            "name": group.group + (f"[{group.replica_key}]" if group.replica_key else ""),
            "podGroup": group.group,
            "replicaKey": group.replica_key,
            "scheduled": scheduled,
            "reason": reason,
            "message": message[:4096],
            "lastTransitionTime": now,
        }
        return path, {**head, "status": {"groups": [entry]}}
    return None


def _plural(obj: GroupObject) -> str:
    return "podgroups" if obj.key.kind == PODGROUP else "workloads"
