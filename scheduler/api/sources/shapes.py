"""The JSON shapes of Workload and PodGroup objects, as far as scheduling reads them.

Unknown fields are ignored, so one set of structs reads every API version of a
shape (v1alpha1 ``policy`` and the later ``schedulingPolicy`` are both declared).
"""

from __future__ import annotations

from typing import Any

import msgspec

from scheduler.model.objects import ObjectMeta


class _Obj(msgspec.Struct, rename="camel", omit_defaults=True, kw_only=True):
    pass


class GangPolicy(_Obj):
    min_count: Any = None  # validated by hand: bad input gets a message, not a decode error


class SchedulingPolicy(_Obj):
    basic: dict[str, Any] | None = None
    gang: GangPolicy | None = None


class TopologyConstraint(_Obj):
    key: str = ""


class SchedulingConstraints(_Obj):
    topology: list[TopologyConstraint] = []


class PodGroupEntry(_Obj):
    """``spec.podGroups[]`` (v1alpha1, our CRD) or ``spec.podGroupTemplates[]`` (later)."""

    name: str = ""
    policy: SchedulingPolicy | None = None
    scheduling_policy: SchedulingPolicy | None = None
    scheduling_constraints: SchedulingConstraints | None = None
    priority: Any = None
    priority_class_name: Any = None
    disruption_mode: Any = None
    """1.36: ``Pod`` | ``PodGroup``; 1.37: ``{single: {}}`` | ``{all: {}}``; our CRD:
    ``Single`` | ``All``."""


class WorkloadSpec(_Obj):
    pod_groups: list[PodGroupEntry] = []
    pod_group_templates: list[PodGroupEntry] = []


class Workload(_Obj):
    metadata: ObjectMeta = msgspec.field(default_factory=ObjectMeta)
    spec: WorkloadSpec = msgspec.field(default_factory=WorkloadSpec)


class PodGroupWorkloadRef(_Obj):
    workload_name: str = ""
    template_name: str = ""
    pod_group_template_name: str = ""


class PodGroupSpec(_Obj):
    scheduling_policy: SchedulingPolicy | None = None
    scheduling_constraints: SchedulingConstraints | None = None
    priority: Any = None
    """Set by admission from ``priorityClassName``; 0 when the PodGroup names none."""
    priority_class_name: str = ""
    disruption_mode: Any = None
    workload_ref: PodGroupWorkloadRef | None = None


class PodGroup(_Obj):
    metadata: ObjectMeta = msgspec.field(default_factory=ObjectMeta)
    spec: PodGroupSpec = msgspec.field(default_factory=PodGroupSpec)
