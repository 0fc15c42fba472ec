"""The internal pod-group model every API source is normalised into.

A *group object* is what carries scheduling policy: a Workload (native
v1alpha1 or our CRD; one policy per ``podGroups[]`` entry) or a PodGroup
(Kubernetes 1.36+, one policy). A *gang* is the set of pods sharing a
``GroupKey``: the object, the group within it and (v1alpha1 and CRD only) the
replica key. Each gang is placed all or nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import NamedTuple

from scheduler.model.refs import ObjectRef

WORKLOAD = "Workload"
"""Native ``scheduling.k8s.io/v1alpha1`` Workload (Kubernetes 1.35)."""
PODGROUP = "PodGroup"
"""Standalone ``scheduling.k8s.io`` PodGroup (1.36 v1alpha2, 1.37 v1alpha3 / v1beta1)."""
CRD_WORKLOAD = "CRDWorkload"
"""Our own Workload CRD, for clusters that serve neither."""

MAX_POD_GROUPS = 8


class ObjectKey(NamedTuple):
    kind: str  # WORKLOAD | PODGROUP | CRD_WORKLOAD
    namespace: str
    name: str


class GroupKey(NamedTuple):
    obj: ObjectKey
    group: str
    """The podGroups[] entry (Workloads); "" for a PodGroup object."""
    replica_key: str = ""

    def __str__(self) -> str:
        name = f"{self.obj.namespace}/{self.obj.name}"
        if self.group:
            name += f"/{self.group}"
        if self.replica_key:
            name += f"[{self.replica_key}]"
        return name


@dataclass(frozen=True, slots=True)
class GroupPolicy:
    gang: bool
    min_count: int = 1
    topology_key: str | None = None
    """All members in one domain of this node label (a rack, a zone)."""
    timeout_seconds: float | None = None
    """Per-object override of the gang binding timeout (annotation)."""
    priority: int | None = None
    """The group's own priority (1.36+ PodGroup ``spec.priority``, our CRD's
    ``priority``); None: its ``priority_class_name``'s value, else the highest priority
    among its members."""
    priority_class_name: str = ""
    """A PriorityClass standing for the priority (1.36+ PodGroup ``priorityClassName``
    without ``priority``; our CRD's ``priorityClassName``), resolved by the scheduler."""
    single_pod_disruption: bool = False
    """``disruptionMode`` single (1.36 ``Pod``): preemption may evict members one by
    one. Otherwise a running gang is evicted whole or not at all."""


class WaitReason(Enum):
    """Why a group has no policy to schedule its members by (yet)."""

    API_NOT_SERVED = "api_not_served"
    """The pod names a kind of group object this cluster does not serve."""
    OBJECT_MISSING = "object_missing"
    """The group object has not appeared (yet)."""
    OBJECT_INVALID = "object_invalid"
    """The group object exists but cannot be used (e.g. minCount 0)."""
    NO_POLICY = "no_policy"
    """The object has no entry for the pod's group."""


@dataclass(frozen=True, slots=True)
class Waiting:
    """A group's members wait, ``because``; ``message`` tells their users why, e.g.
    ``waiting for Workload (scheduling.k8s.io/v1alpha1) ns/train to appear``."""

    because: WaitReason
    message: str


@dataclass(frozen=True, slots=True)
class GroupObject:
    """One Workload or PodGroup as the scheduler understands it."""

    key: ObjectKey
    ref: ObjectRef
    """For Events and status writes."""
    policies: dict[str, GroupPolicy]
    """group name -> policy ("" for a PodGroup)."""
    invalid: str | None = None
    """Why the object cannot be used (e.g. minCount 0); its pods wait with this message."""
    api_version: str = ""
    resource: str = ""
    """REST path of the object's collection, for status writes ("" when it has no status)."""


GANG_TIMEOUT_ANNOTATION = "workload-scheduler.io/gang-timeout-seconds"
CRD_GROUP = "workload-scheduler.io"
CRD_VERSION = "v1alpha1"
LABEL_WORKLOAD = "workload-scheduler.io/workload"
LABEL_POD_GROUP = "workload-scheduler.io/pod-group"
LABEL_REPLICA_KEY = "workload-scheduler.io/replica-key"
