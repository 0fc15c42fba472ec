"""TaintToleration: a node's NoSchedule/NoExecute taints must all be tolerated;
untolerated PreferNoSchedule taints make a node less attractive."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar, Final

from scheduler.framework.types import MAX_NODE_SCORE, NodeInfo, PodInfo
from scheduler.model.objects import Taint, Toleration

_FILTERED_EFFECTS: Final = frozenset({"NoSchedule", "NoExecute"})
_PREFER_NO_SCHEDULE: Final = "PreferNoSchedule"


def tolerates(toleration: Toleration, taint: Taint) -> bool:
    """Upstream's Toleration.ToleratesTaint: an empty effect or key is a wildcard,
    ``Exists`` ignores the value, ``Equal`` (or no operator) compares it."""
    if toleration.effect and toleration.effect != taint.effect:
        return False
    if toleration.key and toleration.key != taint.key:
        return False
    operator = toleration.operator
    if operator in ("", "Equal"):
        return toleration.value == taint.value
    # Gt/Lt are alpha and off by default in v1.35; an unknown operator tolerates nothing.
    return operator == "Exists"


def tolerated(tolerations: Sequence[Toleration], taint: Taint) -> bool:
    # A plain loop rather than any(): it runs per pod x node x taint.
    for toleration in tolerations:  # noqa: SIM110
        if tolerates(toleration, taint):
            return True
    return False


UNTOLERATED_TAINT: Final = "node(s) had untolerated taint(s)"
"""v1.35's wording: the taint is not named (earlier releases printed ``{key: value}``; a
taint's value may be more than an admin wants every pod's owner to read)."""
_UNTOLERATED: Final = (UNTOLERATED_TAINT,)


class TaintToleration:
    name: ClassVar[str] = "TaintToleration"
    scores_are_absolute: ClassVar[bool] = False
    """Normalised by the best node's raw score."""
    __slots__ = ("weight",)

    def __init__(self, weight: int = 3) -> None:
        self.weight = weight

    def filter(self, pod: PodInfo, node: NodeInfo) -> tuple[str, ...] | None:
        taints = node.node.spec.taints
        if not taints:
            return None
        tolerations = pod.pod.spec.tolerations
        for taint in taints:
            if taint.effect in _FILTERED_EFFECTS and not tolerated(tolerations, taint):
                return _UNTOLERATED
        return None

    def score(self, pod: PodInfo, node: NodeInfo) -> int:
        """How many PreferNoSchedule taints the pod does not tolerate (lower is better).

        Upstream first keeps the tolerations whose effect is empty or
        PreferNoSchedule; ``tolerates`` already rejects any other effect for these
        taints, so the full list gives the same count without copying it.
        """
        taints = node.node.spec.taints
        if not taints:
            return 0
        tolerations = pod.pod.spec.tolerations
        count = 0
        for taint in taints:
            if taint.effect == _PREFER_NO_SCHEDULE and not tolerated(tolerations, taint):
                count += 1
        return count

    def normalize(self, scores: list[int]) -> None:
        # Reversed: the node with the most untolerated taints gets 0. Computed as
        # upstream's DefaultNormalizeScore does (100 - 100*s//max), so rounding agrees.
        highest = max(scores, default=0)
        if highest <= 0:
            scores[:] = [MAX_NODE_SCORE] * len(scores)
            return
        for i, score in enumerate(scores):
            scores[i] = MAX_NODE_SCORE - MAX_NODE_SCORE * score // highest
