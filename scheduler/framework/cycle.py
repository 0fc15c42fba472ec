"""One pod against the nodes: filter, score, pick.

Pure functions over ``PodInfo`` and ``NodeInfo``; the caller owns the cache
and decides what to do with the answer.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field

from scheduler.config import ScoringStrategy
from scheduler.framework.batching import SignatureCache, rank_pick
from scheduler.framework.plugins import default_filters, default_scores
from scheduler.framework.types import FilterPlugin, NodeInfo, PodInfo, ScorePlugin


@dataclass(slots=True)
class Profile:
    """The plugins a pod passes through, in order."""

    filters: list[FilterPlugin]
    scores: list[ScorePlugin]

    @classmethod
    def default(cls, scoring_strategy: ScoringStrategy = "LeastAllocated") -> Profile:
        return cls(default_filters(), default_scores(scoring_strategy))


@dataclass(slots=True)
class Feasibility:
    feasible: list[NodeInfo] = field(default_factory=list)
    reasons: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """node name -> why it was rejected (first failing filter's reasons)."""
    rejected_by: dict[str, str] = field(default_factory=dict)
    """node name -> name of the plugin that rejected it."""


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
    profile: Profile, pod: PodInfo, nodes: Sequence[NodeInfo], walk: NodeWalk | None = None
) -> Feasibility:
    result = Feasibility()
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


def score_nodes(profile: Profile, pod: PodInfo, nodes: Sequence[NodeInfo]) -> list[int]:
    """Weighted sum of every score plugin's normalised score, per node."""
    return combine_scores(profile, [[p.score(pod, node) for node in nodes] for p in profile.scores])


def combine_scores(profile: Profile, raw_per_plugin: list[list[int]]) -> list[int]:
    """Normalise each plugin's raw scores (in place) and add them up with the weights."""
    totals = [0] * (len(raw_per_plugin[0]) if raw_per_plugin else 0)
    for plugin, raw in zip(profile.scores, raw_per_plugin, strict=True):
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
) -> tuple[NodeInfo | None, Feasibility]:
    """The node this pod should go to (None if none fits) and the filter results.

    With ``batch``, results are reused across pods of the same signature and every node is
    considered (a best node is found in O(log n)); otherwise ``walk`` samples large
    clusters as kube-scheduler does.
    """
    if batch is not None and pod.signature is not None:
        return _pick_batched(profile, pod, nodes, rng, batch)
    fit = find_feasible(profile, pod, nodes, walk)
    if not fit.feasible:
        return None, fit
    if len(fit.feasible) == 1:
        return fit.feasible[0], fit
    return select_node(fit.feasible, score_nodes(profile, pod, fit.feasible), rng), fit


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
