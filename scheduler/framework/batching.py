"""Feasibility and scores computed once per kind of pod (opportunistic batching).

Pods with equal signatures (``signature.py``) get equal filter and score
results on a node in a given state. For each signature the cache keeps, per
node, the result together with the node's ``generation``; a node whose
generation moved since (a watch event, or a pod we assumed there) is
evaluated again, every other node's result is reused. A gang of identical
pods thus costs one pass of the plugins over the nodes, then one node per
member (the node that took the previous member).

Only the per-node raw results are cached: normalisation and the choice among
ties run on every cycle, exactly as without the cache, so placements are the
same with the cache on or off (the property test checks this).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field

from scheduler.framework.types import FilterPlugin, NodeInfo, PodInfo, ScorePlugin

MAX_SIGNATURES = 128
"""Kinds of pods remembered (least recently used go first); each holds one entry per node."""


@dataclass(slots=True)
class NodeResult:
    generation: int
    reasons: tuple[str, ...] | None
    """None when the node passes every filter."""
    rejected_by: str = ""
    scores: tuple[int, ...] = ()
    """Raw score per score plugin, in profile order (feasible nodes only)."""


@dataclass(slots=True)
class SignatureCache:
    max_signatures: int = MAX_SIGNATURES
    reused: int = 0
    computed: int = 0
    _entries: OrderedDict[bytes, dict[str, NodeResult]] = field(default_factory=OrderedDict)

    def results(self, signature: bytes) -> dict[str, NodeResult]:
        entry = self._entries.get(signature)
        if entry is None:
            entry = {}
            self._entries[signature] = entry
            if len(self._entries) > self.max_signatures:
                self._entries.popitem(last=False)
        else:
            self._entries.move_to_end(signature)
        return entry

    def clear(self) -> None:
        self._entries.clear()


def evaluate_node(
    filters: Sequence[FilterPlugin], scores: Sequence[ScorePlugin], pod: PodInfo, node: NodeInfo
) -> NodeResult:
    for plugin in filters:
        reasons = plugin.filter(pod, node)
        if reasons is not None:
            return NodeResult(node.generation, reasons, plugin.name)
    return NodeResult(node.generation, None, "", tuple(p.score(pod, node) for p in scores))


def node_results(
    filters: Sequence[FilterPlugin],
    scores: Sequence[ScorePlugin],
    pod: PodInfo,
    nodes: Sequence[NodeInfo],
    cache: SignatureCache,
) -> list[NodeResult]:
    """Every node's result for this pod, reusing what is still valid for its signature."""
    assert pod.signature is not None
    known = cache.results(pod.signature)
    out = []
    reused = 0
    for node in nodes:
        result = known.get(node.name)
        if result is None or result.generation != node.generation:
            result = evaluate_node(filters, scores, pod, node)
            known[node.name] = result
        else:
            reused += 1
        out.append(result)
    cache.reused += reused
    cache.computed += len(nodes) - reused
    return out
