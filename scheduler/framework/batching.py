"""Feasibility and scores computed once per kind of pod (opportunistic batching).

Pods with equal signatures (``signature.py``) get equal filter and score results on a
node in a given state. For each signature the cache keeps every node's result, stamped
with the node's ``generation``, and the weighted totals of the feasible nodes in a heap.
For the next pod of the same signature only nodes whose generation moved (a watch event,
or a pod we assumed there a moment ago) are evaluated again and pushed with their new
totals; outdated heap entries are skipped when they surface. A gang of identical pods
thus costs one pass of the plugins over the nodes, then one node per member, and the
best node is found in O(log n).

Totals depend on the whole feasible set only through each plugin's normalisation, which
for our plugins scales by the highest raw score (NodeAffinity, TaintToleration; the
resource scores are already 0..100). While those highest values stay put a changed
node's total is computed alone; when one moves, every total is recomputed from the
cached results (no plugin runs again).

The chosen node is always a best-scored feasible node, exactly as without the cache;
among equal ones the choice follows a random order fixed per signature instead of a
fresh draw. ``tests/unit/test_batching.py`` checks every decision against a full
evaluation, on random clusters, pod mixes, gangs, deletions and node changes.
"""

from __future__ import annotations

import heapq
import random
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


@dataclass(slots=True, eq=False)
class Ranking:
    nodes: Sequence[NodeInfo] | None = None
    """The node list the ranking was built for (the cache hands out the same list object
    until nodes come or go)."""
    generations: list[int] = field(default_factory=list)
    results: list[NodeResult] = field(default_factory=list)
    tiebreak: list[int] = field(default_factory=list)
    highest: list[int] = field(default_factory=list)
    """Per score plugin: the highest raw score among feasible nodes."""
    heap: list[tuple[int, int, int, int]] = field(default_factory=list)
    """(-total, tiebreak, node index, generation)."""


@dataclass(slots=True)
class SignatureCache:
    max_signatures: int = MAX_SIGNATURES
    reused: int = 0
    computed: int = 0
    _entries: OrderedDict[bytes, Ranking] = field(default_factory=OrderedDict)

    def ranking(self, signature: bytes) -> Ranking:
        entry = self._entries.get(signature)
        if entry is None:
            entry = Ranking()
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


def _total(scores: Sequence[ScorePlugin], raw: tuple[int, ...], highest: list[int]) -> int:
    total = 0
    for plugin, value, top in zip(scores, raw, highest, strict=True):
        column = [value, top]
        plugin.normalize(column)
        total += column[0] * plugin.weight
    return total


def _highest(results: Sequence[NodeResult], count: int) -> list[int]:
    highest = [0] * count
    for result in results:
        if result.reasons is None:
            for k, value in enumerate(result.scores):
                highest[k] = max(highest[k], value)
    return highest


def _rebuild_heap(ranking: Ranking, scores: Sequence[ScorePlugin]) -> None:
    ranking.highest = _highest(ranking.results, len(scores))
    columns: list[list[int]] = [[] for _ in scores]
    feasible = [i for i, r in enumerate(ranking.results) if r.reasons is None]
    for i in feasible:
        for column, value in zip(columns, ranking.results[i].scores, strict=True):
            column.append(value)
    totals = [0] * len(feasible)
    for plugin, column in zip(scores, columns, strict=True):
        plugin.normalize(column)
        for j, value in enumerate(column):
            totals[j] += value * plugin.weight
    ranking.heap = [
        (-totals[j], ranking.tiebreak[i], i, ranking.generations[i]) for j, i in enumerate(feasible)
    ]
    heapq.heapify(ranking.heap)


def rank_pick(
    filters: Sequence[FilterPlugin],
    scores: Sequence[ScorePlugin],
    pod: PodInfo,
    nodes: Sequence[NodeInfo],
    cache: SignatureCache,
    rng: random.Random,
) -> tuple[int | None, Ranking]:
    """Index in ``nodes`` of a best feasible node for ``pod`` (None if none is feasible),
    and the ranking, whose ``results`` hold every node's verdict."""
    assert pod.signature is not None
    ranking = cache.ranking(pod.signature)
    if ranking.nodes is not nodes:
        cache.computed += len(nodes)
        ranking.nodes = nodes
        ranking.generations = [n.generation for n in nodes]
        ranking.results = [evaluate_node(filters, scores, pod, n) for n in nodes]
        ranking.tiebreak = list(range(len(nodes)))
        rng.shuffle(ranking.tiebreak)
        _rebuild_heap(ranking, scores)
    else:
        generations = ranking.generations
        changed = [i for i, node in enumerate(nodes) if node.generation != generations[i]]
        cache.computed += len(changed)
        cache.reused += len(nodes) - len(changed)
        rebuild = False
        highest = ranking.highest
        for i in changed:
            node = nodes[i]
            old = ranking.results[i]
            new = evaluate_node(filters, scores, pod, node)
            ranking.results[i] = new
            generations[i] = node.generation
            if not rebuild and _moves_highest(old, new, highest, scores):
                rebuild = True
            if not rebuild and new.reasons is None:
                entry = (
                    -_total(scores, new.scores, highest),
                    ranking.tiebreak[i],
                    i,
                    node.generation,
                )
                heapq.heappush(ranking.heap, entry)
        if rebuild or len(ranking.heap) > 4 * len(nodes) + 64:
            _rebuild_heap(ranking, scores)
    heap = ranking.heap
    while heap:
        _, _, i, generation = heap[0]
        if ranking.generations[i] == generation and ranking.results[i].reasons is None:
            return i, ranking
        heapq.heappop(heap)
    return None, ranking


def _moves_highest(
    old: NodeResult, new: NodeResult, highest: list[int], scores: Sequence[ScorePlugin]
) -> bool:
    """Whether this node's change can move the highest raw score of a plugin whose
    normalisation scales by it (plugins marked ``scores_are_absolute`` do not)."""
    for k, top in enumerate(highest):
        if scores[k].scores_are_absolute:
            continue
        before = old.scores[k] if old.reasons is None else None
        after = new.scores[k] if new.reasons is None else None
        if after is not None and after > top:
            return True
        if before is not None and before == top and top > 0 and after != before:
            return True
    return False
