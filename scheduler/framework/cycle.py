"""One pod against the nodes: filter, score, pick.

Pure functions over ``PodInfo`` and ``NodeInfo``; the caller owns the cache
and decides what to do with the answer.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field

from scheduler.framework.batching import SignatureCache, node_results
from scheduler.framework.plugins import default_filters, default_scores
from scheduler.framework.types import FilterPlugin, NodeInfo, PodInfo, ScorePlugin


@dataclass(slots=True)
class Profile:
    """The plugins a pod passes through, in order."""

    filters: list[FilterPlugin]
    scores: list[ScorePlugin]

    @classmethod
    def default(cls, scoring_strategy: str = "LeastAllocated") -> Profile:
        return cls(default_filters(), default_scores(scoring_strategy))  # type: ignore[arg-type]


@dataclass(slots=True)
class Feasibility:
    feasible: list[NodeInfo] = field(default_factory=list)
    reasons: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """node name -> why it was rejected (first failing filter's reasons)."""
    rejected_by: dict[str, str] = field(default_factory=dict)
    """node name -> name of the plugin that rejected it."""


def find_feasible(profile: Profile, pod: PodInfo, nodes: Sequence[NodeInfo]) -> Feasibility:
    result = Feasibility()
    filters = profile.filters
    for node in nodes:
        for plugin in filters:
            reasons = plugin.filter(pod, node)
            if reasons is not None:
                result.reasons[node.name] = reasons
                result.rejected_by[node.name] = plugin.name
                break
        else:
            result.feasible.append(node)
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
) -> tuple[NodeInfo | None, Feasibility]:
    """The node this pod should go to (None if none fits) and the filter results.

    With ``batch``, per-node results are reused across pods of the same signature;
    the answer is the same as without it.
    """
    if batch is not None and pod.signature is not None:
        return _pick_batched(profile, pod, nodes, rng, batch)
    fit = find_feasible(profile, pod, nodes)
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
    fit = Feasibility()
    raw: list[list[int]] = [[] for _ in profile.scores]
    for node, result in zip(
        nodes, node_results(profile.filters, profile.scores, pod, nodes, batch), strict=True
    ):
        if result.reasons is None:
            fit.feasible.append(node)
            for column, value in zip(raw, result.scores, strict=True):
                column.append(value)
        else:
            fit.reasons[node.name] = result.reasons
            fit.rejected_by[node.name] = result.rejected_by
    if not fit.feasible:
        return None, fit
    if len(fit.feasible) == 1:
        return fit.feasible[0], fit
    return select_node(fit.feasible, combine_scores(profile, raw), rng), fit
