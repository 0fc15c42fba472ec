"""Counts taken over the whole cluster, moved as a preemption dry run changes nodes.

InterPodAffinity's and PodTopologySpread's pre-filters count pods per topology domain over
every node (upstream's preFilterState). A dry run removes victims and places pods on copies
of nodes, so those counts must move with it, as upstream's ``AddPod``/``RemovePod``
extensions move them pod by pod. Here a *tally* holds one pod's counts for one of those
filters and moves them by a node's change: the node's contribution as the cluster has it
is taken off and its contribution as the copy stands is put on, which gives the counts a
pre-filter over the changed cluster would give (unit tests check both users below against
a pre-filter run afresh over the changed cluster).

- ``Recounted``, pod-by-pod preemption: only the node at hand differs from the cluster (its
  victims removed, reprieved or nominated pods added), so each check moves the counts by
  that node alone and moves them back after.
- ``DryRun``, gang preemption: victims leave many nodes and members are placed on many, so
  a pod's counts are moved by every node changed so far when it is first judged, and then,
  kept per pod, by each pod added or removed since it was last judged: the pre-filters run
  over the cluster once per pod, and a change costs one pod's contribution, not a pass over
  the cluster.

As upstream, a plugin that skipped the pod at PreFilter stays skipped in ``Recounted``'s
dry run (only pods that were there come back). ``DryRun`` also places pods that were not
there: once one with required anti-affinity is placed, a pod InterPodAffinity skipped is
judged by that plugin too (its counts start empty), as the gang cycle, which assumes each
member in the cache before the next, would judge it.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar, Final, Generic, TypeVar

from scheduler.framework.cycle import NodesView, Profile, run_pre_filters
from scheduler.framework.labels import Selector
from scheduler.framework.nodeinfo import add_pod, copy_node_info, remove_pod
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
from scheduler.framework.types import ClusterView, FilterPlugin, NodeInfo, PodInfo, Unresolvable

RECOUNTED_PLUGINS: Final = frozenset({"InterPodAffinity", "PodTopologySpread"})
"""Pre-filters whose filter holds per-domain pod counts taken over the whole cluster:
in a dry run they must see the nodes as the dry run has them."""

P = TypeVar("P")
"""What one node contributes to a tally's counts."""


class _Tally(Generic[P]):
    """One pod's counts for one filter, moved as nodes change."""

    __slots__ = ("_current",)

    def __init__(self, base: FilterPlugin) -> None:
        self._current: FilterPlugin | None = base

    def of(self, node: NodeInfo | None) -> P:
        """What ``node``'s pods contribute (None: a node the cluster does not have)."""
        raise NotImplementedError

    def _add(self, part: P, sign: int) -> bool:
        """Add (sign 1) or take off (-1) a contribution; whether any count moved."""
        raise NotImplementedError

    def _build(self) -> FilterPlugin:
        raise NotImplementedError

    def move(self, old: P, new: P) -> None:
        """Count a node's pods as contributing ``new`` where they contributed ``old``."""
        if old != new:
            self._add(old, -1)
            self._add(new, 1)
            self._current = None

    def recount(self, before: NodeInfo | None, after: NodeInfo) -> Callable[[], None]:
        """Count a node's pods as ``after`` holds them where they were counted as
        ``before`` holds them; returns what counts them back."""
        old, new = self.of(before), self.of(after)
        self.move(old, new)
        return lambda: self.move(new, old)

    def count(self, node: NodeInfo, sign: int) -> None:
        """Add (sign 1) or take off (-1) what ``node``'s pods contribute."""
        if self._add(self.of(node), sign):
            self._current = None

    def current(self) -> FilterPlugin:
        """The filter over the counts as they stand (valid until they move again)."""
        if self._current is None:
            self._current = self._build()
        return self._current


_AffinityPart = tuple[Counts, Counts, Counts]


def _add_counts(counts: Counts, other: Counts, sign: int) -> None:
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

    def _add(self, part: _AffinityPart, sign: int) -> bool:
        moved = False
        for counts, other in zip(self.counts, part, strict=True):
            if other:
                _add_counts(counts, other, sign)
                moved = True
        return moved

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

    def _add(self, part: _SpreadPart, sign: int) -> bool:
        # Domains at zero stay (a node that counts brings its domain): they take part in
        # the minimum.
        counts = self.counts
        moved = False
        for i, domain, n in part:
            counts[i][domain] = counts[i].get(domain, 0) + sign * n
            moved = moved or n != 0
        return moved

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
        undo = [tally.recount(before, node) for tally in tallies]
        try:
            return run_filters(_current(checks), pod, node)
        finally:
            for back in undo:
                back()


@dataclass(frozen=True, slots=True)
class DryRunView(NodesView):
    """The cluster as a dry run has it, for the pre-scores: ``node_list`` holds the copies
    in place of their nodes; namespaces, Services, controllers and images are the
    cluster's."""

    cluster: ClusterView

    def namespace_labels(self, name: str) -> Mapping[str, str] | None:
        return self.cluster.namespace_labels(name)

    def namespaces(self) -> Mapping[str, Mapping[str, str]]:
        return self.cluster.namespaces()

    def service_selectors(self, namespace: str) -> Collection[Mapping[str, str]]:
        return self.cluster.service_selectors(namespace)

    def controller_selector(self, kind: str, namespace: str, name: str) -> Selector | None:
        return self.cluster.controller_selector(kind, namespace, name)

    def image_spread(self, image: str) -> float:
        return self.cluster.image_spread(image)


@dataclass(slots=True)
class _Judged:
    """A pod's pre-filter verdict over the cluster, with its tallies and how far into the
    log of changes they are counted."""

    checks: list[Check] | Unresolvable
    tallies: list[Tally]
    synced: int


def _alone(node: NodeInfo, pod: PodInfo) -> NodeInfo:
    """``node`` with ``pod`` on it and nothing else: what it contributes to a tally is what
    the pod does there (every count adds up pod by pod)."""
    alone = NodeInfo(node=node.node, allocatable=node.allocatable)
    add_pod(alone, pod)
    return alone


_COMPACT_AT: Final = 4096
"""Changes logged before the ones every pod has counted are dropped."""


class DryRun:
    """Copies of some of the cluster's nodes for a dry run to change (``add``, ``remove``),
    and the filters a pod is judged by on them (``pre_filters``): the pre-filters' over the
    cluster, InterPodAffinity's and PodTopologySpread's counts moved by every copy's
    difference from its node. ``view`` is the cluster as the dry run has it, for the
    pre-scores. ``verdicts``, if given, keeps the pre-filters' verdicts over the cluster
    per pod for other dry runs over the same cluster.

    A pod's tallies are first moved by every node changed so far (the copy's
    contribution for the node's), then by each pod added or removed since, one at a time
    (upstream's ``AddPod``/``RemovePod``)."""

    def __init__(
        self,
        profile: Profile,
        cluster: ClusterView,
        nodes: Iterable[NodeInfo],
        verdicts: dict[str, list[FilterPlugin] | Unresolvable] | None = None,
    ) -> None:
        self.profile = profile
        self.cluster = cluster
        self.originals = {n.name: n for n in nodes}
        self.copies = {name: copy_node_info(n) for name, n in self.originals.items()}
        self.view = DryRunView([self.copies.get(n.name, n) for n in cluster.nodes()], cluster)
        self._verdicts = verdicts if verdicts is not None else {}
        self._judged: dict[str, _Judged] = {}
        self._changed: set[str] = set()
        """Every node changed so far: a pod judged from now on recounts them all."""
        self._log: list[tuple[str, PodInfo, int]] = []
        """Pods added (1) or removed (-1), in order, while some pod has tallies to move."""
        self._compact_at = _COMPACT_AT
        self._tracking = False
        """Some pod has tallies: changes are logged."""
        self._placed_anti_affinity = False
        """A pod with required anti-affinity was placed where the cluster does not have it."""
        self._affinity_pre_filter = any(p.name == AffinityFilter.name for p in profile.pre_filters)

    def add(self, name: str, pod: PodInfo) -> None:
        self.remove(name, pod.uid)  # a pod already there is replaced (as ``add_pod`` does)
        add_pod(self.copies[name], pod)
        terms = pod.pod_affinity
        if (
            not self._placed_anti_affinity
            and terms is not None
            and terms.required_anti_affinity
            and pod.uid not in self.originals[name].pods
        ):
            self._placed_anti_affinity = True
            self._judged.clear()  # a pod InterPodAffinity skipped is judged by it now
        self._note(name, pod, 1)

    def remove(self, name: str, uid: str) -> None:
        pod = self.copies[name].pods.get(uid)
        if pod is not None:
            remove_pod(self.copies[name], uid)
            self._note(name, pod, -1)

    def _note(self, name: str, pod: PodInfo, sign: int) -> None:
        self._changed.add(name)
        if self._tracking:
            self._log.append((name, pod, sign))
            if len(self._log) >= self._compact_at:
                self._compact()

    def _compact(self) -> None:
        tracked = [judged.synced for judged in self._judged.values() if judged.tallies]
        done = min(tracked, default=len(self._log))
        del self._log[:done]
        for judged in self._judged.values():
            judged.synced = max(0, judged.synced - done)
        self._compact_at = max(_COMPACT_AT, 2 * len(self._log))

    def pre_filters(self, pod: PodInfo) -> list[FilterPlugin] | Unresolvable:
        """The filters the pre-filters add for ``pod`` on the nodes as the dry run has
        them (``run_pre_filters``'s answer over the changed cluster)."""
        judged = self._judged.get(pod.uid)
        if judged is None:
            judged = self._judge(pod)
        if isinstance(judged.checks, Unresolvable):
            return judged.checks
        if judged.tallies and judged.synced < len(self._log):
            self._count(judged.tallies, self._log[judged.synced :])
        judged.synced = len(self._log)
        return _current(judged.checks)

    def _count(self, tallies: Sequence[Tally], changes: Sequence[tuple[str, PodInfo, int]]) -> None:
        # What cancels out is not counted: most changes since a pod was last judged are
        # members placed and taken off again (``still_fits``, ``simulate``).
        net: dict[tuple[str, int], tuple[PodInfo, int]] = {}
        for name, pod, sign in changes:
            key = (name, id(pod))  # the same pod, as the log holds on to it
            was = net.get(key)
            net[key] = (pod, sign + was[1] if was is not None else sign)
        for (name, _), (pod, sign) in net.items():
            if sign:
                alone = _alone(self.copies[name], pod)
                for tally in tallies:
                    tally.count(alone, sign)

    def _judge(self, pod: PodInfo) -> _Judged:
        verdict = self._verdicts.get(pod.uid)
        if verdict is None:
            verdict = run_pre_filters(self.profile, pod, self.cluster)
            self._verdicts[pod.uid] = verdict
        if isinstance(verdict, Unresolvable):
            judged = _Judged(verdict, [], len(self._log))
        else:
            checks = [tallied(f, pod, self.cluster) for f in verdict]
            if (
                self._placed_anti_affinity
                and self._affinity_pre_filter
                and not any(isinstance(c, AffinityTally) for c in checks)
            ):
                empty = AffinityFilter((), (), {}, {}, {})
                checks.append(AffinityTally(empty, pod, self.cluster))
            tallies = [c for c in checks if isinstance(c, Tally)]
            for name in self._changed:
                before, after = self.originals[name], self.copies[name]
                for tally in tallies:
                    tally.recount(before, after)
            judged = _Judged(checks, tallies, len(self._log))
            self._tracking = self._tracking or bool(tallies)
        self._judged[pod.uid] = judged
        return judged
