"""InterPodAffinity: required and preferred pod affinity and anti-affinity, kube-scheduler's
semantics, wording and weights.

Filter (what the pre-filter computes once per attempt, as upstream's preFilterState):
counts of matching pods per topology domain, ``(topology key, value)``:

* existing pods whose required anti-affinity terms select the incoming pod (symmetry),
  from the nodes that hold such pods only;
* existing pods that match all of the incoming pod's required affinity terms, and those
  matching each of its required anti-affinity terms, over every pod.

A node is then checked against those counts by its labels alone, so the cost grows with
pods once and with nodes once, not with their product::

    node(s) didn't match pod affinity rules
    node(s) didn't match pod anti-affinity rules
    node(s) didn't satisfy existing pods anti-affinity rules

The first pod of a group with affinity to itself may go where no matching pod runs yet
(only when no pod anywhere matches, and it matches its own terms).

Score: per topology domain, the weights of the incoming pod's preferred terms that
existing pods match (anti-affinity subtracts), plus existing pods' preferred terms and
required affinity terms (``hardPodAffinityWeight`` 1) that select the incoming pod;
normalised from the lowest to the highest node to 0..100. Plugin weight 2.

An incoming pod's ``namespaceSelector`` is resolved to namespace names once; existing
pods' selectors are matched against the incoming pod's namespace labels.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import ClassVar, Final

from scheduler.framework.pod_affinity import AffinityTerm
from scheduler.framework.types import MAX_NODE_SCORE, ClusterView, NodeInfo, PodInfo
from scheduler.model.objects import Pod

AFFINITY_REASON: Final = "node(s) didn't match pod affinity rules"
ANTI_AFFINITY_REASON: Final = "node(s) didn't match pod anti-affinity rules"
EXISTING_ANTI_AFFINITY_REASON: Final = "node(s) didn't satisfy existing pods anti-affinity rules"
_AFFINITY: Final = (AFFINITY_REASON,)
_ANTI_AFFINITY: Final = (ANTI_AFFINITY_REASON,)
_EXISTING: Final = (EXISTING_ANTI_AFFINITY_REASON,)

DEFAULT_WEIGHT: Final = 2
HARD_POD_AFFINITY_WEIGHT: Final = 1

Counts = dict[tuple[str, str], int]
"""(topology key, value) -> number of matching pods (terms) in that domain."""


def _count(counts: Counts, labels: Mapping[str, str], key: str, value: int = 1) -> None:
    domain = labels.get(key)
    if domain is not None:
        pair = (key, domain)
        left = counts.get(pair, 0) + value
        if left:
            counts[pair] = left
        else:
            counts.pop(pair, None)


def matches_all(terms: Sequence[AffinityTerm], pod: Pod) -> bool:
    """Upstream's ``podMatchesAllAffinityTerms``: false without terms."""
    if not terms:
        return False
    return all(term.matches(pod, None) for term in terms)


_Entry = tuple[AffinityTerm, Mapping[str, str]]
"""An existing pod's required anti-affinity term and the labels of the node it runs on."""


def existing_anti_affinity_terms(nodes: Iterable[NodeInfo]) -> Iterator[_Entry]:
    """Each required anti-affinity term of the pods on ``nodes``, with its node's labels."""
    for node in nodes:
        labels = node.node.metadata.labels
        for existing in node.pods_with_required_anti_affinity.values():
            assert existing.pod_affinity is not None
            for term in existing.pod_affinity.required_anti_affinity:
                yield term, labels


def existing_anti_affinity_counts(
    pod: Pod, namespace_labels: Mapping[str, str] | None, nodes: Iterable[NodeInfo]
) -> Counts:
    """Domains where an existing pod's required anti-affinity term selects ``pod`` (a pass
    over ``nodes``; ``ExistingAntiAffinityIndex`` keeps the terms for many pods)."""
    counts: Counts = {}
    pod_labels = pod.metadata.labels
    for term, labels in existing_anti_affinity_terms(nodes):
        # The selector's guard first (most terms select a few pods by one label).
        guard = term.selector.guard_key
        if guard is not None and pod_labels.get(guard) not in term.selector.guard_values:
            continue
        if term.matches(pod, namespace_labels):
            _count(counts, labels, term.topology_key)
    return counts


class ExistingAntiAffinityIndex:
    """The existing pods' required anti-affinity terms, grouped by their selectors' guards
    (``Selector.guard_key`` and its values), so that a pod is matched only against the
    terms that could select it: ``app In (web)`` is looked up by the pod's ``app`` label.
    Built from ``nodes_with_required_anti_affinity_pods`` and kept while the view's
    ``affinity_generation`` stays the same; the counts are the same as
    ``existing_anti_affinity_counts`` over those nodes."""

    __slots__ = ("by_guard", "unguarded")

    def __init__(self, nodes: Iterable[NodeInfo]) -> None:
        self.by_guard: dict[str, dict[str, list[_Entry]]] = {}
        self.unguarded: list[_Entry] = []
        for term, labels in existing_anti_affinity_terms(nodes):
            key = term.selector.guard_key
            if key is None:
                self.unguarded.append((term, labels))
                continue
            by_value = self.by_guard.setdefault(key, {})
            for value in term.selector.guard_values:
                by_value.setdefault(value, []).append((term, labels))

    def counts(self, pod: Pod, namespace_labels: Mapping[str, str] | None) -> Counts:
        counts: Counts = {}
        pod_labels = pod.metadata.labels
        for key, by_value in self.by_guard.items():
            value = pod_labels.get(key)
            if value is not None:
                for term, labels in by_value.get(value, ()):
                    if term.matches(pod, namespace_labels):
                        _count(counts, labels, term.topology_key)
        for term, labels in self.unguarded:
            if term.matches(pod, namespace_labels):
                _count(counts, labels, term.topology_key)
        return counts


def incoming_counts(
    affinity: Sequence[AffinityTerm],
    anti_affinity: Sequence[AffinityTerm],
    nodes: Iterable[NodeInfo],
) -> tuple[Counts, Counts]:
    """Domains of existing pods matching all ``affinity`` terms, and each of the
    ``anti_affinity`` terms (namespace selectors already resolved: no lookup)."""
    affinity_counts: Counts = {}
    anti_counts: Counts = {}
    if not affinity and not anti_affinity:
        return affinity_counts, anti_counts
    # The selectors' guards (see ``Selector.may_match``), checked inline per existing pod.
    affinity_guards = [(t.selector.guard_key, t.selector.guard_values) for t in affinity]
    anti_guards = [(t, t.selector.guard_key, t.selector.guard_values) for t in anti_affinity]
    for node in nodes:
        labels = node.node.metadata.labels
        for existing in node.pods.values():
            other = existing.pod
            other_labels = other.metadata.labels
            if (
                affinity
                and all(
                    key is None or other_labels.get(key) in values
                    for key, values in affinity_guards
                )
                and matches_all(affinity, other)
            ):
                for term in affinity:
                    _count(affinity_counts, labels, term.topology_key)
            for term, key, values in anti_guards:
                if key is not None and other_labels.get(key) not in values:
                    continue
                if term.matches(other, None):
                    _count(anti_counts, labels, term.topology_key)
    return affinity_counts, anti_counts


def _resolved(terms: tuple[AffinityTerm, ...], cluster: ClusterView) -> tuple[AffinityTerm, ...]:
    if not any(not (t.namespace_selector.empty or t.namespace_selector.nothing) for t in terms):
        return terms
    names = cluster.namespaces()
    return tuple(t.with_namespaces(names) for t in terms)


class AffinityFilter:
    """The per-node half of the filter, holding one attempt's counts."""

    name: ClassVar[str] = "InterPodAffinity"
    __slots__ = ("affinity", "affinity_counts", "anti_affinity", "anti_counts", "existing")

    def __init__(
        self,
        affinity: tuple[AffinityTerm, ...],
        anti_affinity: tuple[AffinityTerm, ...],
        affinity_counts: Counts,
        anti_counts: Counts,
        existing: Counts,
    ) -> None:
        self.affinity = affinity
        self.anti_affinity = anti_affinity
        self.affinity_counts = affinity_counts
        self.anti_counts = anti_counts
        self.existing = existing

    def filter(self, pod: PodInfo, node: NodeInfo) -> tuple[str, ...] | None:
        labels = node.node.metadata.labels
        if self.affinity and not self._satisfies_affinity(pod, labels):
            return _AFFINITY
        if self.anti_counts:
            for term in self.anti_affinity:
                domain = labels.get(term.topology_key)
                if domain is not None and self.anti_counts.get((term.topology_key, domain), 0) > 0:
                    return _ANTI_AFFINITY
        if self.existing:
            for (key, value), count in self.existing.items():
                if count > 0 and labels.get(key) == value:
                    return _EXISTING
        return None

    def _satisfies_affinity(self, pod: PodInfo, labels: Mapping[str, str]) -> bool:
        pods_exist = True
        for term in self.affinity:
            domain = labels.get(term.topology_key)
            if domain is None:
                return False  # every topology key must be on the node
            if self.affinity_counts.get((term.topology_key, domain), 0) <= 0:
                pods_exist = False
        if pods_exist:
            return True
        # The first of a group of pods with affinity to each other: allowed where the
        # topology exists, if no pod anywhere matches yet and it matches its own terms.
        return not self.affinity_counts and matches_all(self.affinity, pod.pod)


class AffinityScore:
    """The score of one attempt: summed weights per topology domain."""

    name: ClassVar[str] = "InterPodAffinity"
    scores_are_absolute: ClassVar[bool] = False
    __slots__ = ("topology_score", "weight")

    def __init__(self, weight: int, topology_score: dict[str, dict[str, int]]) -> None:
        self.weight = weight
        self.topology_score = topology_score

    def score(self, pod: PodInfo, node: NodeInfo) -> int:
        labels = node.node.metadata.labels
        total = 0
        for key, values in self.topology_score.items():
            domain = labels.get(key)
            if domain is not None:
                total += values.get(domain, 0)
        return total

    def normalize(self, scores: list[int]) -> None:
        if not scores:
            return
        low, high = min(scores), max(scores)
        spread = high - low
        for i, value in enumerate(scores):
            scores[i] = int(MAX_NODE_SCORE * (value - low) / spread) if spread > 0 else 0


def _scoring(node: NodeInfo) -> bool:
    """Whether a pod on ``node`` has terms that score other pods."""
    for info in node.pods_with_affinity.values():
        terms = info.pod_affinity
        if terms is not None and terms.scores_others:
            return True
    return False


def _add_terms(
    topology_score: dict[str, dict[str, int]],
    terms: Iterable[AffinityTerm],
    pod: Pod,
    namespace_labels: Mapping[str, str] | None,
    labels: Mapping[str, str],
    sign: int,
    weight: int | None = None,
) -> None:
    for term in terms:
        if term.matches(pod, namespace_labels):
            domain = labels.get(term.topology_key)
            if domain is not None:
                values = topology_score.setdefault(term.topology_key, {})
                values[domain] = values.get(domain, 0) + sign * (
                    term.weight if weight is None else weight
                )


class InterPodAffinity:
    name: ClassVar[str] = "InterPodAffinity"
    __slots__ = ("_index", "_scoring", "hard_pod_affinity_weight", "weight")

    def __init__(
        self, weight: int = DEFAULT_WEIGHT, hard_pod_affinity_weight: int = HARD_POD_AFFINITY_WEIGHT
    ) -> None:
        self.weight = weight
        self.hard_pod_affinity_weight = hard_pod_affinity_weight
        self._index: tuple[ClusterView, int, ExistingAntiAffinityIndex] | None = None
        """The last view's index of existing anti-affinity terms, and its generation."""
        self._scoring: tuple[ClusterView, int, list[NodeInfo]] | None = None
        """Likewise the nodes holding pods whose terms score others."""

    def _scoring_nodes(self, cluster: ClusterView) -> Sequence[NodeInfo]:
        """The nodes with pods whose terms score other pods (every pod without preferred
        terms of its own asks; they change only as pods with affinity come and go)."""
        generation = cluster.affinity_generation()
        kept = self._scoring
        if (
            generation is not None
            and kept is not None
            and kept[0] is cluster
            and kept[1] == generation
        ):
            return kept[2]
        nodes = [node for node in cluster.nodes_with_affinity_pods() if _scoring(node)]
        if generation is not None:
            self._scoring = (cluster, generation, nodes)
        return nodes

    def _existing(self, pod: Pod, cluster: ClusterView) -> Counts:
        """Domains where existing pods' required anti-affinity selects ``pod``: from the
        index while the view's anti-affinity generation holds (every pod asks, and the
        terms change only as such pods come and go), else by a pass over the nodes."""
        generation = cluster.affinity_generation()
        index = self._index
        if generation is None or index is None or index[0] is not cluster or index[1] != generation:
            guarded = cluster.nodes_with_required_anti_affinity_pods()
            if not guarded:
                return {}
            namespace_labels = cluster.namespace_labels(pod.metadata.namespace)
            if generation is None:
                return existing_anti_affinity_counts(pod, namespace_labels, guarded)
            index = (cluster, generation, ExistingAntiAffinityIndex(guarded))
            self._index = index
        if not index[2].by_guard and not index[2].unguarded:
            return {}
        return index[2].counts(pod, cluster.namespace_labels(pod.metadata.namespace))

    def pre_filter(self, pod: PodInfo, cluster: ClusterView) -> AffinityFilter | None:
        incoming = pod.pod
        existing = self._existing(incoming, cluster)
        terms = pod.pod_affinity
        affinity = terms.required_affinity if terms is not None else ()
        anti_affinity = terms.required_anti_affinity if terms is not None else ()
        if not existing and not affinity and not anti_affinity:
            return None
        affinity = _resolved(affinity, cluster)
        anti_affinity = _resolved(anti_affinity, cluster)
        affinity_counts, anti_counts = incoming_counts(affinity, anti_affinity, cluster.nodes())
        return AffinityFilter(affinity, anti_affinity, affinity_counts, anti_counts, existing)

    def pre_score(
        self, pod: PodInfo, cluster: ClusterView, feasible: Sequence[NodeInfo]
    ) -> AffinityScore | None:
        if not feasible:
            return None
        incoming = pod.pod
        terms = pod.pod_affinity
        own_terms = terms is not None and bool(
            terms.preferred_affinity or terms.preferred_anti_affinity
        )
        # Without preferred terms of its own, only pods with affinity terms can matter,
        # and of those only the ones whose terms score others (not required anti-affinity
        # alone: replicas spread by it would otherwise cost every pod a pass over them).
        if own_terms:
            nodes: Sequence[NodeInfo] = cluster.nodes()
        else:
            nodes = self._scoring_nodes(cluster)
        if not nodes:
            return None
        preferred = _resolved(terms.preferred_affinity, cluster) if terms else ()
        preferred_anti = _resolved(terms.preferred_anti_affinity, cluster) if terms else ()
        namespace_labels = cluster.namespace_labels(incoming.metadata.namespace)
        hard = self.hard_pod_affinity_weight
        topology_score: dict[str, dict[str, int]] = {}
        for node in nodes:
            labels = node.node.metadata.labels
            if not labels:
                continue
            pods = node.pods if own_terms else node.pods_with_affinity
            for existing in pods.values():
                if own_terms:
                    other = existing.pod
                    _add_terms(topology_score, preferred, other, None, labels, 1)
                    _add_terms(topology_score, preferred_anti, other, None, labels, -1)
                theirs = existing.pod_affinity
                if theirs is None or not theirs.scores_others:
                    continue
                if hard > 0:
                    _add_terms(
                        topology_score,
                        theirs.required_affinity,
                        incoming,
                        namespace_labels,
                        labels,
                        1,
                        hard,
                    )
                _add_terms(
                    topology_score, theirs.preferred_affinity, incoming, namespace_labels, labels, 1
                )
                _add_terms(
                    topology_score,
                    theirs.preferred_anti_affinity,
                    incoming,
                    namespace_labels,
                    labels,
                    -1,
                )
        if not any(any(values.values()) for values in topology_score.values()):
            # Nothing to rank by (upstream's Skip; all-zero sums rank every node equal).
            return None
        return AffinityScore(self.weight, topology_score)
