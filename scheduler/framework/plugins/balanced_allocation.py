"""NodeResourcesBalancedAllocation: prefers nodes whose cpu and memory would be used
in similar proportions once the pod is placed.

Upstream's formula: per resource the fraction (node requested + pod request) /
allocatable, capped at 1, skipping resources the node has none of; the score is
``(1 - std) * 100`` truncated, where for two fractions std is ``|a - b| / 2``.
Actual requests are used, not the non-zero defaults, and a pod that requests
neither cpu nor memory is skipped upstream; a constant 0 here ranks the same.
"""

from __future__ import annotations

from typing import ClassVar

from scheduler.framework.types import MAX_NODE_SCORE, NodeInfo, PodInfo
from scheduler.model.quantity import CPU, MEMORY


class NodeResourcesBalancedAllocation:
    name: ClassVar[str] = "NodeResourcesBalancedAllocation"
    scores_are_absolute: ClassVar[bool] = True
    """Scores are 0..100 already: a node's score does not depend on the other nodes'."""
    __slots__ = ("weight",)

    def __init__(self, weight: int = 1) -> None:
        self.weight = weight

    def score(self, pod: PodInfo, node: NodeInfo) -> int:
        wanted = pod.requests
        cpu = wanted.get(CPU, 0)
        memory = wanted.get(MEMORY, 0)
        if not cpu and not memory:
            return 0
        allocatable = node.allocatable
        requested = node.requested
        cpu_capacity = allocatable.get(CPU, 0)
        memory_capacity = allocatable.get(MEMORY, 0)
        if not cpu_capacity or not memory_capacity:
            # One fraction or none: std 0 (full score), as upstream.
            return MAX_NODE_SCORE
        # Exact int / int division: equals Go's float64(a) / float64(b) for amounts
        # below 2**53, i.e. any real node. No min()/abs(): builtin calls cost more here.
        cpu_fraction = (requested.get(CPU, 0) + cpu) / cpu_capacity
        memory_fraction = (requested.get(MEMORY, 0) + memory) / memory_capacity
        cpu_fraction = cpu_fraction if cpu_fraction < 1.0 else 1.0
        memory_fraction = memory_fraction if memory_fraction < 1.0 else 1.0
        std = (cpu_fraction - memory_fraction) / 2
        std = std if std >= 0 else -std
        return int((1 - std) * MAX_NODE_SCORE)

    def normalize(self, scores: list[int]) -> None:
        """Scores are already 0..100."""
