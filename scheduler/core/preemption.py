"""The pod cycle's preemption step (PostFilter) and the nominations it leaves behind.

The decisions are ``scheduler.framework.preemption``'s; this module keeps the state
between cycles and hands the side effects to a ``Preempter`` (the API writer in
``scheduler.api.preemption``, a recording fake in unit tests):

- ``nodes_for`` gives a cycle the nodes as they will be once the pods nominated to
  them (of equal or higher priority) are placed, so nothing takes their room;
- ``nominated_fit`` tries the pod's own nominated node first, as upstream's
  ``evaluateNominatedNode`` does, so a preemptor gets the room it made;
- ``post_filter`` runs preemption when no node fits: nominates the chosen node,
  evicts the victims, clears the nominations of lower-priority pods there, and clears
  the pod's own nomination when preemption no longer helps.

Nominations are held in memory at once; the watch brings the patched status back
later (``Nominator.observe``).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Protocol

import structlog

from scheduler.cache.cluster_cache import ClusterCache
from scheduler.framework.cycle import Feasibility, NodesView, Profile, run_pre_filters
from scheduler.framework.preemption import (
    BEFORE_DYNAMIC_RESOURCES,
    DRA_STATE_MISSING,
    Budget,
    Eligible,
    Priority,
    filter_with_nominated,
    lower_priority_nominated,
    nominated_for,
    post_filter_message,
    preempt,
    priority,
    with_pods,
)
from scheduler.framework.recount import RECOUNTED_PLUGINS, Recounted
from scheduler.framework.types import NodeInfo, PodInfo, Unresolvable
from scheduler.metrics import Metrics
from scheduler.model.objects import Pod
from scheduler.model.refs import ObjectRef
from scheduler.queue.nominator import Nominator

log = structlog.get_logger(__name__)


class Preempter(Protocol):
    """Carries out preemption decisions on the API server; calls return at once."""

    def nominate(self, pod: Pod, node_name: str) -> None:
        """Set the pod's ``status.nominatedNodeName`` ("" clears it)."""
        ...

    def evict(
        self, victim: Pod, preemptor: Pod, node_name: str, group: ObjectRef | None = None
    ) -> None:
        """DisruptionTarget condition, graceful delete, ``Preempted`` Event whose
        ``related`` is the preemptor pod, or its group object ``group`` when a gang
        preempts."""
        ...


class PodPreemption:
    def __init__(
        self,
        cache: ClusterCache,
        profile: Profile,
        preempter: Preempter,
        metrics: Metrics,
        budgets: Callable[[], Sequence[Budget]] = list,
        nominator: Nominator | None = None,
        rng: random.Random | None = None,
        eligible: Eligible | None = None,
        priority_of: Priority = priority,
    ) -> None:
        self.cache = cache
        self.profile = profile
        self.preempter = preempter
        self.metrics = metrics
        self.budgets = budgets
        self.nominator = nominator if nominator is not None else Nominator()
        self.rng = rng or random.Random()
        self.eligible = eligible
        """Pods pod-by-pod preemption may not evict (members of gangs evicted whole)."""
        self.priority_of = priority_of
        """The priority a pod counts at where nominations are compared and victims are
        eligible (a gang member's is its group's: ``gang.priority.member_priority``)."""

    # -- every cycle ---------------------------------------------------------------

    def nodes_for(self, pod: PodInfo, nodes: Sequence[NodeInfo]) -> Sequence[NodeInfo] | None:
        """``nodes`` with the nominated pods this pod must leave room for counted on
        their nodes (copies), or None when there are none (use ``nodes`` as they are)."""
        if not len(self.nominator):
            return None
        swapped: dict[str, NodeInfo] = {}
        for node_name in self.nominator.nodes():
            others = nominated_for(pod, self.nominator.pods_for(node_name), self.priority_of)
            node = self.cache.node(node_name)
            if others and node is not None:
                swapped[node_name] = with_pods(node, others)
        if not swapped:
            return None
        return [swapped.get(n.name, n) for n in nodes]

    def nominated_fit(self, pod: PodInfo, nodes: Sequence[NodeInfo]) -> NodeInfo | None:
        """The pod's nominated node if it is among ``nodes`` and the pod fits there now."""
        name = self.nominator.node_of(pod.uid) or pod.pod.status.nominated_node_name
        if not name:
            return None
        node = self.cache.node(name)
        if node is None or not any(n.name == name for n in nodes):
            return None
        # The pre-filters' filters too (volumes, pod affinity, spread), as upstream's
        # evaluateNominatedNode runs every filter with the cycle's pre-filter state.
        extra = run_pre_filters(self.profile, pod, self.profile.cluster or NodesView(nodes))
        if isinstance(extra, Unresolvable):
            return None
        reasons = filter_with_nominated(
            [*self.profile.filters, *extra],
            pod,
            node,
            self.nominator.pods_for(name),
            self.priority_of,
        )
        return node if reasons is None else None

    @contextmanager
    def holding(self, exclude: set[str], level: int) -> Iterator[None]:
        """For the length of a gang placement: the pods nominated to nodes (of priority
        ``level`` or higher, not in ``exclude``) are assumed there, so the gang leaves
        their room alone; the assumptions are dropped afterwards."""
        held: list[str] = []
        for node_name in self.nominator.nodes():
            if self.cache.node(node_name) is None:
                continue
            for pod in self.nominator.pods_for(node_name):
                if pod.uid in exclude or self.priority_of(pod) < level:
                    continue
                if self.cache.node_of(pod.uid) is None:
                    self.cache.assume(pod, node_name)
                    held.append(pod.uid)
        try:
            yield
        finally:
            for uid in held:
                self.cache.forget(uid)

    def placed(self, uid: str) -> None:
        """The pod has a node (assumed or bound): its nomination has served."""
        self.nominator.remove(uid)

    # -- PostFilter ------------------------------------------------------------------

    def post_filter(self, pod: PodInfo, nodes: Sequence[NodeInfo], fit: Feasibility) -> str:
        """Preempt for ``pod``, which fits none of ``nodes``; returns the PostFilter tail
        of its FailedScheduling message (``no new claims to deallocate, preemption: ...``;
        "" when victims were chosen)."""
        unresolvable = fit.unresolvable
        if unresolvable is not None and unresolvable.plugin in BEFORE_DYNAMIC_RESOURCES:
            return DRA_STATE_MISSING
        self.metrics.preemption_attempts.inc()
        nominated_name = self.nominator.node_of(pod.uid) or pod.pod.status.nominated_node_name
        # Upstream's dry run runs every filter. The volume plugins' ones recount on the node
        # at hand; InterPodAffinity's and PodTopologySpread's count pods per domain at
        # PreFilter, so for a pod they constrain (only then) their counts are moved by each
        # node's dry-run changes, as upstream updates them with AddPod/RemovePod.
        cluster = self.profile.cluster or NodesView(nodes)
        extra = run_pre_filters(self.profile, pod, cluster)
        stateful = [] if isinstance(extra, Unresolvable) else extra
        filters = [*self.profile.filters, *(f for f in stateful if f.name not in RECOUNTED_PLUGINS)]
        counted = [f for f in stateful if f.name in RECOUNTED_PLUGINS]
        if counted:
            filters.append(Recounted(counted, cluster))
        outcome = preempt(
            filters,
            pod,
            nodes,
            fit.rejected_by,
            self.budgets(),
            self.nominator.pods_for,
            self.rng,
            nominated_node=self.cache.node(nominated_name) if nominated_name else None,
            eligible=self.eligible,
            priority_of=self.priority_of,
            reasons=fit.reasons,
        )
        chosen = outcome.candidate
        if chosen is None:
            if outcome.clear_nomination and nominated_name:
                self.nominator.remove(pod.uid)
                self.preempter.nominate(pod.pod, "")
            return post_filter_message(outcome)
        victims = chosen.victims.pods
        self.metrics.preemption_victims.observe(len(victims))
        log.info(
            "preempting",
            pod=pod.key,
            node=chosen.node,
            victims=[v.key for v in victims],
            pdb_violations=chosen.victims.pdb_violations,
        )
        for victim in victims:
            if victim.pod.metadata.deletion_timestamp is None:  # already on its way out
                self.preempter.evict(victim.pod, pod.pod, chosen.node)
        nominated = self.nominator.pods_for(chosen.node)
        for other in lower_priority_nominated(pod, nominated, self.priority_of):
            self.nominator.remove(other.uid)
            self.preempter.nominate(other.pod, "")
        self.nominator.nominate(pod, chosen.node)
        if nominated_name != chosen.node or pod.pod.status.nominated_node_name != chosen.node:
            self.preempter.nominate(pod.pod, chosen.node)
        return ""
