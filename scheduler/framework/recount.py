"""Counts taken over the whole cluster, moved as a preemption dry run changes nodes.

InterPodAffinity's and PodTopologySpread's pre-filters count pods per topology domain over
every node (upstream's preFilterState). A dry run removes victims and places pods on copies
of nodes, so those counts must move with it, as upstream's ``AddPod``/``RemovePod``
extensions move them pod by pod. Here a *tally* holds one pod's counts for one of those
filters and moves them a node at a time: the node's contribution as the cluster has it is
taken off and its contribution as the copy stands is put on, which gives the counts a
pre-filter over the changed cluster would give (a unit test checks them against a
pre-filter run afresh).

``Recounted``, for pod-by-pod preemption: only the node at hand differs from the cluster
(its victims removed, reprieved or nominated pods added), so each check moves the counts
by that node alone and moves them back after. As upstream, a plugin that skipped the pod
at PreFilter stays skipped in the dry run (only pods that were there come back).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar, Final, Generic, TypeVar

from scheduler.framework.plugins.inter_pod_affinity import (
    AffinityFilter,
    Counts,
    existing_anti_affinity_counts,
    incoming_counts,
)
from scheduler.framework.plugins.pod_topology_spread import (
    SpreadFilter,
    count_matching,
    has_keys,
    node_included,
    required_node_affinity,
)
from scheduler.framework.preemption import run_filters
from scheduler.framework.types import ClusterView, FilterPlugin, NodeInfo, PodInfo

RECOUNTED_PLUGINS: Final = frozenset({"InterPodAffinity", "PodTopologySpread"})
"""Pre-filters whose filter holds per-domain pod counts taken over the whole cluster:
in a dry run they must see the nodes as the dry run has them."""

P = TypeVar("P")
"""What one node contributes to a tally's counts."""


class _Tally(Generic[P]):
    """One pod's counts for one filter, moved a node at a time."""

    __slots__ = ("_counted", "_current")

    def __init__(self, base: FilterPlugin) -> None:
        self._counted: dict[str, tuple[P, P]] = {}
        """node name -> its contribution as the cluster has it, and as counted now."""
        self._current: FilterPlugin | None = base

    def of(self, node: NodeInfo | None) -> P:
        """What ``node``'s pods contribute (None: a node the cluster does not have)."""
        raise NotImplementedError

    def _move(self, old: P, new: P) -> None:
        raise NotImplementedError

    def _build(self) -> FilterPlugin:
        raise NotImplementedError

    def recount(self, name: str, before: NodeInfo | None, after: NodeInfo) -> None:
        """Count node ``name`` as ``after`` has it; until its first recount it is counted
        as ``before``, the cluster's node, has it."""
        counted = self._counted.get(name)
        if counted is None:
            original = current = self.of(before)
        else:
            original, current = counted
        now = self.of(after)
        if now != current:
            self._move(current, now)
            self._current = None
        self._counted[name] = (original, now)

    def restore(self, name: str) -> None:
        """Count node ``name`` as the cluster has it again."""
        counted = self._counted.pop(name, None)
        if counted is not None and counted[0] != counted[1]:
            self._move(counted[1], counted[0])
            self._current = None

    def current(self) -> FilterPlugin:
        """The filter over the counts as they stand (valid until the next recount)."""
        if self._current is None:
            self._current = self._build()
        return self._current


_AffinityPart = tuple[Counts, Counts, Counts]


def _add(counts: Counts, other: Counts, sign: int) -> None:
    for pair, n in other.items():
        left = counts.get(pair, 0) + sign * n
        if left:
            counts[pair] = left
        else:
            counts.pop(pair, None)  # a domain at zero is no domain, as the pre-filter counts


class AffinityTally(_Tally[_AffinityPart]):
    """InterPodAffinity's counts for one pod: existing pods matching its required affinity
    and each anti-affinity term, and existing pods' required anti-affinity selecting it."""

    __slots__ = ("affinity", "anti_affinity", "counts", "namespace_labels", "pod")

    def __init__(self, base: AffinityFilter, pod: PodInfo, cluster: ClusterView) -> None:
        super().__init__(base)
        self.affinity = base.affinity
        self.anti_affinity = base.anti_affinity
        self.counts = (dict(base.affinity_counts), dict(base.anti_counts), dict(base.existing))
        self.pod = pod.pod
        self.namespace_labels = cluster.namespace_labels(pod.pod.metadata.namespace)

    def of(self, node: NodeInfo | None) -> _AffinityPart:
        if node is None:
            return {}, {}, {}
        affinity, anti = incoming_counts(self.affinity, self.anti_affinity, [node])
        existing = existing_anti_affinity_counts(self.pod, self.namespace_labels, [node])
        return affinity, anti, existing

    def _move(self, old: _AffinityPart, new: _AffinityPart) -> None:
        for counts, minus, plus in zip(self.counts, old, new, strict=True):
            _add(counts, minus, -1)
            _add(counts, plus, 1)

    def _build(self) -> AffinityFilter:
        return AffinityFilter(self.affinity, self.anti_affinity, *self.counts)


_SpreadPart = tuple[tuple[int, str, int], ...]
"""(constraint, domain, matching pods) for each constraint the node counts for."""


class SpreadTally(_Tally[_SpreadPart]):
    """PodTopologySpread's counts for one pod: per hard constraint, the pods its selector
    picks per domain, over the nodes that count for it."""

    __slots__ = ("constraints", "counts", "pod")

    def __init__(self, base: SpreadFilter, pod: PodInfo) -> None:
        super().__init__(base)
        self.pod = pod
        self.constraints = base.constraints
        self.counts = [dict(domains) for domains in base.counts]

    def of(self, node: NodeInfo | None) -> _SpreadPart:
        if node is None or not has_keys(node.node, self.constraints):
            return ()
        obj = node.node
        labels = obj.metadata.labels
        pod = self.pod.pod
        node_affinity = required_node_affinity(self.pod)
        namespace = pod.metadata.namespace
        return tuple(
            (i, labels[c.topology_key], count_matching(node, c.selector, namespace))
            for i, c in enumerate(self.constraints)
            if node_included(c, pod, obj, node_affinity)
        )

    def _move(self, old: _SpreadPart, new: _SpreadPart) -> None:
        # Domains at zero stay: they take part in the minimum.
        counts = self.counts
        for i, domain, n in old:
            counts[i][domain] = counts[i].get(domain, 0) - n
        for i, domain, n in new:
            counts[i][domain] = counts[i].get(domain, 0) + n

    def _build(self) -> SpreadFilter:
        return SpreadFilter(self.pod, self.constraints, self.counts)


Tally = AffinityTally | SpreadTally
Check = FilterPlugin | Tally
"""A filter as a dry run runs it: as it is, or through a tally whose counts move."""


def tallied(f: FilterPlugin, pod: PodInfo, cluster: ClusterView) -> Check:
    """``f`` with a tally if it counts pods across nodes (``RECOUNTED_PLUGINS``)."""
    if isinstance(f, AffinityFilter):
        return AffinityTally(f, pod, cluster)
    if isinstance(f, SpreadFilter):
        return SpreadTally(f, pod)
    return f


def _current(checks: Sequence[Check]) -> list[FilterPlugin]:
    return [c.current() if isinstance(c, Tally) else c for c in checks]


class Recounted:
    """InterPodAffinity's and PodTopologySpread's filters (``filters``, as their pre-filters
    returned them over ``cluster``) with their counts moved to the node at hand in the state
    given (victims removed, reprieved or nominated pods added), so the counts are those a
    pre-filter over the cluster with that node changed would give; the first failing
    filter's reasons, in order. For pod-by-pod preemption, whose dry run changes one node
    at a time."""

    name: ClassVar[str] = "Recounted"
    __slots__ = ("_by_name", "_checks", "cluster", "filters")

    def __init__(self, filters: Sequence[FilterPlugin], cluster: ClusterView) -> None:
        self.filters = tuple(filters)
        self.cluster = cluster
        self._by_name: dict[str, NodeInfo] | None = None
        self._checks: tuple[str, list[Check], list[Tally]] | None = None
        """The filters and their tallies, for the one pod they were made for."""

    def _original(self, name: str) -> NodeInfo | None:
        if self._by_name is None:
            self._by_name = {n.name: n for n in self.cluster.nodes()}
        return self._by_name.get(name)

    def filter(self, pod: PodInfo, node: NodeInfo) -> tuple[str, ...] | None:
        if self._checks is None or self._checks[0] != pod.uid:
            checks = [tallied(f, pod, self.cluster) for f in self.filters]
            self._checks = (pod.uid, checks, [c for c in checks if isinstance(c, Tally)])
        _, checks, tallies = self._checks
        before = self._original(node.name)
        for tally in tallies:
            tally.recount(node.name, before, node)
        try:
            return run_filters(_current(checks), pod, node)
        finally:
            for tally in tallies:
                tally.restore(node.name)
