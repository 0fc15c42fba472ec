"""NodeAffinity: ``spec.nodeSelector`` and node affinity, with kube-scheduler's semantics.

The rules, and the compiled matchers this plugin runs, are in
``scheduler.framework.node_selectors``.
"""

from __future__ import annotations

from typing import ClassVar, Final

from scheduler.framework.node_selectors import compile_preferred, compile_required
from scheduler.framework.types import MAX_NODE_SCORE, NodeInfo, PodInfo

REASON_POD: Final = "node(s) didn't match Pod's node affinity/selector"


class NodeAffinity:
    name: ClassVar[str] = "NodeAffinity"
    scores_are_absolute: ClassVar[bool] = False
    """Normalised by the best node's raw score."""
    __slots__ = ("weight",)

    def __init__(self, weight: int = 2) -> None:
        self.weight = weight

    def filter(self, pod: PodInfo, node: NodeInfo) -> tuple[str, ...] | None:
        matches = pod.node_affinity
        if matches is None:
            # A PodInfo not built by make_pod_info: compile once and keep it.
            matches = pod.node_affinity = compile_required(pod.pod)
        return None if matches(node.node) else _REASONS

    def score(self, pod: PodInfo, node: NodeInfo) -> int:
        prefers = pod.node_preference
        if prefers is None:
            prefers = pod.node_preference = compile_preferred(pod.pod)
        return prefers(node.node)

    def normalize(self, scores: list[int]) -> None:
        # Scaled by the best node; all zero stays zero.
        highest = max(scores, default=0)
        if highest <= 0:
            return
        for i, score in enumerate(scores):
            scores[i] = MAX_NODE_SCORE * score // highest


_REASONS: Final = (REASON_POD,)
