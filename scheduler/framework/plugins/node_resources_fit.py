"""NodeResourcesFit: the pod's requests must fit in what the node has left; scores
by how much cpu and memory would be used (LeastAllocated or MostAllocated).

The filter reads ``PodInfo.requests``, which ``make_pod_info`` orders cpu, memory,
ephemeral-storage, then the rest by name, so reasons come out in upstream's order
(upstream leaves extended resources in map order; sorting them keeps ours stable).
"""

from __future__ import annotations

from typing import ClassVar, Final

from scheduler.config import ScoringStrategy
from scheduler.framework.types import MAX_NODE_SCORE, NodeInfo, PodInfo
from scheduler.model.quantity import CPU, MEMORY, PODS

Strategy = ScoringStrategy

TOO_MANY_PODS: Final = "Too many pods"
_reasons: dict[str, str] = {}
# Resource names come from pod specs; bound the cache rather than trust them.
_MAX_CACHED_REASONS: Final = 1024


def insufficient(resource: str) -> str:
    """``"Insufficient <resource>"``, built once per resource name."""
    reason = _reasons.get(resource)
    if reason is None:
        reason = f"Insufficient {resource}"
        if len(_reasons) < _MAX_CACHED_REASONS:
            _reasons[resource] = reason
    return reason


# The per-resource scores as upstream defines them; ``score`` inlines them.


def least_requested_score(requested: int, capacity: int) -> int:
    if capacity <= 0 or requested > capacity:
        return 0
    return (capacity - requested) * MAX_NODE_SCORE // capacity


def most_requested_score(requested: int, capacity: int) -> int:
    if capacity <= 0:
        return 0
    # Can exceed capacity because pods without requests are counted at the
    # non-zero defaults.
    requested = min(requested, capacity)
    return requested * MAX_NODE_SCORE // capacity


class NodeResourcesFit:
    name: ClassVar[str] = "NodeResourcesFit"
    scores_are_absolute: ClassVar[bool] = True
    """Scores are 0..100 already: a node's score does not depend on the other nodes'."""
    __slots__ = ("_most", "strategy", "weight")

    def __init__(self, strategy: Strategy = "LeastAllocated", weight: int = 1) -> None:
        if strategy not in ("LeastAllocated", "MostAllocated"):
            raise ValueError(f"unknown scoring strategy {strategy!r}")
        self.strategy: Strategy = strategy
        self.weight = weight
        self._most = strategy == "MostAllocated"

    def filter(self, pod: PodInfo, node: NodeInfo) -> tuple[str, ...] | None:
        allocatable = node.allocatable
        reasons: list[str] | None = None
        if len(node.pods) >= allocatable.get(PODS, 0):
            reasons = [TOO_MANY_PODS]
        requested = node.requested
        # Every insufficient resource is reported, as upstream does; a resource the
        # node does not list has nothing allocatable.
        for resource, amount in pod.requests.items():
            if amount > allocatable.get(resource, 0) - requested.get(resource, 0):
                if reasons is None:
                    reasons = [insufficient(resource)]
                else:
                    reasons.append(insufficient(resource))
        return None if reasons is None else tuple(reasons)

    def score(self, pod: PodInfo, node: NodeInfo) -> int:
        """Mean of the cpu and memory scores (weight 1 each) over the resources the
        node has, on non-zero requests so that request-less pods still count."""
        allocatable = node.allocatable
        used = node.non_zero_requested
        wanted = pod.non_zero_requests
        # Inlined least/most_requested_score: this runs per pod x feasible node and
        # two calls would cost as much as the arithmetic.
        most = self._most
        total = 0
        counted = 0
        for resource in (CPU, MEMORY):
            capacity = allocatable.get(resource, 0)
            if capacity <= 0:
                continue
            requested = used.get(resource, 0) + wanted.get(resource, 0)
            if most:
                total += (
                    (requested if requested < capacity else capacity) * MAX_NODE_SCORE // capacity
                )
            elif requested <= capacity:
                total += (capacity - requested) * MAX_NODE_SCORE // capacity
            counted += 1
        return total // counted if counted else 0

    def normalize(self, scores: list[int]) -> None:
        """Scores are already 0..100."""
