"""DefaultPreemption's decisions (kube-scheduler v1.35), as pure functions over
``PodInfo`` and ``NodeInfo``.

When no node fits a pod (PostFilter), preemption looks for a node where evicting
pods of lower priority makes room:

1. The preemptor must be eligible: not ``preemptionPolicy: Never``
   (``preemption: not eligible due to preemptionPolicy=Never.``), and not already
   waiting for its victims on its nominated node (``not eligible due to a terminating
   pod on the nominated node.``).
2. Only nodes whose failure removing pods can fix are tried: a node rejected by
   NodeName, NodeUnschedulable, TaintToleration, NodeAffinity, VolumeBinding or
   VolumeZone, by NodeResourcesFit for a request larger than the node's whole
   allocatable amount, by InterPodAffinity for its required affinity (removing pods
   cannot add the pods it wants), by PodTopologySpread for a missing topology label
   (upstream's ``UnschedulableAndUnresolvable``), or by a pre-filter for every node, is
   not.
3. Per node (``select_victims_on_node``) every lower-priority pod is removed; if the
   preemptor then fits, they are added back one by one, most important first (higher
   priority, then longer running), those whose PodDisruptionBudget would be violated
   first, and each one whose return makes the preemptor not fit is a victim. The
   preemptor is filtered with the pods nominated to the node of equal or higher
   priority counted there (the nominator), as in every scheduling cycle.
4. Among candidate nodes (``pick_one_node``): fewest PDB violations, then the lowest
   highest-priority victim, the smallest sum of victim priorities, the fewest victims,
   the latest start of the highest-priority victims, then the first one.

When no node qualifies, the reason reads as upstream's, appended to the
FailedScheduling message after the DynamicResources plugin's (``post_filter_message``):
``no new claims to deallocate, preemption: 0/3 nodes are available: 1 Preemption is not
helpful for scheduling, 2 No preemption victims found for incoming pod.``

Nothing here talks to the API server: the caller nominates the node, deletes the
victims and keeps the nominator (``scheduler.core.preemption``). Departures from
upstream: candidate nodes are tried one after another, not in parallel (the result
is the same for the same starting offset), and InterPodAffinity's and
PodTopologySpread's per-domain counts are not updated in place as victims are removed
(upstream's ``AddPod``/``RemovePod`` extensions, pod by pod):
``scheduler.framework.recount.Recounted`` moves them by the node's difference between the
cluster and its dry-run state, which gives the same counts.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from scheduler.framework.diagnosis import unschedulable_message
from scheduler.framework.nodeinfo import add_pod, copy_node_info, remove_pod
from scheduler.framework.plugins.inter_pod_affinity import AFFINITY_REASON
from scheduler.framework.plugins.pod_topology_spread import MISSING_LABEL_REASON
from scheduler.framework.types import FilterPlugin, NodeInfo, PodInfo
from scheduler.model.policy import PdbSelector, PodDisruptionBudget

UNRESOLVABLE_PLUGINS: Final = frozenset(
    {
        "NodeName",
        "NodeUnschedulable",
        "TaintToleration",
        "NodeAffinity",
        "VolumeBinding",
        "VolumeZone",
    }
)
"""Filters whose rejection upstream reports as ``UnschedulableAndUnresolvable``: evicting
pods cannot make such a node fit, so preemption does not try it."""

UNRESOLVABLE_REASONS: Final = frozenset({AFFINITY_REASON, MISSING_LABEL_REASON})
"""Reasons other filters report as ``UnschedulableAndUnresolvable`` (their other reasons,
anti-affinity or skew, evicting pods may fix)."""

NOT_HELPFUL: Final = "Preemption is not helpful for scheduling"
NO_VICTIMS: Final = "No preemption victims found for incoming pod"
NEVER: Final = "not eligible due to preemptionPolicy=Never."
TERMINATING: Final = "not eligible due to a terminating pod on the nominated node."
PREFIX: Final = "preemption: "
NO_CLAIMS: Final = "no new claims to deallocate"
"""What kube-scheduler v1.35's DynamicResources PostFilter says for a pod with no resource
claims (it runs before DefaultPreemption); its reasons and preemption's are joined with
", " into the FailedScheduling message, so ours carries it too (pods with claims are
refused before this point)."""

DRA_STATE_MISSING: Final = "not found"
"""kube-scheduler v1.35's whole PostFilter tail for a pod rejected by a pre-filter that runs
before DynamicResources' (the volume plugins'): that plugin's PostFilter then finds no state
of its own and fails with the cycle state's ``not found``, and DefaultPreemption never runs
(``0/3 nodes are available: persistentvolumeclaim "data" not found. not found``)."""
BEFORE_DYNAMIC_RESOURCES: Final = frozenset(
    {"VolumeRestrictions", "NodeVolumeLimits", "VolumeBinding", "VolumeZone"}
)

MIN_CANDIDATE_NODES_PERCENTAGE: Final = 10
MIN_CANDIDATE_NODES_ABSOLUTE: Final = 100
"""DefaultPreemptionArgs defaults: how many candidate nodes a dry run looks for."""

DISRUPTION_TARGET: Final = "DisruptionTarget"
PREEMPTION_BY_SCHEDULER: Final = "PreemptionByScheduler"

_MAX_INT32_PLUS_ONE: Final = 2**31
_NOT_STARTED: Final = "\uffff"
"""Sorts after every RFC 3339 time: a pod with no start time counts as started now."""

Nominated = Callable[[str], Sequence[PodInfo]]
Priority = Callable[[PodInfo], int]
"""A pod's priority where nominations are compared: a gang member's is its group's
(``gang.priority``); plain ``priority`` by default."""
"""Node name -> the pods nominated to it (not yet bound)."""


def priority(pod: PodInfo) -> int:
    return pod.pod.spec.priority


def _start(pod: PodInfo) -> str:
    return pod.pod.status.start_time or _NOT_STARTED


def importance(pod: PodInfo) -> tuple[int, str]:
    """Sort key, most important first: higher priority, then earlier start
    (upstream's ``MoreImportantPod``)."""
    return (-priority(pod), _start(pod))


# -- PodDisruptionBudgets ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Budget:
    """A PodDisruptionBudget as preemption reads it."""

    namespace: str
    name: str
    matches: Callable[[Mapping[str, str]], bool] | None
    """None: the budget matches no pod (empty, absent or invalid selector)."""
    allowed: int
    disrupted: frozenset[str]
    """Names of pods the API server has already counted as disrupted."""


@dataclass(frozen=True, slots=True)
class _Requirement:
    key: str
    operator: str
    values: frozenset[str]

    def matches(self, labels: Mapping[str, str]) -> bool:
        value = labels.get(self.key)
        if self.operator == "In":
            return value is not None and value in self.values
        if self.operator == "NotIn":
            return value is None or value not in self.values
        if self.operator == "Exists":
            return value is not None
        return value is None  # DoesNotExist


@dataclass(frozen=True, slots=True)
class _Selector:
    requirements: tuple[_Requirement, ...]

    def __call__(self, labels: Mapping[str, str]) -> bool:
        return all(r.matches(labels) for r in self.requirements)


def _compile_selector(selector: PdbSelector | None) -> Callable[[Mapping[str, str]], bool] | None:
    if selector is None or (not selector.match_labels and not selector.match_expressions):
        return None  # upstream: "A PDB with a nil or empty selector matches nothing."
    requirements = [
        _Requirement(k, "In", frozenset((v,))) for k, v in selector.match_labels.items()
    ]
    for req in selector.match_expressions:
        values = frozenset(req.values)
        valid = (req.operator in ("In", "NotIn") and values) or (
            req.operator in ("Exists", "DoesNotExist") and not values
        )
        if not valid:
            return None  # an invalid selector matches no pod, as upstream skips it
        requirements.append(_Requirement(req.key, req.operator, values))
    return _Selector(tuple(requirements))


def compile_budget(pdb: PodDisruptionBudget) -> Budget:
    meta = pdb.metadata
    return Budget(
        namespace=meta.namespace,
        name=meta.name,
        matches=_compile_selector(pdb.spec.selector),
        allowed=pdb.status.disruptions_allowed,
        disrupted=frozenset(pdb.status.disrupted_pods),
    )


def split_by_budget(
    pods: Sequence[PodInfo], budgets: Sequence[Budget]
) -> tuple[list[PodInfo], list[PodInfo]]:
    """(violating, non-violating), each in the given order: a pod violates when
    evicting it, after the pods before it, takes one of its budgets below zero
    (upstream's ``filterPodsWithPDBViolation``)."""
    allowed = [b.allowed for b in budgets]
    violating: list[PodInfo] = []
    fine: list[PodInfo] = []
    for pod in pods:
        meta = pod.pod.metadata
        violated = False
        if meta.labels:
            for i, budget in enumerate(budgets):
                if budget.namespace != meta.namespace or budget.matches is None:
                    continue
                if not budget.matches(meta.labels) or meta.name in budget.disrupted:
                    continue
                allowed[i] -= 1
                if allowed[i] < 0:
                    violated = True
        (violating if violated else fine).append(pod)
    return violating, fine


# -- filtering with nominated pods ---------------------------------------------------


def run_filters(
    filters: Sequence[FilterPlugin], pod: PodInfo, node: NodeInfo
) -> tuple[str, ...] | None:
    """The first failing filter's reasons, or None when the node passes."""
    for plugin in filters:
        reasons = plugin.filter(pod, node)
        if reasons is not None:
            return reasons
    return None


def nominated_for(
    pod: PodInfo, nominated: Sequence[PodInfo], priority_of: Priority | None = None
) -> list[PodInfo]:
    """The nominated pods the pod must leave room for: equal or higher priority."""
    level = priority_of or priority
    own = level(pod)
    return [p for p in nominated if p.uid != pod.uid and level(p) >= own]


def with_pods(node: NodeInfo, pods: Iterable[PodInfo]) -> NodeInfo:
    """A copy of the node with ``pods`` counted on it."""
    copy = copy_node_info(node)
    for pod in pods:
        add_pod(copy, pod)
    return copy


def filter_with_nominated(
    filters: Sequence[FilterPlugin],
    pod: PodInfo,
    node: NodeInfo,
    nominated: Sequence[PodInfo],
    priority_of: Priority | None = None,
) -> tuple[str, ...] | None:
    """Upstream's ``RunFilterPluginsWithNominatedPods``: the pod must fit with the
    equal-or-higher-priority pods nominated to the node counted, and without them (a
    nominated pod may not get there, and affinity to it must not be relied on)."""
    others = nominated_for(pod, nominated, priority_of)
    if others:
        reasons = run_filters(filters, pod, with_pods(node, others))
        if reasons is not None:
            return reasons
    return run_filters(filters, pod, node)


# -- victims on one node -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Victims:
    pods: list[PodInfo]
    """Most important first."""
    pdb_violations: int


@dataclass(frozen=True, slots=True)
class NodeFailure:
    """Why preemption cannot help on one node (upstream's per-node status)."""

    reasons: tuple[str, ...]


Eligible = Callable[[PodInfo], bool]
"""Whether a pod may be a victim at all, beyond priority (upstream's ``IsEligiblePod``)."""


def preemptible(
    preemptor: PodInfo,
    pods: Iterable[PodInfo],
    eligible: Eligible | None = None,
    priority_of: Priority | None = None,
) -> list[PodInfo]:
    """The pods the preemptor may evict: strictly lower priority (and ``eligible``)."""
    if priority_of is not None:  # a gang member counts at its group's priority
        level = priority_of(preemptor)
        return [p for p in pods if priority_of(p) < level and (eligible is None or eligible(p))]
    own = priority(preemptor)
    # Attribute reads inlined: this runs over every pod of every node tried.
    if eligible is None:
        return [p for p in pods if p.pod.spec.priority < own]
    return [p for p in pods if p.pod.spec.priority < own and eligible(p)]


def select_victims_on_node(
    filters: Sequence[FilterPlugin],
    preemptor: PodInfo,
    node: NodeInfo,
    budgets: Sequence[Budget],
    nominated: Sequence[PodInfo] = (),
    eligible: Eligible | None = None,
    priority_of: Priority | None = None,
) -> Victims | NodeFailure:
    """The fewest victims on ``node`` that make room for ``preemptor`` (``node`` itself is
    left untouched)."""
    potential = preemptible(preemptor, node.pods.values(), eligible, priority_of)
    if not potential:  # checked before copying: the common case in clusters of one priority
        return NodeFailure((NO_VICTIMS,))
    state = copy_node_info(node)
    for pod in potential:
        remove_pod(state, pod.uid)
    reasons = filter_with_nominated(filters, preemptor, state, nominated, priority_of)
    if reasons is not None:
        return NodeFailure(reasons)
    potential.sort(key=importance)
    violating, fine = split_by_budget(potential, budgets)
    victims: list[PodInfo] = []
    violations = 0

    def reprieve(pod: PodInfo) -> bool:
        add_pod(state, pod)
        if filter_with_nominated(filters, preemptor, state, nominated, priority_of) is None:
            return True
        remove_pod(state, pod.uid)
        victims.append(pod)
        return False

    for pod in violating:
        if not reprieve(pod):
            violations += 1
    for pod in fine:
        reprieve(pod)
    if violating and fine:
        victims.sort(key=importance)
    return Victims(victims, violations)


# -- choosing the node ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Candidate:
    node: str
    victims: Victims


def _earliest_start_of_highest(victims: Sequence[PodInfo]) -> str:
    top = max(priority(p) for p in victims)
    return min(_start(p) for p in victims if priority(p) == top)


def pick_one_node(candidates: Sequence[Candidate]) -> Candidate | None:
    """Upstream's ``pickOneNodeForPreemption``: a node that needs no victims at all (pods
    ended since the filters ran) wins at once; otherwise each rule keeps the best-scored
    candidates, the next rule breaks their tie, the first one left wins."""
    if not candidates:
        return None
    for candidate in candidates:
        if not candidate.victims.pods:
            return candidate
    rules: list[Callable[[Candidate], object]] = [
        lambda c: -c.victims.pdb_violations,
        lambda c: -priority(c.victims.pods[0]),
        lambda c: -sum(priority(p) + _MAX_INT32_PLUS_ONE for p in c.victims.pods),
        lambda c: -len(c.victims.pods),
        lambda c: _earliest_start_of_highest(c.victims.pods),
    ]
    left = list(candidates)
    for rule in rules:
        scores = [rule(c) for c in left]
        best = max(scores)  # type: ignore[type-var]
        left = [c for c, s in zip(left, scores, strict=True) if s == best]
        if len(left) == 1:
            break
    return left[0]


def num_candidates(nodes: int) -> int:
    """How many candidate nodes a dry run looks for: 10% of the nodes that may
    help, at least 100, at most all of them."""
    wanted = max(nodes * MIN_CANDIDATE_NODES_PERCENTAGE // 100, MIN_CANDIDATE_NODES_ABSOLUTE)
    return min(wanted, nodes)


def dry_run(
    filters: Sequence[FilterPlugin],
    preemptor: PodInfo,
    potential: Sequence[NodeInfo],
    budgets: Sequence[Budget],
    nominated: Nominated,
    offset: int = 0,
    wanted: int | None = None,
    eligible: Eligible | None = None,
    priority_of: Priority | None = None,
) -> tuple[list[Candidate], dict[str, tuple[str, ...]]]:
    """Candidates (those without PDB violations first) and, per node that is not
    one, why. Stops once ``wanted`` candidates are found, one of them violation-free."""
    total = len(potential)
    wanted = total if wanted is None else wanted
    clean: list[Candidate] = []
    violating: list[Candidate] = []
    failures: dict[str, tuple[str, ...]] = {}
    for i in range(total):
        node = potential[(offset + i) % total]
        result = select_victims_on_node(
            filters, preemptor, node, budgets, nominated(node.name), eligible, priority_of
        )
        if isinstance(result, NodeFailure):
            failures[node.name] = result.reasons
            continue
        (violating if result.pdb_violations else clean).append(Candidate(node.name, result))
        if clean and len(clean) + len(violating) >= wanted:
            break
    return clean + violating, failures


# -- the whole PostFilter ------------------------------------------------------------


def terminating_by_preemption(pod: PodInfo) -> bool:
    """Deleted, with the DisruptionTarget condition the scheduler sets when preempting."""
    if pod.pod.metadata.deletion_timestamp is None:
        return False
    for condition in pod.pod.status.conditions:
        if condition.type == DISRUPTION_TARGET:
            return condition.status == "True" and condition.reason == PREEMPTION_BY_SCHEDULER
    return False


def not_eligible(
    preemptor: PodInfo, nominated_node: NodeInfo | None, nominated_node_fixable: bool
) -> str | None:
    """Why the pod may not preempt now (upstream's ``PodEligibleToPreemptOthers``), or
    None. ``nominated_node``: the node the pod is nominated to, if any;
    ``nominated_node_fixable``: it failed the filters for a reason preemption can fix
    (otherwise the pod may preempt elsewhere)."""
    if preemptor.pod.spec.preemption_policy == "Never":
        return NEVER
    if nominated_node is not None and nominated_node_fixable:
        for pod in preemptible(preemptor, nominated_node.pods.values()):
            if terminating_by_preemption(pod):
                return TERMINATING
    return None


@dataclass(slots=True)
class Outcome:
    """What PostFilter decided."""

    candidate: Candidate | None = None
    """The node to nominate and its victims; None when preemption does not help."""
    message: str = ""
    """The ``preemption: ...`` tail of the FailedScheduling message; "" on success."""
    clear_nomination: bool = False
    """No candidate: the pod's nominated node, if any, is stale and must be cleared."""
    tried_nodes: int = 0


def exceeds_capacity(pod: PodInfo, node: NodeInfo) -> bool:
    """The pod asks for more of some resource than the node has in all: NodeResourcesFit
    then reports the node ``UnschedulableAndUnresolvable`` (an emptied node would not fit
    either)."""
    allocatable = node.allocatable
    return any(amount > allocatable.get(r, 0) for r, amount in pod.requests.items())


def fixable_nodes(
    pod: PodInfo,
    nodes: Sequence[NodeInfo],
    rejected_by: Mapping[str, str],
    unresolvable: bool = False,
    reasons: Mapping[str, Sequence[str]] | None = None,
) -> list[NodeInfo]:
    """The nodes whose filter failure removing pods may fix (``reasons``: node name -> the
    rejecting filter's reasons, for the filters whose verdict depends on them)."""
    if unresolvable:
        return []
    why = reasons or {}
    return [
        node
        for node in nodes
        if _fixable(pod, node, rejected_by.get(node.name), why.get(node.name, ()))
    ]


def _fixable(pod: PodInfo, node: NodeInfo, plugin: str | None, reasons: Sequence[str]) -> bool:
    if plugin is None or plugin in UNRESOLVABLE_PLUGINS:
        return False
    if any(reason in UNRESOLVABLE_REASONS for reason in reasons):
        return False
    return not (plugin == "NodeResourcesFit" and exceeds_capacity(pod, node))


def preempt(
    filters: Sequence[FilterPlugin],
    preemptor: PodInfo,
    nodes: Sequence[NodeInfo],
    rejected_by: Mapping[str, str],
    budgets: Sequence[Budget],
    nominated: Nominated,
    rng: random.Random,
    *,
    unresolvable: bool = False,
    nominated_node: NodeInfo | None = None,
    eligible: Eligible | None = None,
    priority_of: Priority | None = None,
    reasons: Mapping[str, Sequence[str]] | None = None,
) -> Outcome:
    """Upstream's ``Evaluator.Preempt`` up to choosing the node (no API calls).

    ``rejected_by``: node name -> the filter that rejected it in this cycle (``reasons``:
    -> its reasons);
    ``unresolvable``: a pre-filter rejected the pod for every node; ``nominated_node``:
    the node the pod is nominated to (by an earlier preemption), if it still exists.
    """
    fixable = (
        nominated_node is not None
        and not unresolvable
        and _fixable(
            preemptor,
            nominated_node,
            rejected_by.get(nominated_node.name),
            (reasons or {}).get(nominated_node.name, ()),
        )
    )
    reason = not_eligible(preemptor, nominated_node, fixable)
    if reason is not None:
        return Outcome(message=PREFIX + reason)
    potential = fixable_nodes(preemptor, nodes, rejected_by, unresolvable, reasons)
    candidates: list[Candidate] = []
    failures: dict[str, tuple[str, ...]] = {}
    if potential:
        offset = rng.randrange(len(potential))
        candidates, failures = dry_run(
            filters,
            preemptor,
            potential,
            budgets,
            nominated,
            offset,
            num_candidates(len(potential)),
            eligible,
            priority_of,
        )
    best = pick_one_node(candidates)
    if best is None:
        reasons = {n.name: failures.get(n.name, (NOT_HELPFUL,)) for n in nodes}
        return Outcome(
            message=PREFIX + unschedulable_message(len(nodes), reasons),
            clear_nomination=True,
            tried_nodes=len(potential),
        )
    return Outcome(candidate=best, tried_nodes=len(potential))


def post_filter_message(outcome: Outcome) -> str:
    """The PostFilter part of the FailedScheduling message ("" when preemption chose
    victims: upstream then reports the filters' reasons alone)."""
    if outcome.candidate is not None or not outcome.message:
        return ""
    return f"{NO_CLAIMS}, {outcome.message}"


def lower_priority_nominated(
    preemptor: PodInfo, nominated: Sequence[PodInfo], priority_of: Priority | None = None
) -> list[PodInfo]:
    """Pods nominated to the chosen node with lower priority than the preemptor: their
    nomination is cleared so they look elsewhere at once."""
    level = priority_of or priority
    own = level(preemptor)
    return [p for p in nominated if p.uid != preemptor.uid and level(p) < own]
