"""Nodes for a whole gang, against one view of the cluster, all or nothing.

Members are placed one after another, each counted on its node (assumed in
the cache) so the next one sees the capacity taken. If fewer than ``need``
find a node, every assumption is rolled back: nothing stays reserved. With a
topology key, each domain (one value of that node label) is tried on its own
and the one that fits the gang with the least capacity left over wins.

Runs synchronously inside one scheduling cycle: no watch event can change the
cache while a gang is being placed.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from scheduler.cache.cluster_cache import ClusterCache
from scheduler.framework.batching import SignatureCache
from scheduler.framework.cycle import Feasibility, NodeWalk, Profile, pick_node
from scheduler.framework.types import NodeInfo, PodInfo


@dataclass(slots=True)
class GangPlacement:
    placed: list[tuple[PodInfo, str]] = field(default_factory=list)
    unplaced: list[PodInfo] = field(default_factory=list)
    failure: Feasibility | None = None
    """Filter results of the first member that found no node."""
    domain: str | None = None
    nodes_considered: int = 0

    def ok(self, need: int) -> bool:
        return len(self.placed) >= need


def largest_first(pods: Sequence[PodInfo]) -> list[PodInfo]:
    """Big members first: they are the hard ones to fit, and packing goes better."""
    return sorted(
        pods,
        key=lambda p: (
            -p.requests.get("cpu", 0),
            -p.requests.get("memory", 0),
            p.pod.metadata.creation_timestamp or "",
            p.key,
        ),
    )


def place_members(
    cache: ClusterCache,
    profile: Profile,
    pods: Sequence[PodInfo],
    nodes: Sequence[NodeInfo],
    need: int,
    rng: random.Random,
    batch: SignatureCache | None = None,
    walk: NodeWalk | None = None,
) -> GangPlacement:
    """Place as many of ``pods`` as fit; keep the assumptions only if ``need`` were placed."""
    result = GangPlacement(nodes_considered=len(nodes))
    for pod in largest_first(pods):
        node, fit = pick_node(profile, pod, nodes, rng, batch, walk)
        if node is None:
            result.unplaced.append(pod)
            if result.failure is None:
                result.failure = fit
            continue
        cache.assume(pod, node.name)
        result.placed.append((pod, node.name))
    if not result.ok(need):
        rollback(cache, result)
    return result


def rollback(cache: ClusterCache, placement: GangPlacement) -> None:
    for pod, _ in placement.placed:
        cache.forget(pod.uid)


def domains(nodes: Sequence[NodeInfo], topology_key: str) -> dict[str, list[NodeInfo]]:
    out: dict[str, list[NodeInfo]] = {}
    for node in nodes:
        value = node.node.metadata.labels.get(topology_key)
        if value is not None:
            out.setdefault(value, []).append(node)
    return out


def running_domain(
    cache: ClusterCache, running_nodes: Sequence[str], topology_key: str
) -> str | None:
    """The domain a gang already runs in (the most common one, should it straddle)."""
    values = Counter(
        node.node.metadata.labels.get(topology_key)
        for name in running_nodes
        if (node := cache.node(name)) is not None
    )
    values.pop(None, None)
    return values.most_common(1)[0][0] if values else None


def place_gang(
    cache: ClusterCache,
    profile: Profile,
    pods: Sequence[PodInfo],
    need: int,
    rng: random.Random,
    *,
    topology_key: str | None = None,
    domain: str | None = None,
    batch: SignatureCache | None = None,
    walk: NodeWalk | None = None,
) -> GangPlacement:
    """All or nothing: at least ``need`` of ``pods`` placed (and assumed), or none.

    With ``topology_key`` every member lands in one domain: ``domain`` if given
    (the gang already runs there), else the best-fitting one.
    """
    nodes = cache.nodes()
    if topology_key is None:
        return place_members(cache, profile, pods, nodes, need, rng, batch, walk)
    by_domain = domains(nodes, topology_key)
    if domain is not None:
        result = place_members(
            cache, profile, pods, by_domain.get(domain, []), need, rng, batch, walk
        )
        result.domain = domain
        return result
    best: GangPlacement | None = None
    best_waste = 0.0
    first_failure: GangPlacement | None = None
    # Each trial is rolled back once measured (the same pods cannot be assumed in two
    # domains at once); the winner's plan is then assumed again, on an unchanged cache.
    for value in sorted(by_domain):
        trial = place_members(cache, profile, pods, by_domain[value], need, rng, batch, walk)
        trial.domain = value
        if not trial.ok(need):
            first_failure = first_failure or trial
            continue
        waste = leftover(by_domain[value], trial)
        rollback(cache, trial)
        if best is None or waste < best_waste:
            best, best_waste = trial, waste
    if best is not None:
        for pod, node_name in best.placed:
            cache.assume(pod, node_name)
        return best
    if first_failure is not None:
        first_failure.domain = None
        return first_failure
    return GangPlacement(unplaced=list(pods), nodes_considered=0)


def leftover(nodes: Sequence[NodeInfo], placement: GangPlacement) -> float:
    """Capacity the domain has left after the gang, in units of the gang's own size
    (per resource the gang asks for): smaller is a tighter fit."""
    asked: Counter[str] = Counter()
    for pod, _ in placement.placed:
        asked.update(pod.requests)
    total = 0.0
    for resource, amount in asked.items():
        if amount <= 0:
            continue
        free = sum(
            max(0, n.allocatable.get(resource, 0) - n.requested.get(resource, 0)) for n in nodes
        )
        total += free / amount
    return total
