"""NodeUnschedulable: cordoned nodes (``spec.unschedulable``) take only pods that
tolerate the ``node.kubernetes.io/unschedulable:NoSchedule`` taint."""

from __future__ import annotations

from typing import ClassVar, Final

from scheduler.framework.plugins.taint_toleration import tolerated
from scheduler.framework.types import NodeInfo, PodInfo
from scheduler.model.objects import Taint

REASON: Final = "node(s) were unschedulable"
_REASONS: Final = (REASON,)
# The taint the node lifecycle controller puts on cordoned nodes; tolerating it is
# what upstream accepts as tolerating the flag itself.
_UNSCHEDULABLE_TAINT: Final = Taint(key="node.kubernetes.io/unschedulable", effect="NoSchedule")


class NodeUnschedulable:
    name: ClassVar[str] = "NodeUnschedulable"
    __slots__ = ()

    def filter(self, pod: PodInfo, node: NodeInfo) -> tuple[str, ...] | None:
        if not node.node.spec.unschedulable:
            return None
        if tolerated(pod.pod.spec.tolerations, _UNSCHEDULABLE_TAINT):
            return None
        return _REASONS
