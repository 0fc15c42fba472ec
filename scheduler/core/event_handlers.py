"""Watch events become cache and queue updates.

One pod watch covers every non-terminal pod (as kube-scheduler's informer
does): pods with a node count against that node's capacity, whoever placed
them; pods without one that name our scheduler wait in the queue; the rest
are ignored. Finished pods leave the watch as deletions.
"""

from __future__ import annotations

from collections.abc import Callable

import structlog

from scheduler.api.watch import DELETED
from scheduler.cache.cluster_cache import ClusterCache
from scheduler.framework.podinfo import InvalidPodError, make_pod_info
from scheduler.framework.types import PodInfo
from scheduler.gang.model import GroupKey
from scheduler.gang.registry import GangRegistry
from scheduler.model.objects import Node, Pod
from scheduler.queue.scheduling_queue import SchedulingQueue

log = structlog.get_logger(__name__)


class NodeEvents:
    def __init__(self, cache: ClusterCache, queue: SchedulingQueue) -> None:
        self.cache = cache
        self.queue = queue

    def replace(self, items: list[Node]) -> None:
        names = {node.metadata.name for node in items}
        for info in list(self.cache.nodes()):
            if info.name not in names:
                self.cache.delete_node(info.name)
        for node in items:
            self.cache.set_node(node)
        self.queue.move_all("NodeRelist")

    def apply(self, event_type: str, node: Node) -> None:
        if event_type == DELETED:
            self.cache.delete_node(node.metadata.name)
            return
        is_new = self.cache.node(node.metadata.name) is None
        if self.cache.set_node(node):
            self.queue.move_all("NodeAdd" if is_new else "NodeUpdate")


class PodEvents:
    def __init__(
        self,
        scheduler_name: str,
        cache: ClusterCache,
        queue: SchedulingQueue,
        on_invalid: Callable[[Pod, str], None],
        on_gone: Callable[[str], None],
        gangs: GangRegistry | None = None,
    ) -> None:
        self.scheduler_name = scheduler_name
        self.cache = cache
        self.queue = queue
        self._on_invalid = on_invalid
        self._on_gone = on_gone
        self.gangs = gangs or GangRegistry()
        self._assigned: dict[str, PodInfo] = {}

    def replace(self, items: list[Pod]) -> None:
        seen = {pod.metadata.uid for pod in items}
        for uid in [u for u in self._assigned if u not in seen]:
            self._delete(uid)
        for qp in [qp for qp in self.queue.pods_in_any() if qp.uid not in seen]:
            self._delete(qp.uid)
        for pod in items:
            self.apply("ADDED", pod)
        self.queue.move_all("PodRelist")

    def apply(self, event_type: str, pod: Pod) -> None:
        uid = pod.metadata.uid
        if event_type == DELETED:
            self._delete(uid)
            return
        # Membership first: a new member must count before its own gate is checked.
        group = self.gangs.observe_pod(pod, pod.spec.node_name)
        if pod.spec.node_name:
            self._assigned_pod(pod)
        elif pod.spec.scheduler_name == self.scheduler_name:
            self._pending_pod(pod)
        if group is not None:
            self.regate([group])

    def regate(self, groups: list[GroupKey]) -> None:
        """Members of these groups may pass (or fail) their gate now."""
        for group in groups:
            self.queue.regate(self.gangs.members(group))

    def jobs_changed(self, job_uids: list[str]) -> None:
        """These Jobs were seen or changed: the pods that waited on them join their gang
        (or turn out to be ordinary pods) and are checked again."""
        waiting = self.gangs.waiting_on_jobs(job_uids)
        groups = {g for pod, node in waiting if (g := self.gangs.observe_pod(pod, node))}
        self.queue.regate([pod.metadata.uid for pod, _ in waiting], event="JobChange")
        self.regate(list(groups))

    def _assigned_pod(self, pod: Pod) -> None:
        uid = pod.metadata.uid
        old = self._assigned.get(uid)
        info = _reuse(old, pod) if old else self._info(pod)
        if info is None:
            return
        self._assigned[uid] = info
        self.cache.set_assigned_pod(info, pod.spec.node_name)
        if uid in self.queue:
            self.queue.done(uid)  # bound by us (confirmation) or by someone else

    def _pending_pod(self, pod: Pod) -> None:
        uid = pod.metadata.uid
        if pod.metadata.deletion_timestamp:
            self.queue.delete(uid)
            return
        if self.cache.node_of(uid) is not None:
            return  # assumed by us, bind in flight: the queue already let go of it
        queued = self.queue.get(uid)
        info = _reuse(queued.info, pod) if queued else self._info(pod)
        if info is not None:
            self.queue.add(info, changed=queued is None or info is not queued.info)

    def _delete(self, uid: str) -> None:
        self._assigned.pop(uid, None)
        if self.cache.remove_pod(uid):
            self.queue.move_all("AssignedPodDelete")
        self.queue.delete(uid)
        self._on_gone(uid)
        group = self.gangs.forget_pod(uid)
        if group is not None:
            self.regate([group])

    def _info(self, pod: Pod) -> PodInfo | None:
        try:
            return make_pod_info(pod)
        except InvalidPodError as exc:
            self._on_invalid(pod, str(exc))
            return None


def _reuse(old: PodInfo, pod: Pod) -> PodInfo | None:
    """Status-only updates (most of them) keep the computed requests and signature."""
    if old.pod.spec == pod.spec and old.pod.metadata.labels == pod.metadata.labels:
        old.pod = pod
        return old
    try:
        return make_pod_info(pod)
    except InvalidPodError:
        return old
