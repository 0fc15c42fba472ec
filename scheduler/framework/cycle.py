"""One pod against the nodes: filter, score, pick.

Pure functions over ``PodInfo`` and ``NodeInfo``; the caller owns the cache
and decides what to do with the answer.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field

from scheduler.config import ScoringStrategy
from scheduler.framework.batching import SignatureCache, rank_pick
from scheduler.framework.labels import Selector
from scheduler.framework.plugins import (
    SpreadDefaults,
    default_filters,
    default_pre_enqueue,
    default_pre_filters,
    default_pre_scores,
    default_scores,
)
from scheduler.framework.types import (
    ClusterView,
    FilterPlugin,
    NodeInfo,
    PodInfo,
    PreEnqueuePlugin,
    PreFilterPlugin,
    PreScorePlugin,
    ScorePlugin,
    Unresolvable,
)
from scheduler.framework.volumes import VolumeView


@dataclass(slots=True)
class Profile:
    """The plugins a pod passes through, in order.

    ``pre_filters`` run once per attempt; the filters they return run on each node
    after ``filters`` (upstream also runs PodTopologySpread and InterPodAffinity last).
    ``pre_scores`` likewise add scorers for the feasible nodes. ``cluster`` is what they
    read beyond the nodes at hand (the cluster cache); without it, only those nodes.
    """

    filters: list[FilterPlugin]
    scores: list[ScorePlugin]
    pre_filters: list[PreFilterPlugin] = field(default_factory=list)
    pre_scores: list[PreScorePlugin] = field(default_factory=list)
    cluster: ClusterView | None = None
    pre_enqueue: list[PreEnqueuePlugin] = field(default_factory=list)
    """Run by the queue before a pod may be tried at all (``pre_enqueue`` below)."""

    @classmethod
    def default(
        cls,
        scoring_strategy: ScoringStrategy = "LeastAllocated",
        cluster: ClusterView | None = None,
        spread: SpreadDefaults | None = None,
        volumes: VolumeView | None = None,
        gang_member: Callable[[str], bool] | None = None,
    ) -> Profile:
        """kube-scheduler's default plugins; ``spread`` is PodTopologySpread's defaulting
        (upstream's System defaults unless given); ``volumes``, the storage objects the
        volume plugins read (without it, pods with claims are refused); ``gang_member``
        tells VolumeBinding which pods are gang members."""
        return cls(
            default_filters(),
            default_scores(scoring_strategy, cluster),
            default_pre_filters(spread, volumes, gang_member),
            default_pre_scores(spread),
            cluster,
            default_pre_enqueue(),
        )


def pre_enqueue(profile: Profile, pod: PodInfo) -> str | None:
    """Why ``pod`` may not enter the active queue yet (the first PreEnqueue plugin that
    says so), or None."""
    for plugin in profile.pre_enqueue:
        reason = plugin.pre_enqueue(pod)
        if reason is not None:
            return reason
    return None


@dataclass(frozen=True, slots=True)
class NodesView:
    """A ``ClusterView`` of just the nodes at hand, with no namespaces known."""

    node_list: Sequence[NodeInfo]

    def nodes(self) -> Sequence[NodeInfo]:
        return self.node_list

    def nodes_with_affinity_pods(self) -> Sequence[NodeInfo]:
        return [n for n in self.node_list if n.pods_with_affinity]

    def nodes_with_required_anti_affinity_pods(self) -> Sequence[NodeInfo]:
        return [n for n in self.node_list if n.pods_with_required_anti_affinity]

    def affinity_generation(self) -> int | None:
        return None

    def namespace_labels(self, name: str) -> Mapping[str, str] | None:
        return None

    def namespaces(self) -> Mapping[str, Mapping[str, str]]:
        return {}

    def service_selectors(self, namespace: str) -> Collection[Mapping[str, str]]:
        return ()

    def controller_selector(self, kind: str, namespace: str, name: str) -> Selector | None:
        return None

    def image_spread(self, image: str) -> float:
        holding = sum(1 for n in self.node_list if image in n.images)
        return holding / len(self.node_list) if self.node_list else 0.0


@dataclass(slots=True)
class Feasibility:
    feasible: list[NodeInfo] = field(default_factory=list)
    reasons: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """node name -> why it was rejected (first failing filter's reasons)."""
    rejected_by: dict[str, str] = field(default_factory=dict)
    """node name -> name of the plugin that rejected it."""
    unresolvable: Unresolvable | None = None
    """Set when a pre-filter rejected the pod for every node (``reasons`` stays empty)."""

    @property
    def pre_filter_message(self) -> str:
        return self.unresolvable.message if self.unresolvable is not None else ""


MIN_FEASIBLE_NODES_TO_FIND = 100


def nodes_to_find(total: int, percentage: int = 0) -> int:
    """kube-scheduler's ``percentageOfNodesToScore``: in a large cluster, stop looking once
    this many feasible nodes are found (adaptive by default: 50% minus 1% per 125 nodes,
    at least 5%, and never fewer than 100 nodes)."""
    if total <= MIN_FEASIBLE_NODES_TO_FIND:
        return total
    if percentage <= 0:
        percentage = max(5, 50 - total // 125)
    return max(total * min(percentage, 100) // 100, MIN_FEASIBLE_NODES_TO_FIND)


@dataclass(slots=True)
class NodeWalk:
    """Where the next cycle starts looking, so that sampling spreads over all nodes."""

    percentage: int = 0
    next_start: int = 0

    def order(self, nodes: Sequence[NodeInfo]) -> tuple[Sequence[NodeInfo], int]:
        """The nodes in this cycle's order, and how many feasible ones are enough."""
        total = len(nodes)
        if total == 0:
            return nodes, 0
        start = self.next_start % total
        rotated = nodes if start == 0 else [*nodes[start:], *nodes[:start]]
        return rotated, nodes_to_find(total, self.percentage)

    def advance(self, processed: int, total: int) -> None:
        if total:
            self.next_start = (self.next_start + processed) % total


def find_feasible(
    profile: Profile,
    pod: PodInfo,
    nodes: Sequence[NodeInfo],
    walk: NodeWalk | None = None,
    filters: Sequence[FilterPlugin] | None = None,
) -> Feasibility:
    """The nodes that pass ``filters`` (the profile's, by default)."""
    result = Feasibility()
    if filters is None:
        filters = profile.filters
    ordered, enough = walk.order(nodes) if walk else (nodes, len(nodes))
    processed = 0
    for node in ordered:
        processed += 1
        for plugin in filters:
            reasons = plugin.filter(pod, node)
            if reasons is not None:
                result.reasons[node.name] = reasons
                result.rejected_by[node.name] = plugin.name
                break
        else:
            result.feasible.append(node)
            if len(result.feasible) >= enough:
                break
    if walk:
        walk.advance(processed, len(nodes))
    return result


def passes_filters(profile: Profile, pod: PodInfo, node: NodeInfo) -> bool:
    return all(plugin.filter(pod, node) is None for plugin in profile.filters)


def score_nodes(
    profile: Profile,
    pod: PodInfo,
    nodes: Sequence[NodeInfo],
    scores: Sequence[ScorePlugin] | None = None,
) -> list[int]:
    """Weighted sum of every score plugin's normalised score, per node."""
    if scores is None:
        scores = profile.scores
    raw = [[p.score(pod, node) for node in nodes] for p in scores]
    return combine_scores(profile, raw, scores)


def combine_scores(
    profile: Profile,
    raw_per_plugin: list[list[int]],
    scores: Sequence[ScorePlugin] | None = None,
) -> list[int]:
    """Normalise each plugin's raw scores (in place) and add them up with the weights."""
    if scores is None:
        scores = profile.scores
    totals = [0] * (len(raw_per_plugin[0]) if raw_per_plugin else 0)
    for plugin, raw in zip(scores, raw_per_plugin, strict=True):
        plugin.normalize(raw)
        weight = plugin.weight
        for i, value in enumerate(raw):
            totals[i] += value * weight
    return totals


def select_node(nodes: Sequence[NodeInfo], scores: Sequence[int], rng: random.Random) -> NodeInfo:
    """The best-scored node; ties broken at random (as kube-scheduler does)."""
    best = max(scores)
    ties = [node for node, score in zip(nodes, scores, strict=True) if score == best]
    return ties[0] if len(ties) == 1 else rng.choice(ties)


def pick_node(
    profile: Profile,
    pod: PodInfo,
    nodes: Sequence[NodeInfo],
    rng: random.Random,
    batch: SignatureCache | None = None,
    walk: NodeWalk | None = None,
    *,
    cluster: ClusterView | None = None,
    pre_filtered: list[FilterPlugin] | Unresolvable | None = None,
) -> tuple[NodeInfo | None, Feasibility]:
    """The node this pod should go to (None if none fits) and the filter results.

    Pre-filters run first: one may reject the pod outright, or add a filter that holds
    state computed over the whole cluster. With ``batch``, and only when no pre-filter or
    pre-score has anything to add for this pod (its fit then depends on each node alone),
    results are reused across pods of the same signature and every node is considered (a
    best node is found in O(log n)); otherwise ``walk`` samples large clusters as
    kube-scheduler does.

    ``cluster`` stands for the profile's in the pre-filters and pre-scores, and
    ``pre_filtered`` for the pre-filters' answer: a preemption dry run keeps both as it
    changes copies of nodes (``scheduler.framework.recount.DryRun``).
    """
    cluster = cluster or profile.cluster or NodesView(nodes)
    filters = pre_filtered if pre_filtered is not None else run_pre_filters(profile, pod, cluster)
    if isinstance(filters, Unresolvable):
        return None, Feasibility(unresolvable=filters)
    if (
        batch is not None
        and pod.signature is not None
        and not filters
        and not _extra_scores(profile, pod, cluster, nodes)
    ):
        return _pick_batched(profile, pod, nodes, rng, batch)
    fit = find_feasible(profile, pod, nodes, walk, [*profile.filters, *filters])
    if not fit.feasible:
        return None, fit
    if len(fit.feasible) == 1:
        return fit.feasible[0], fit
    # Pre-scores see the feasible nodes (PodTopologySpread sizes its domains by them); for
    # a batchable pod that stepped aside above they run a second time, rarely and cheaply.
    scores = [*profile.scores, *_extra_scores(profile, pod, cluster, fit.feasible)]
    return select_node(fit.feasible, score_nodes(profile, pod, fit.feasible, scores), rng), fit


def run_pre_filters(
    profile: Profile, pod: PodInfo, cluster: ClusterView
) -> list[FilterPlugin] | Unresolvable:
    """The filters the pre-filters add for this pod (to run after the profile's own), or the
    first one's verdict that rejects it for every node."""
    filters: list[FilterPlugin] = []
    for plugin in profile.pre_filters:
        verdict = plugin.pre_filter(pod, cluster)
        if isinstance(verdict, Unresolvable):
            return verdict
        if verdict is not None:
            filters.append(verdict)
    return filters


def _extra_scores(
    profile: Profile, pod: PodInfo, cluster: ClusterView, feasible: Sequence[NodeInfo]
) -> list[ScorePlugin]:
    scorers = []
    for plugin in profile.pre_scores:
        scorer = plugin.pre_score(pod, cluster, feasible)
        if scorer is not None:
            scorers.append(scorer)
    return scorers


def _pick_batched(
    profile: Profile,
    pod: PodInfo,
    nodes: Sequence[NodeInfo],
    rng: random.Random,
    batch: SignatureCache,
) -> tuple[NodeInfo | None, Feasibility]:
    index, ranking = rank_pick(profile.filters, profile.scores, pod, nodes, batch, rng)
    if index is not None:
        return nodes[index], Feasibility(feasible=[nodes[index]])
    fit = Feasibility()
    for node, result in zip(nodes, ranking.results, strict=True):
        if result.reasons is not None:
            fit.reasons[node.name] = result.reasons
            fit.rejected_by[node.name] = result.rejected_by
    return None, fit
