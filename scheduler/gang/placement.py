"""Nodes for a whole gang, against one view of the cluster, all or nothing.

Members are placed one after another (largest first), each counted on its node
(assumed in the cache) so the next one sees the capacity taken. If fewer than
``need`` find a node, every assumption is rolled back: nothing stays reserved.
With a topology key every member lands in one domain (one value of that node
label).

What a pass costs grows with domains, not with members times nodes:

1. **Capacity first, once per pass.** For every domain the free capacity of the
   nodes the gang may use at all is summed up, per resource the gang asks and in
   pod slots. A node the gang may use passes the node-level filters
   (``NODE_LEVEL_FILTERS``: unschedulable, nodeName, taints, node selector and
   affinity) for at least one kind of member; one member per kind is asked (members
   of a gang usually share one signature). A domain that cannot hold ``need``
   members by these sums, or by a per-node count of how many members could fit at
   most, is *pruned*: skipped without a trial, its shortfall recorded.
2. **Best-first.** The other domains are tried tightest first (the least free
   capacity relative to the gang's request, then by name), so the first domain that
   holds the gang is the one we want: the pass stops there. No trial is rolled back
   and redone.
3. **Early stop.** A domain's trial ends at the first member that finds no node once
   the members placed plus those not yet tried are fewer than ``need``.
4. Identical members share one filter and score pass per node through the signature
   cache (``framework/batching.py``): a trial costs one node re-evaluated per member.

The work is a generator (``gang_steps``) that yields between domains and between
members; ``place_gang`` runs it to the end at once, ``run_steps_async`` hands the
event loop back every few milliseconds. The caller of the async form keeps watch
events from changing the cache until it has committed or abandoned the result
(``core``'s event hold): the only other writers of the cache on our loop are our
own bindings, which free capacity or assume against the same, current cache.

The pass returns a ``GangPlacement``: the members placed, or per domain what it is
short of (``DomainShortfall``), for the message and for deciding which cluster
events can make the gang fit (``gang/retry.py``).
"""

from __future__ import annotations

import asyncio
import bisect
import itertools
import random
import time
from collections import Counter
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from typing import Final, TypeVar

import msgspec

from scheduler.cache.cluster_cache import ClusterCache
from scheduler.framework.batching import SignatureCache
from scheduler.framework.cycle import Feasibility, NodeWalk, Profile, find_feasible, pick_node
from scheduler.framework.types import FilterPlugin, NodeInfo, PodInfo, ResourceList
from scheduler.model.quantity import PODS

T = TypeVar("T")

Steps = Generator[None, None, T]
"""Work that yields between steps (a domain, a member) and returns its result."""

NODE_LEVEL_FILTERS: Final = frozenset(
    {"NodeUnschedulable", "NodeName", "TaintToleration", "NodeAffinity"}
)
"""Filters whose verdict depends on the node object and the pod's spec only, never on
the other pods: a node one of them rejects for every kind of member holds none of the
gang. Filters not named here (resources, ports, anything added later) are left to the
trial, so pruning never rejects a domain a trial could fill."""

YIELD_EVERY_SECONDS: Final = 0.005
"""How long ``run_steps_async`` works before it hands the event loop back."""


@dataclass(slots=True)
class DomainShortfall:
    """Why one domain (``None``: the whole cluster) cannot hold the gang."""

    domain: str | None
    nodes: int
    usable: int
    """Nodes passing the node-level filters for some member."""
    short: ResourceList
    """Per resource (``pods``: slots), how much more free capacity the ``need`` smallest
    members ask than the usable nodes have; empty when the sums would do."""
    at_most: int
    """An upper bound on the members that could fit (from the free capacity)."""
    fit: int | None = None
    """Members a trial placed; None when the domain was pruned without one."""
    tried: int = 0
    """Members the trial tried (fewer than all when it stopped early)."""
    failure: Feasibility | None = None
    """Filter results of the trial's first member that found no node; for a domain
    without usable nodes, the node-level filters' reasons."""

    @property
    def reach(self) -> int:
        """How many members this domain holds (tried) or could hold at most (pruned)."""
        return self.fit if self.fit is not None else self.at_most


@dataclass(slots=True)
class GangPlacement:
    placed: list[tuple[PodInfo, str]] = field(default_factory=list)
    unplaced: list[PodInfo] = field(default_factory=list)
    failure: Feasibility | None = None
    """Filter results of the first member that found no node (best tried domain)."""
    domain: str | None = None
    nodes_considered: int = 0
    tried: int = 0
    """Members tried in the trial ``placed`` comes from."""
    shortfalls: list[DomainShortfall] = field(default_factory=list)
    """On failure: every domain considered, and what it is short of."""
    domains_pruned: int = 0
    domains_tried: int = 0

    def ok(self, need: int) -> bool:
        return len(self.placed) >= need

    def best_shortfall(self) -> DomainShortfall | None:
        """The domain closest to holding the gang: the most members, then the smallest
        shortfall relative to what the gang asks, then by name."""
        if not self.shortfalls:
            return None
        return min(self.shortfalls, key=_closeness)


def _closeness(s: DomainShortfall) -> tuple[int, int, int, str]:
    return (-s.reach, sum(s.short.values()), -s.usable, s.domain or "")


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


# -- what the gang asks -------------------------------------------------------------------


@dataclass(slots=True)
class GangDemand:
    """What a gang asks of any domain, computed once per pass."""

    need: int
    members: int
    total: ResourceList
    """Per resource: what the ``need`` smallest members ask together (least possible)."""
    prefix: dict[str, list[int]]
    """Per resource: running sums of the members' requests, smallest first."""
    smallest: ResourceList
    """Per resource: the smallest request of any member (resources every member asks)."""
    kinds: list[PodInfo]
    """One member per kind, as the node-level filters see them."""


def _kind(pod: PodInfo) -> bytes:
    if pod.signature is not None:
        return pod.signature
    spec = pod.pod.spec
    node_affinity = spec.affinity.node_affinity if spec.affinity else None
    return msgspec.json.encode(
        (spec.node_name, spec.node_selector, node_affinity, spec.tolerations)
    )


def demand(pods: Sequence[PodInfo], need: int) -> GangDemand:
    resources = sorted({r for p in pods for r, amount in p.requests.items() if amount > 0})
    prefix: dict[str, list[int]] = {}
    total: ResourceList = {}
    smallest: ResourceList = {}
    for resource in resources:
        amounts = sorted(p.requests.get(resource, 0) for p in pods)
        prefix[resource] = list(itertools.accumulate(amounts))
        if need > 0:
            total[resource] = prefix[resource][min(need, len(amounts)) - 1]
        if amounts[0] > 0:
            smallest[resource] = amounts[0]
    kinds: dict[bytes, PodInfo] = {}
    for pod in pods:
        kinds.setdefault(_kind(pod), pod)
    return GangDemand(need, len(pods), total, prefix, smallest, list(kinds.values()))


# -- what a domain offers -------------------------------------------------------------------


@dataclass(slots=True)
class DomainCapacity:
    name: str | None
    nodes: Sequence[NodeInfo]
    usable: int = 0
    free: ResourceList = field(default_factory=dict)
    """Per resource the gang asks: free amounts summed over usable nodes."""
    slots: int = 0
    """Free pod slots on usable nodes."""
    per_node_bound: int = 0
    """Sum over usable nodes of how many of the smallest members each could take."""
    rejected: Feasibility = field(default_factory=Feasibility)
    """Node-level reasons for the nodes no member may use."""

    def at_most(self, gang: GangDemand) -> int:
        bound = min(gang.members, self.slots, self.per_node_bound)
        for resource, sums in gang.prefix.items():
            bound = min(bound, bisect.bisect_right(sums, self.free.get(resource, 0)))
        return bound

    def short(self, gang: GangDemand) -> ResourceList:
        short = {
            resource: amount - self.free.get(resource, 0)
            for resource, amount in gang.total.items()
            if amount > self.free.get(resource, 0)
        }
        if gang.need > self.slots:
            short[PODS] = gang.need - self.slots
        return short

    def looseness(self, gang: GangDemand) -> float:
        """Free capacity in units of what the gang asks: smaller is a tighter fit."""
        return sum(
            self.free.get(resource, 0) / amount for resource, amount in gang.total.items() if amount
        )


def _node_level(profile: Profile) -> list[FilterPlugin]:
    return [p for p in profile.filters if p.name in NODE_LEVEL_FILTERS]


def capacity(
    name: str | None, nodes: Sequence[NodeInfo], gang: GangDemand, filters: Sequence[FilterPlugin]
) -> DomainCapacity:
    """What ``nodes`` offer the gang: one node-level check per node and kind of member."""
    cap = DomainCapacity(name, nodes)
    free = dict.fromkeys(gang.total, 0)
    for node in nodes:
        reasons = _first_rejection(filters, gang.kinds, node)
        if reasons is not None:
            cap.rejected.reasons[node.name] = reasons[1]
            cap.rejected.rejected_by[node.name] = reasons[0]
            continue
        cap.usable += 1
        slots = max(0, node.allocatable.get(PODS, 0) - len(node.pods))
        cap.slots += slots
        fits = slots
        for resource in free:
            left = node.allocatable.get(resource, 0) - node.requested.get(resource, 0)
            left = max(0, left)
            free[resource] += left
            smallest = gang.smallest.get(resource)
            if smallest:
                fits = min(fits, left // smallest)
        cap.per_node_bound += fits
    cap.free = free
    return cap


def _first_rejection(
    filters: Sequence[FilterPlugin], kinds: Sequence[PodInfo], node: NodeInfo
) -> tuple[str, tuple[str, ...]] | None:
    """None if some kind of member passes every node-level filter on ``node``; otherwise
    the first kind's rejection (plugin name, reasons)."""
    first: tuple[str, tuple[str, ...]] | None = None
    for pod in kinds:
        for plugin in filters:
            reasons = plugin.filter(pod, node)
            if reasons is not None:
                if first is None:
                    first = (plugin.name, reasons)
                break
        else:
            return None
    return first


# -- trials -----------------------------------------------------------------------------------


def member_steps(
    cache: ClusterCache,
    profile: Profile,
    ordered: Sequence[PodInfo],
    nodes: Sequence[NodeInfo],
    need: int,
    rng: random.Random,
    batch: SignatureCache | None = None,
    walk: NodeWalk | None = None,
) -> Steps[GangPlacement]:
    """Place ``ordered`` members in turn (yielding after each); stop at a member that
    finds no node once ``need`` can no longer be reached. The assumptions stay only if
    ``need`` were placed."""
    result = GangPlacement(nodes_considered=len(nodes))
    remaining = len(ordered)
    for pod in ordered:
        remaining -= 1
        result.tried += 1
        node, fit = pick_node(profile, pod, nodes, rng, batch, walk)
        if node is None:
            result.unplaced.append(pod)
            if result.failure is None:
                result.failure = fit
            if len(result.placed) + remaining < need:
                result.unplaced += ordered[result.tried :]
                break
        else:
            cache.assume(pod, node.name)
            result.placed.append((pod, node.name))
        yield
    if not result.ok(need):
        rollback(cache, result)
    return result


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
    return run_steps(
        member_steps(cache, profile, largest_first(pods), nodes, need, rng, batch, walk)
    )


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


def _size(pod: PodInfo) -> tuple[int, int]:
    return pod.requests.get("cpu", 0), pod.requests.get("memory", 0)


def candidates(
    nodes: Sequence[NodeInfo], topology_key: str | None, domain: str | None
) -> list[tuple[str | None, Sequence[NodeInfo]]]:
    """The domains a gang may go to: the whole cluster, the one it runs in, or each."""
    if topology_key is None:
        return [(None, nodes)]
    by_domain = domains(nodes, topology_key)
    if domain is not None:
        return [(domain, by_domain.get(domain, []))]
    return [(value, by_domain[value]) for value in sorted(by_domain)]


def gang_steps(
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
) -> Steps[GangPlacement]:
    """``place_gang``'s work, yielding between domains and members."""
    gang = demand(pods, need)
    filters = _node_level(profile)
    considered = candidates(cache.nodes(), topology_key, domain)
    shortfalls: list[DomainShortfall] = []
    open_: list[tuple[float, str, DomainCapacity]] = []
    smallest = min(pods, key=_size) if pods else None
    for name, nodes in considered:
        cap = capacity(name, nodes, gang, filters)
        at_most = cap.at_most(gang)
        if at_most < need:
            failure = cap.rejected if cap.usable == 0 else None
            if failure is None and at_most == 0 and smallest is not None:
                # Not one member fits on any node here: say why per node, in
                # kube-scheduler's words ("2 Insufficient cpu"), as a trial would have.
                failure = find_feasible(profile, smallest, cap.nodes)
            shortfalls.append(
                DomainShortfall(
                    name, len(nodes), cap.usable, cap.short(gang), at_most, failure=failure
                )
            )
        else:
            open_.append((cap.looseness(gang), name or "", cap))
        yield
    open_.sort(key=lambda entry: entry[:2])
    ordered = largest_first(pods)
    best_failure: GangPlacement | None = None
    tried = 0
    for _, _, cap in open_:
        tried += 1
        trial = yield from member_steps(cache, profile, ordered, cap.nodes, need, rng, batch, walk)
        trial.domain = cap.name
        trial.domains_pruned = len(shortfalls)
        trial.domains_tried = tried
        if trial.ok(need):
            # Tightest first: no later domain can be a better fit.
            return trial
        shortfalls.append(
            DomainShortfall(
                cap.name,
                len(cap.nodes),
                cap.usable,
                cap.short(gang),
                cap.at_most(gang),
                fit=len(trial.placed),
                tried=trial.tried,
                failure=trial.failure,
            )
        )
        if best_failure is None or len(trial.placed) > len(best_failure.placed):
            best_failure = trial
    result = best_failure or GangPlacement(unplaced=list(pods))
    result.domain = domain
    result.nodes_considered = sum(len(nodes) for _, nodes in considered)
    result.shortfalls = shortfalls
    result.domains_pruned = len(shortfalls) - tried
    result.domains_tried = tried
    if best_failure is None:
        result.unplaced = list(pods)
    return result


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
    (the gang already runs there), else the tightest one that holds the gang.
    """
    return run_steps(
        gang_steps(
            cache,
            profile,
            pods,
            need,
            rng,
            topology_key=topology_key,
            domain=domain,
            batch=batch,
            walk=walk,
        )
    )


def run_steps(steps: Steps[T]) -> T:
    """Run a generator of steps to the end, at once."""
    while True:
        try:
            next(steps)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]


class Pacer:
    """Long work in slices: ``await pacer.turn()`` between items hands the event loop back
    once ``budget`` seconds of work have passed since it last did."""

    __slots__ = ("_started", "budget", "clock")

    def __init__(
        self, budget: float = YIELD_EVERY_SECONDS, clock: Callable[[], float] = time.perf_counter
    ) -> None:
        self.budget = budget
        self.clock = clock
        self._started = clock()

    async def turn(self) -> None:
        if self.clock() - self._started >= self.budget:
            await asyncio.sleep(0)
            self._started = self.clock()


async def run_steps_async(
    steps: Steps[T],
    budget: float = YIELD_EVERY_SECONDS,
    clock: Callable[[], float] = time.perf_counter,
) -> T:
    """Run a generator of steps, yielding to the event loop after ``budget`` seconds."""
    pacer = Pacer(budget, clock)
    while True:
        try:
            next(steps)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]
        await pacer.turn()
