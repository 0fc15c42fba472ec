"""Status written back to group objects that have a status: PodGroups and our CRD.

Server-side apply bodies (pure functions): only the entry we own is sent, so
conditions written by others (e.g. ``DisruptionTarget``) are left alone.
"""

from __future__ import annotations

import hashlib

from scheduler.gang.model import CRD_WORKLOAD, PODGROUP, GroupKey, GroupObject
from scheduler.model.refs import StatusApply, now_rfc3339

SCHEDULED, UNSCHEDULABLE, SCHEDULER_ERROR = "Scheduled", "Unschedulable", "SchedulerError"


def condition_type(api_version: str) -> str:
    """``PodGroupScheduled`` in v1alpha2 (1.36); ``PodGroupInitiallyScheduled`` later."""
    return (
        "PodGroupScheduled" if api_version.endswith("/v1alpha2") else ("PodGroupInitiallyScheduled")
    )


def status_apply(
    obj: GroupObject, group: GroupKey, scheduled: bool, reason: str, message: str
) -> StatusApply | None:
    """The apply of the object's status, or None when its API has no status."""
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
        return StatusApply(path, {**head, "status": {"conditions": [condition]}})
    if obj.key.kind == CRD_WORKLOAD:
        name = group.group + (f"[{group.replica_key}]" if group.replica_key else "")
        entry = {
            "name": name,
            "podGroup": group.group,
            "replicaKey": group.replica_key,
            "scheduled": scheduled,
            "reason": reason,
            "message": message[:4096],
            "lastTransitionTime": now,
        }
        return StatusApply(path, {**head, "status": {"groups": [entry]}}, _entry_manager(name))
    return None


MAX_FIELD_MANAGER = 128
"""The API server refuses longer ``fieldManager`` names."""


def _entry_manager(entry: str) -> str:
    """The field manager of one ``status.groups`` entry (see ``StatusApply``)."""
    manager = f"workload-scheduler/{entry}"
    if len(manager) <= MAX_FIELD_MANAGER:
        return manager
    digest = hashlib.blake2b(entry.encode(), digest_size=8).hexdigest()
    return f"{manager[: MAX_FIELD_MANAGER - 17]}-{digest}"


def _plural(obj: GroupObject) -> str:
    return "podgroups" if obj.key.kind == PODGROUP else "workloads"
