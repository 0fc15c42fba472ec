"""Which pod group a pod belongs to, in each API's terms.

Read from the pod alone (its ``spec.workloadRef``, ``spec.schedulingGroup`` or our
labels), so the registry can key members without the API adapters in
``scheduler.api.sources``, which sit above this package.
"""

from __future__ import annotations

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

    ``spec.workloadRef`` (1.35), ``spec.schedulingGroup`` (1.36+), or our labels
    (the replica key may be a label or an annotation, since some controllers
    template only one of them).
    """
    ns = pod.metadata.namespace
    ref = pod.spec.workload_ref
    if ref is not None and ref.name:
        return GroupKey(ObjectKey(WORKLOAD, ns, ref.name), ref.pod_group, ref.pod_group_replica_key)
    group = pod.spec.scheduling_group
    if group is not None and group.pod_group_name:
        return GroupKey(ObjectKey(PODGROUP, ns, group.pod_group_name), "")
    labels = pod.metadata.labels
    workload = labels.get(LABEL_WORKLOAD)
    if workload:
        replica = labels.get(LABEL_REPLICA_KEY) or pod.metadata.annotations.get(
            LABEL_REPLICA_KEY, ""
        )
        return GroupKey(
            ObjectKey(CRD_WORKLOAD, ns, workload), labels.get(LABEL_POD_GROUP, ""), replica
        )
    return None
