"""NodeName: a pod that names its node (``spec.nodeName``) fits only that node."""

from __future__ import annotations

from typing import ClassVar, Final

from scheduler.framework.types import NodeInfo, PodInfo

REASON: Final = "node(s) didn't match the requested node name"
_REASONS: Final = (REASON,)


class NodeName:
    name: ClassVar[str] = "NodeName"
    __slots__ = ()

    def filter(self, pod: PodInfo, node: NodeInfo) -> tuple[str, ...] | None:
        wanted = pod.pod.spec.node_name
        if wanted and wanted != node.node.metadata.name:
            return _REASONS
        return None
