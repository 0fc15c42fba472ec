"""Pods nominated to a node: waiting for room that preemption is making there.

As kube-scheduler's ``nominator``: a pending pod of ours with
``status.nominatedNodeName`` (set by us after preempting, or found on the pod when we
start) is recorded against that node, and every scheduling cycle counts the nominated
pods of equal or higher priority on their node, so a lower-priority pod does not take
the room meanwhile. A pod leaves the nominator when it is placed, deleted or its
nomination is cleared.

One case is upstream's too: our own nomination is recorded at once, before the
status patch comes back through the watch, so an update that carries no nomination
while the previous version carried none either keeps the one we recorded.
"""

from __future__ import annotations

from collections.abc import Sequence

from scheduler.framework.types import PodInfo


class Nominator:
    def __init__(self) -> None:
        self._node_of: dict[str, str] = {}
        self._pods: dict[str, dict[str, PodInfo]] = {}
        """node name -> uid -> pod."""

    def __len__(self) -> int:
        return len(self._node_of)

    def node_of(self, uid: str) -> str | None:
        return self._node_of.get(uid)

    def nodes(self) -> list[str]:
        """Nodes with at least one nominated pod."""
        return list(self._pods)

    def pods_for(self, node_name: str) -> Sequence[PodInfo]:
        pods = self._pods.get(node_name)
        return list(pods.values()) if pods else ()

    def nominate(self, pod: PodInfo, node_name: str) -> None:
        """Record (or move) the pod's nomination."""
        self.remove(pod.uid)
        if not node_name:
            return
        self._node_of[pod.uid] = node_name
        self._pods.setdefault(node_name, {})[pod.uid] = pod

    def remove(self, uid: str) -> None:
        node = self._node_of.pop(uid, None)
        if node is None:
            return
        pods = self._pods[node]
        del pods[uid]
        if not pods:
            del self._pods[node]

    def observe(self, old_nominated: str, new: PodInfo) -> None:
        """A pending pod's new version from the watch; ``old_nominated``: the
        ``status.nominatedNodeName`` of the version before ("" for a new pod)."""
        nominated = new.pod.status.nominated_node_name
        if nominated:
            self.nominate(new, nominated)
            return
        current = self._node_of.get(new.uid)
        if current is not None and not old_nominated:
            self.nominate(new, current)  # our own, not yet seen on the pod: keep it
        else:
            self.remove(new.uid)
