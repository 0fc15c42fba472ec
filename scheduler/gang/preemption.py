"""Workload-aware preemption: room for a whole gang, taken from whole units.

A gang that cannot be placed searches for victims for all of it at once, on one view
of the cluster (``find_gang_victims``):

- Victims are *units*: a running gang is one unit (it is evicted whole or not at all,
  so it is never left below its ``minCount`` by us) unless its group says single-pod
  disruption is fine (``disruptionMode`` single), in which case each of its pods is a
  unit; a pod outside any gang is its own unit. Only units of strictly lower priority
  than the preemptor gang are candidates (equal priority never preempts).
- With a topology key the gang's members all go to one domain, so the victims all come
  from that domain too; each domain is tried (or only the one the gang already runs
  in) and the one that disrupts least wins.
- In a domain, every candidate unit is removed; if at least ``need`` members then fit
  (placed as the gang cycle places them: largest first, the profile's filters and
  scores), units are added back one by one, most important first (higher priority,
  then longer running; those whose PodDisruptionBudget would be violated first), and
  each one whose return leaves the gang without room is a victim, as upstream's
  reprieve does per node. Room is checked cheaply first: if the last plan's members
  still pass the filters on their planned nodes, the gang fits; only when it does not
  is the gang placed again over the domain (so a search over hundreds of units places
  the gang about once per victim, not once per unit).
- The least disruptive domain: fewest PDB violations, then the lowest highest victim
  priority, the smallest sum of victim priorities, the fewest victim pods, the fewest
  victim units, then the latest start of the most important victims.
- At most ``MAX_VICTIM_PODS`` pods per cycle: a plan that needs more is refused.

Pods nominated elsewhere (of equal or higher priority, not the gang's own) are counted
on their nodes throughout, so a gang never takes room another preemptor is waiting for.

The dry run changes copies of the nodes (``scheduler.framework.recount.DryRun``): each
member is judged on the cluster as the dry run has it, with the victims removed, the
units put back and the members placed before it counted, also by InterPodAffinity and
PodTopologySpread, whose pre-filters count pods across nodes: their counts are moved by
every changed node (upstream's ``AddPod``/``RemovePod``), as the gang cycle, which assumes
each member in the cache before placing the next, will see them. So members with
anti-affinity to each other get a node (or domain) each, a victim whose anti-affinity
keeps the members away (or whom theirs keeps away) counts as making room, and a spread
gang is planned within its skew.

Pure: the caller evicts, nominates and reports (``scheduler.core.gang_preemption``).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from scheduler.framework.cycle import NodesView, Profile, find_feasible, pick_node, run_pre_filters
from scheduler.framework.preemption import Budget, priority, split_by_budget
from scheduler.framework.recount import DryRun
from scheduler.framework.types import ClusterView, FilterPlugin, NodeInfo, PodInfo, Unresolvable
from scheduler.gang.placement import domains, largest_first

MAX_VICTIM_PODS: Final = 256
"""Victim pods one gang may evict in one cycle; a plan needing more is not carried out."""

_MAX_INT32_PLUS_ONE: Final = 2**31
_NOT_STARTED: Final = "\uffff"


@dataclass(frozen=True, slots=True, eq=False)
class Unit:
    """Pods evicted together: a running gang (whole), or one pod."""

    name: str
    """``ns/name`` of the gang or the pod, for messages."""
    pods: tuple[PodInfo, ...]
    priority: int
    gang: bool
    """A gang evicted whole (for messages: "2 gangs (16 pods)")."""

    @property
    def start(self) -> str:
        return min((p.pod.status.start_time or _NOT_STARTED for p in self.pods), default="")


def unit_importance(unit: Unit) -> tuple[int, str]:
    """Most important first: higher priority, then earlier start."""
    return (-unit.priority, unit.start)


@dataclass(slots=True)
class GangVictims:
    """A plan: evict ``units`` (in ``domain``), then ``plan`` places the members."""

    units: list[Unit]
    plan: list[tuple[PodInfo, str]]
    domain: str | None = None
    pdb_violations: int = 0

    @property
    def pods(self) -> list[PodInfo]:
        return [p for unit in self.units for p in unit.pods]

    def disruption(self) -> tuple[int, int, int, int, int, str]:
        """Smaller is better."""
        pods = self.pods
        highest = max((u.priority for u in self.units), default=-(2**31))
        total = sum(priority(p) + _MAX_INT32_PLUS_ONE for p in pods)
        starts = [u.start for u in self.units if u.priority == highest]
        latest = max(starts, default="")
        # Latest start wins: invert the order of the string for "smaller is better".
        inverted = "".join(chr(0x10FFFF - ord(c)) for c in latest)
        return (self.pdb_violations, highest, total, len(pods), len(self.units), inverted)


@dataclass(frozen=True, slots=True)
class NoVictims:
    """Why preemption cannot make room for the gang."""

    message: str


@dataclass(slots=True)
class _Domain:
    name: str | None
    nodes: list[NodeInfo]


def simulate(
    run: DryRun,
    members: Sequence[PodInfo],
    need: int,
    nodes: Sequence[NodeInfo],
    rng: random.Random,
) -> list[tuple[PodInfo, str]] | None:
    """Place members on ``nodes`` (copies of ``run``'s, changed and restored) as the gang
    cycle does, each judged with the members before it counted; the plan when at least
    ``need`` fit, else None."""
    plan: list[tuple[PodInfo, str]] = []
    profile = run.profile
    for pod in largest_first(members):
        node, _ = pick_node(
            profile, pod, nodes, rng, cluster=run.view, pre_filtered=run.pre_filters(pod)
        )
        if node is None:
            continue
        run.add(node.name, pod)
        plan.append((pod, node.name))
    for pod, node_name in plan:
        run.remove(node_name, pod.uid)
    return plan if len(plan) >= need else None


def still_fits(run: DryRun, plan: Sequence[tuple[PodInfo, str]]) -> bool:
    """Whether every member of ``plan`` still passes the filters on its planned node
    (members placed in plan order on ``run``'s copies, which are restored).

    The cheap check of the victim search: a plan that still fits proves the gang has
    room without placing it again over every node."""
    return misfit(run, plan) is None


def misfit(run: DryRun, plan: Sequence[tuple[PodInfo, str]], *, afresh: bool = False) -> str | None:
    """The first member of ``plan`` that does not pass the filters on its planned node,
    and why (``pod ns/m1 on node n3: Insufficient cpu``), or None when every member
    passes (members placed in plan order on ``run``'s copies, which are restored).

    ``afresh``: with the pre-filters run over the cluster as the dry run has it, instead of
    the dry run's recounted ones: a pass over the cluster per member, which checks the
    chosen plan once against what the dry run does not model (a pre-filter counting pods
    across nodes other than InterPodAffinity and PodTopologySpread)."""
    profile = run.profile
    placed: list[tuple[PodInfo, str]] = []
    try:
        for pod, node_name in plan:
            node = run.copies.get(node_name)
            if node is None:
                return f"pod {pod.key}: no node {node_name}"
            filters = run_pre_filters(profile, pod, run.view) if afresh else run.pre_filters(pod)
            if isinstance(filters, Unresolvable):
                return f"pod {pod.key}: {filters.message}"
            fit = find_feasible(profile, pod, [node], None, [*profile.filters, *filters])
            if not fit.feasible:
                return f"pod {pod.key} on node {node_name}: {', '.join(fit.reasons[node_name])}"
            run.add(node_name, pod)
            placed.append((pod, node_name))
        return None
    finally:
        for pod, node_name in placed:
            run.remove(node_name, pod.uid)


def _violating_units(units: Sequence[Unit], budgets: Sequence[Budget]) -> set[int]:
    """Indexes of units any pod of which would violate a PDB if evicted (in this order)."""
    pods = [p for u in units for p in u.pods]
    violating, _ = split_by_budget(pods, budgets)
    bad = {p.uid for p in violating}
    return {i for i, u in enumerate(units) if any(p.uid in bad for p in u.pods)}


@dataclass(slots=True)
class _Search:
    """What every domain's trial shares."""

    profile: Profile
    members: Sequence[PodInfo]
    need: int
    budgets: Sequence[Budget]
    cluster: ClusterView
    held: list[tuple[NodeInfo, list[PodInfo]]]
    """Nodes with pods nominated to them that the gang must leave room for, and those pods."""
    rng: random.Random
    verdicts: dict[str, list[FilterPlugin] | Unresolvable] = field(default_factory=dict)
    """The members' pre-filter verdicts over the cluster, for every trial."""


def _plan_in_domain(
    search: _Search, domain: _Domain, units: Sequence[Unit]
) -> tuple[GangVictims, DryRun] | None:
    """The victims in ``domain`` and the plan, with the dry run left in the state the plan
    is for (the victims removed)."""
    members, need, rng = search.members, search.need, search.rng
    member_uids = {m.uid for m in members}
    names = {n.name for n in domain.nodes}
    # Pods nominated outside the domain are counted too, as the gang cycle holds them in
    # the cache: spread and affinity count pods across domains.
    outside = [n for n, _ in search.held if n.name not in names]
    run = DryRun(search.profile, search.cluster, [*domain.nodes, *outside], search.verdicts)
    for node, pods in search.held:
        for p in pods:
            run.add(node.name, p)
    copies = [run.copies[n.name] for n in domain.nodes]
    located = {uid: node.name for node in copies for uid in node.pods if uid not in member_uids}
    candidates = [u for u in units if any(p.uid in located for p in u.pods)]
    if not candidates:
        return None

    def take(unit: Unit) -> None:
        for p in unit.pods:
            name = located.get(p.uid)
            if name is not None:
                run.remove(name, p.uid)

    def put(unit: Unit) -> None:
        for p in unit.pods:
            name = located.get(p.uid)
            if name is not None:
                run.add(name, p)

    for unit in candidates:
        take(unit)
    plan = simulate(run, members, need, copies, rng)
    if plan is None:
        return None
    ordered = sorted(candidates, key=unit_importance)
    bad = _violating_units(ordered, search.budgets)
    violating = [u for i, u in enumerate(ordered) if i in bad]
    fine = [u for i, u in enumerate(ordered) if i not in bad]
    victims: list[Unit] = []
    violations = 0
    for unit in [*violating, *fine]:
        put(unit)
        # Most units are nowhere near the plan: check the last plan on its own nodes
        # before placing the gang again over the whole domain.
        if still_fits(run, plan):
            continue
        again = simulate(run, members, need, copies, rng)
        if again is not None:
            plan = again
            continue
        take(unit)
        victims.append(unit)
        violations += any(unit is v for v in violating)
    # The placement the gang cycle would make on the final state; the last plan that
    # fitted still fits there if the greedy placement does not.
    plan = simulate(run, members, need, copies, rng) or plan
    victims.sort(key=unit_importance)
    return GangVictims(victims, plan, domain.name, violations), run


def find_gang_victims(
    profile: Profile,
    members: Sequence[PodInfo],
    need: int,
    gang_priority: int,
    nodes: Sequence[NodeInfo],
    units: Sequence[Unit],
    budgets: Sequence[Budget],
    rng: random.Random,
    *,
    topology_key: str | None = None,
    domain: str | None = None,
    nominated: Callable[[str], Sequence[PodInfo]] = lambda _: (),
    max_victim_pods: int = MAX_VICTIM_PODS,
) -> GangVictims | NoVictims:
    """The least disruptive set of lower-priority units whose eviction lets ``need``
    members fit (in one domain of ``topology_key``, ``domain`` if the gang runs there)."""
    lower = [u for u in units if u.priority < gang_priority]
    if not lower:
        return NoVictims(f"no pods of lower priority than {gang_priority} to preempt")
    if topology_key is None:
        trials = [_Domain(None, list(nodes))]
    else:
        by_domain = domains(nodes, topology_key)
        names = [domain] if domain is not None else sorted(by_domain)
        trials = [_Domain(name, by_domain.get(name, [])) for name in names]
    member_uids = {m.uid for m in members}
    held = [
        (node, pods)
        for node in nodes
        if (pods := [p for p in nominated(node.name) if p.uid not in member_uids])
    ]
    cluster = profile.cluster or NodesView(nodes)
    search = _Search(profile, members, need, budgets, cluster, held, rng)
    best: tuple[GangVictims, DryRun] | None = None
    too_many = 0
    for trial in trials:
        planned = _plan_in_domain(search, trial, lower)
        if planned is None:
            continue
        found = planned[0]
        if not found.units:
            # The gang cycle did not place the gang, yet the dry run does without evicting
            # anything (a tie broken otherwise, a filter it cannot see across nodes):
            # evicting pods is not what the gang waits for, so none are.
            at = f" in {topology_key}={trial.name}" if topology_key else ""
            return NoVictims(
                f"preemption's dry run places {need} pods{at} without evicting any pod; "
                "nothing is preempted"
            )
        if len(found.pods) > max_victim_pods:
            too_many = len(found.pods)
            continue
        if best is None or found.disruption() < best[0].disruption():
            best = planned
    if best is not None:
        found, run = best
        wrong = misfit(run, found.plan, afresh=True)
        if wrong is not None:  # never evict for a plan the gang cycle would refuse
            return NoVictims(
                f"preemption's plan fails the filters run afresh ({wrong}); nothing is preempted"
            )
        return found
    if too_many:
        return NoVictims(
            f"preemption would evict {too_many} pods, more than {max_victim_pods} at once"
        )
    where = f" in any {topology_key} domain" if topology_key and domain is None else ""
    if topology_key and domain is not None:
        where = f" in {topology_key}={domain}"
    return NoVictims(
        f"evicting every pod of lower priority than {gang_priority}{where} would not make "
        f"room for {need} pods"
    )


def describe(victims: GangVictims, gang_priority: int, need: int, topology_key: str | None) -> str:
    """``preempting 2 gangs (16 pods) of priority 100 in rack=r3 to place 8 pods``."""
    gangs = [u for u in victims.units if u.gang]
    singles = [u for u in victims.units if not u.gang]
    parts = []
    if gangs:
        count = sum(len(u.pods) for u in gangs)
        parts.append(f"{len(gangs)} gang{'s' if len(gangs) != 1 else ''} ({count} pods)")
    if singles:
        parts.append(f"{len(singles)} pod{'s' if len(singles) != 1 else ''}")
    levels = sorted({u.priority for u in victims.units})
    level = (
        f"of priority {levels[0]}"
        if len(levels) == 1
        else f"of priority {levels[0]} to {levels[-1]}"
    )
    where = f" in {topology_key}={victims.domain}" if topology_key and victims.domain else ""
    return f"preempting {' and '.join(parts)} {level}{where} to place {need} pods"


def planned_nodes(victims: GangVictims) -> Mapping[str, str]:
    """member uid -> the node the plan has for it."""
    return {pod.uid: node for pod, node in victims.plan}
