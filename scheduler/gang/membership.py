"""Which pod group a pod belongs to, in each API's terms.

Read from the pod alone (its ``spec.workloadRef``, ``spec.schedulingGroup`` or our
labels), so the registry can key members without the API adapters in
``scheduler.api.sources``, which sit above this package.
"""

from __future__ import annotations

from dataclasses import dataclass

from scheduler.gang.model import (
    CRD_WORKLOAD,
    LABEL_POD_GROUP,
    LABEL_REPLICA_KEY,
    LABEL_WORKLOAD,
    PODGROUP,
    WORKLOAD,
    GroupKey,
    ObjectKey,
)
from scheduler.model.objects import Pod


def pod_group_key(pod: Pod) -> GroupKey | None:
    """The gang a pod belongs to, or None for an ordinary pod.

    ``spec.workloadRef`` (1.35), our labels (the replica key may be a label or an
    annotation, since some controllers template only one of them), or
    ``spec.schedulingGroup`` (1.36+). Our labels come before ``schedulingGroup``: with
    1.37's ``WorkloadWithJob`` the Job controller gives every Job's pods a basic PodGroup
    of its own making, and a pod template that names our Workload says what its author
    meant (else such a gang would silently be placed pod by pod).
    """
    ns = pod.metadata.namespace
    ref = pod.spec.workload_ref
    if ref is not None and ref.name:
        return GroupKey(ObjectKey(WORKLOAD, ns, ref.name), ref.pod_group, ref.pod_group_replica_key)
    labels = pod.metadata.labels
    workload = labels.get(LABEL_WORKLOAD)
    group_name = labels.get(LABEL_POD_GROUP)
    if workload and group_name:
        replica = labels.get(LABEL_REPLICA_KEY) or pod.metadata.annotations.get(
            LABEL_REPLICA_KEY, ""
        )
        return GroupKey(ObjectKey(CRD_WORKLOAD, ns, workload), group_name, replica)
    group = pod.spec.scheduling_group
    if group is not None and group.pod_group_name:
        return GroupKey(ObjectKey(PODGROUP, ns, group.pod_group_name), "")
    return None


@dataclass(frozen=True, slots=True)
class LabelProblem:
    """A pod carries only part of our gang labels: it is held back, never scheduled alone."""

    message: str
    workload: ObjectKey | None
    """The Workload it names, if it names one (told too)."""


def label_problem(pod: Pod) -> LabelProblem | None:
    """Why a pod's gang labels are incomplete, or None (complete, or none of them).

    ``pod has label workload-scheduler.io/pod-group=workers but no
    workload-scheduler.io/workload label; both are needed to join a gang (or neither, to
    be scheduled on its own)``
    """
    if pod.spec.workload_ref is not None or pod.spec.scheduling_group is not None:
        return None
    labels = pod.metadata.labels
    workload = labels.get(LABEL_WORKLOAD)
    group_name = labels.get(LABEL_POD_GROUP)
    replica = labels.get(LABEL_REPLICA_KEY)
    if workload and group_name:
        return None
    if workload:
        present, missing = f"{LABEL_WORKLOAD}={workload}", LABEL_POD_GROUP
    elif group_name:
        present, missing = f"{LABEL_POD_GROUP}={group_name}", LABEL_WORKLOAD
    elif replica:
        present, missing = (
            f"{LABEL_REPLICA_KEY}={replica}",
            f"{LABEL_WORKLOAD} and {LABEL_POD_GROUP}",
        )
    else:
        return None
    where = ObjectKey(CRD_WORKLOAD, pod.metadata.namespace, workload) if workload else None
    return LabelProblem(
        f"pod has label {present} but no {missing} label; both {LABEL_WORKLOAD} and "
        f"{LABEL_POD_GROUP} are needed to join a gang (or neither, to be scheduled on its own)",
        where,
    )
