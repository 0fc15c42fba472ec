"""Watch events become cache and queue updates.

One pod watch covers every non-terminal pod (as kube-scheduler's informer
does): pods with a node count against that node's capacity, whoever placed
them; pods without one that name our scheduler wait in the queue; the rest
are ignored. Finished pods leave the watch as deletions.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import structlog

from scheduler.api.watch import DELETED
from scheduler.cache.cluster_cache import ClusterCache
from scheduler.framework.labels import Requirement, Selector, SelectorError, compile_selector
from scheduler.framework.podinfo import InvalidPodError, make_pod_info
from scheduler.framework.types import PodInfo
from scheduler.gang.model import GroupKey
from scheduler.gang.placement import Pacer
from scheduler.gang.registry import GangRegistry
from scheduler.model.objects import (
    Controller,
    Namespace,
    Node,
    Pod,
    ReplicationController,
    Service,
)
from scheduler.queue.nominator import Nominator
from scheduler.queue.scheduling_queue import ClusterEvent, SchedulingQueue

log = structlog.get_logger(__name__)

RELIST_CHUNK = 100
"""Pods of a relist applied per step."""
RECOUNT_CHUNK = 20
"""Waiting members told their gang's count per step (about 3 ms at 2,000 members); the
loop gets a turn every ``YIELD_EVERY_SECONDS`` of steps."""


class NodeEvents:
    def __init__(
        self,
        cache: ClusterCache,
        queue: SchedulingQueue,
        on_gone: Callable[[str], None] | None = None,
    ) -> None:
        self.cache = cache
        self.queue = queue
        self._on_gone = on_gone or (lambda name: None)
        """Told the name of every node that went away (gangs with members there say so)."""

    def replace(self, items: list[Node]) -> None:
        names = {node.metadata.name for node in items}
        for info in list(self.cache.nodes()):
            if info.name not in names:
                self.cache.delete_node(info.name)
                self._on_gone(info.name)
        for node in items:
            self.cache.set_node(node)
        self.queue.move_all("NodeRelist")

    def apply(self, event_type: str, node: Node) -> None:
        if event_type == DELETED:
            self.cache.delete_node(node.metadata.name)
            self._on_gone(node.metadata.name)
            return
        is_new = self.cache.node(node.metadata.name) is None
        if self.cache.set_node(node):
            self.queue.move_all("NodeAdd" if is_new else "NodeUpdate")


class NamespaceEvents:
    """Namespace labels, for inter-pod affinity's ``namespaceSelector``."""

    def __init__(self, cache: ClusterCache, queue: SchedulingQueue) -> None:
        self.cache = cache
        self.queue = queue

    def replace(self, items: list[Namespace]) -> None:
        names = {ns.metadata.name for ns in items}
        for name in [n for n in self.cache.namespaces() if n not in names]:
            self.cache.delete_namespace(name)
        changed = [self.cache.set_namespace(ns.metadata.name, ns.metadata.labels) for ns in items]
        if any(changed):
            self.queue.move_all("NamespaceRelist")

    def apply(self, event_type: str, namespace: Namespace) -> None:
        name = namespace.metadata.name
        if event_type == DELETED:
            self.cache.delete_namespace(name)
        elif self.cache.set_namespace(name, namespace.metadata.labels):
            self.queue.move_all("NamespaceUpdate")


class ServiceEvents:
    """Services' pod selectors, for default topology spreading (score only: no requeue)."""

    def __init__(self, cache: ClusterCache) -> None:
        self.cache = cache
        self._known: set[tuple[str, str]] = set()

    def replace(self, items: list[Service]) -> None:
        seen = {(s.metadata.namespace, s.metadata.name) for s in items}
        for namespace, name in self._known - seen:
            self.cache.delete_service(namespace, name)
        for service in items:
            self.apply("ADDED", service)

    def apply(self, event_type: str, service: Service) -> None:
        key = (service.metadata.namespace, service.metadata.name)
        if event_type == DELETED:
            self._known.discard(key)
            self.cache.delete_service(*key)
        else:
            self._known.add(key)
            self.cache.set_service(*key, service.spec.selector)


class ControllerEvents:
    """ReplicaSets', StatefulSets' or ReplicationControllers' pod selectors (``kind``)."""

    def __init__(self, kind: str, cache: ClusterCache) -> None:
        self.kind = kind
        self.cache = cache
        self._known: set[tuple[str, str]] = set()

    def replace(self, items: list[Controller] | list[ReplicationController]) -> None:
        seen = {(c.metadata.namespace, c.metadata.name) for c in items}
        for namespace, name in self._known - seen:
            self.cache.delete_controller(self.kind, namespace, name)
        for controller in items:
            self.apply("ADDED", controller)

    def apply(self, event_type: str, controller: Controller | ReplicationController) -> None:
        meta = controller.metadata
        key = (meta.namespace, meta.name)
        if event_type == DELETED:
            self._known.discard(key)
            self.cache.delete_controller(self.kind, *key)
            return
        selector = _controller_selector(controller)
        if selector is None:
            log.warning("ignoring a bad selector", kind=self.kind, name=f"{key[0]}/{key[1]}")
            return
        self._known.add(key)
        self.cache.set_controller(self.kind, *key, selector)


def _controller_selector(controller: Controller | ReplicationController) -> Selector | None:
    if isinstance(controller, ReplicationController):
        labels = controller.spec.selector or {}
        return Selector(tuple(Requirement(k, "In", frozenset((v,))) for k, v in labels.items()))
    try:
        return compile_selector(controller.spec.selector)
    except SelectorError:
        return None


class PodEvents:
    def __init__(
        self,
        scheduler_name: str,
        cache: ClusterCache,
        queue: SchedulingQueue,
        on_invalid: Callable[[Pod, str], None],
        on_gone: Callable[[str], None],
        gangs: GangRegistry | None = None,
        nominator: Nominator | None = None,
    ) -> None:
        self.scheduler_name = scheduler_name
        self.nominator = nominator if nominator is not None else Nominator()
        self.cache = cache
        self.queue = queue
        self._on_invalid = on_invalid
        self._on_gone = on_gone
        self.gangs = gangs or GangRegistry()
        self._assigned: dict[str, PodInfo] = {}
        self._want_peers: dict[str, PodInfo] = {}
        """Pending pods with required pod affinity: a new pod their terms select may let
        them fit (upstream's queueing hint for InterPodAffinity on pod add)."""
        self._open: dict[GroupKey, bool] = {}
        """Per gang with members: whether its gate let members through when last checked."""
        self._recount: set[GroupKey] = set()
        """Groups whose waiting members were told an older member count."""

    def replace(self, items: list[Pod]) -> None:
        """After a (re)list: whatever we hold that the list no longer has was deleted
        while we were not watching, including pods we bound whose confirmation never came
        (assumptions never expire, so this is where a vanished one lets go of its node)."""
        for _ in self.replace_steps(items):
            pass

    def replace_steps(self, items: list[Pod]) -> Iterator[None]:
        """``replace`` in steps of ``RELIST_CHUNK`` pods (the event hold applies them a
        slice at a time: a relist of thousands of pods never holds the loop)."""
        seen = {pod.metadata.uid for pod in items}
        known = {*self._assigned, *(qp.uid for qp in self.queue.pods_in_any())}
        known.update(self.cache.placed_uids())
        # Members of any scheduler, bound or not: a vanished one must not count
        # towards its gang's quorum.
        known.update(self.gangs.pod_uids())
        for n, uid in enumerate(known - seen, 1):
            self._delete(uid)
            if n % RELIST_CHUNK == 0:
                yield
        for n, pod in enumerate(items, 1):
            self.apply("ADDED", pod)
            if n % RELIST_CHUNK == 0:
                yield
        self.queue.move_all("PodRelist")

    def apply(self, event_type: str, pod: Pod) -> None:
        uid = pod.metadata.uid
        if event_type == DELETED:
            self._delete(uid)
            return
        # Membership first: a new member must count before its own gate is checked. A
        # terminating pod (deletionTimestamp set) is no member: it neither counts towards
        # the quorum nor as running, so a gang whose pods are being replaced is placed
        # whole again (it still holds its node's capacity in the cache until it is gone).
        if pod.metadata.deletion_timestamp is not None:
            group = self.gangs.forget_pod(uid)
        else:
            group = self.gangs.observe_pod(pod, pod.spec.node_name)
        if pod.spec.node_name:
            self._assigned_pod(pod)
        elif pod.spec.scheduler_name == self.scheduler_name:
            self._pending_pod(pod)
        if group is not None:
            self._member_changed(group, uid)

    def regate(self, groups: list[GroupKey]) -> None:
        """Members of these groups may pass (or fail) their gate now."""
        for group in groups:
            self._open[group] = self.gangs.group_gate(group) is None
            self.queue.regate(self.gangs.members(group))

    def jobs_changed(self, job_uids: list[str]) -> None:
        """These Jobs were seen or changed: the pods that waited on them join their gang
        (or turn out to be ordinary pods) and are checked again."""
        waiting = self.gangs.waiting_on_jobs(job_uids)
        groups = {g for pod, node in waiting if (g := self.gangs.observe_pod(pod, node))}
        self.queue.regate([pod.metadata.uid for pod, _ in waiting], event="JobChange")
        self.regate(list(groups))

    def _member_changed(self, group: GroupKey, uid: str) -> None:
        """A member came, went or moved: the whole group is checked again only when its
        verdict (quorum or not) flips, else just this pod. Checking every member on every
        member's event cost O(members^2) for a gang arriving (seconds for thousands of
        members); the other members' waiting messages are brought up to date by
        ``recount_waiting`` (housekeeping, once a second), O(members) per group per second."""
        open_now = self.gangs.group_gate(group) is None
        if self._open.get(group) == open_now:
            self.queue.regate([uid])
            if not open_now:
                self._recount.add(group)
            return
        self._recount.discard(group)
        if not self.gangs.members(group):
            self._open.pop(group, None)
        else:
            self._open[group] = open_now
        self.queue.regate(self.gangs.members(group))

    async def recount_waiting(self) -> None:
        """Tell members still waiting for their gang's quorum the current count ("3 of 8
        pods exist"), for the groups whose count changed since their members were gated.
        A few members at a time, the loop getting a turn every few milliseconds (a gang
        of thousands took 50-70 ms in one step)."""
        groups, self._recount = self._recount, set()
        pacer = Pacer()
        for group in groups:
            members = list(self.gangs.members(group))
            for start in range(0, len(members), RECOUNT_CHUNK):
                self.queue.regate(members[start : start + RECOUNT_CHUNK])
                await pacer.turn()

    def _assigned_pod(self, pod: Pod) -> None:
        uid = pod.metadata.uid
        old = self._assigned.get(uid)
        info = _reuse(old, pod) if old else self._info(pod)
        if info is None:
            return
        self._assigned[uid] = info
        self.cache.set_assigned_pod(info, pod.spec.node_name)
        self.nominator.remove(uid)
        self._want_peers.pop(uid, None)
        if uid in self.queue:
            self.queue.done(uid)  # bound by us (confirmation) or by someone else
        if old is None and self._want_peers:
            self._wake_peers_of(info.pod)

    def _wake_peers_of(self, pod: Pod) -> None:
        labels = self.cache.namespace_labels(pod.metadata.namespace)
        wake = [
            uid
            for uid, waiting in self._want_peers.items()
            if waiting.pod_affinity is not None
            and any(t.matches(pod, labels) for t in waiting.pod_affinity.required_affinity)
        ]
        if wake:
            self.queue.activate(wake)

    def _pending_pod(self, pod: Pod) -> None:
        uid = pod.metadata.uid
        if pod.metadata.deletion_timestamp:
            self.queue.delete(uid)
            self.nominator.remove(uid)
            return
        if self.cache.node_of(uid) is not None:
            return  # assumed by us, bind in flight: the queue already let go of it
        queued = self.queue.get(uid)
        # Read before _reuse, which may update the queued PodInfo in place.
        was_nominated = queued.info.pod.status.nominated_node_name if queued else ""
        info = _reuse(queued.info, pod) if queued else self._info(pod)
        if info is not None:
            self.nominator.observe(was_nominated, info)
            self.queue.add(info, changed=queued is None or info is not queued.info)
            if info.pod_affinity is not None and info.pod_affinity.required_affinity:
                self._want_peers[uid] = info

    def _delete(self, uid: str) -> None:
        info = self._assigned.pop(uid, None)
        queued = self.queue.get(uid)
        node = self.cache.node_of(uid)
        self._want_peers.pop(uid, None)
        if self.cache.remove_pod(uid):
            requests = info.requests if info else queued.info.requests if queued else None
            self.queue.move_all(ClusterEvent.pod_gone("AssignedPodDelete", node, requests))
        self.queue.delete(uid)
        self.nominator.remove(uid)
        self._on_gone(uid)
        group = self.gangs.forget_pod(uid)
        if group is not None:
            self._member_changed(group, uid)

    def _info(self, pod: Pod) -> PodInfo | None:
        try:
            return make_pod_info(pod)
        except InvalidPodError as exc:
            self._on_invalid(pod, str(exc))
            return None


def _reuse(old: PodInfo, pod: Pod) -> PodInfo | None:
    """Status-only updates (most of them) keep the computed requests and signature."""
    if (
        old.pod.spec == pod.spec
        and old.pod.metadata.labels == pod.metadata.labels
        and old.pod.unknown_field == pod.unknown_field
    ):
        old.pod = pod
        return old
    try:
        return make_pod_info(pod)
    except InvalidPodError:
        return old
