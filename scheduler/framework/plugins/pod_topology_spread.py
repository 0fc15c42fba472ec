"""PodTopologySpread: ``topologySpreadConstraints``, kube-scheduler v1.35's semantics and
wording.

A constraint counts the pods its selector picks (in the pod's namespace, terminating ones
left out) per domain of ``topologyKey``, over the nodes the pod could use: with
``nodeAffinityPolicy: Honor`` (the default) only nodes matching the pod's nodeSelector and
required node affinity, with ``nodeTaintsPolicy: Honor`` only nodes whose NoSchedule and
NoExecute taints it tolerates (default Ignore), and only nodes carrying every constraint's
topology key. ``matchLabelKeys`` AND the pod's own values of those labels into the selector.

Filter (``whenUnsatisfiable: DoNotSchedule``): the counts per domain are made once per
attempt (upstream's preFilterState); a node passes when, for every constraint,
``count(node's domain) + (1 if the pod matches the selector) - global minimum <= maxSkew``,
the global minimum being 0 while fewer than ``minDomains`` domains exist::

    node(s) didn't match pod topology spread constraints
    node(s) didn't match pod topology spread constraints (missing required label)

Score (``ScheduleAnyway``): fewer matching pods in a node's domains scores higher; each
constraint adds ``count * log(domains + 2) + maxSkew - 1``, then the sums are reversed and
scaled to 0..100. Plugin weight 2.

Pods without constraints of their own get the default ones (upstream's
``defaultingType``): ``System`` (the default) spreads, softly, by hostname (maxSkew 3) and
by ``topology.kubernetes.io/zone`` (maxSkew 5), nodes lacking a zone label still taking
part in hostname spreading; ``List`` uses the configured constraints. Either way they apply
only to a pod that a Service selects or a ReplicationController, ReplicaSet or StatefulSet
owns, with those objects' selectors ANDed as the selector (upstream's ``DefaultSelector``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, ClassVar, Final, Literal

import msgspec

from scheduler.framework.labels import EVERYTHING, Requirement, Selector
from scheduler.framework.node_selectors import compile_required
from scheduler.framework.plugins.taint_toleration import tolerated
from scheduler.framework.spread_constraints import (
    Action,
    SpreadConstraint,
    compile_constraints,
)
from scheduler.framework.types import MAX_NODE_SCORE, ClusterView, NodeInfo, PodInfo
from scheduler.model.objects import Node, Pod, TopologySpreadConstraint

REASON: Final = "node(s) didn't match pod topology spread constraints"
MISSING_LABEL_REASON: Final = REASON + " (missing required label)"
_REASONS: Final = (REASON,)
_MISSING_LABEL: Final = (MISSING_LABEL_REASON,)
HOSTNAME: Final = "kubernetes.io/hostname"
DEFAULT_WEIGHT: Final = 2
_NO_DOMAINS: Final = 2**31 - 1  # upstream's critical paths start at MaxInt32
_IGNORED: Final = -1
_TAINT_EFFECTS: Final = frozenset({"NoSchedule", "NoExecute"})

ZONE: Final = "topology.kubernetes.io/zone"

Defaulting = Literal["System", "List"]

SYSTEM_DEFAULT_CONSTRAINTS: Final = (
    TopologySpreadConstraint(
        max_skew=3, topology_key=HOSTNAME, when_unsatisfiable="ScheduleAnyway"
    ),
    TopologySpreadConstraint(max_skew=5, topology_key=ZONE, when_unsatisfiable="ScheduleAnyway"),
)
CONTROLLER_KINDS: Final = {
    ("v1", "ReplicationController"): "ReplicationController",
    ("apps/v1", "ReplicaSet"): "ReplicaSet",
    ("apps/v1", "StatefulSet"): "StatefulSet",
}
"""Owner (apiVersion, kind) whose selector default spreading uses."""


@dataclass(frozen=True, slots=True)
class SpreadDefaults:
    """Upstream's PodTopologySpreadArgs: ``defaultingType`` and ``defaultConstraints``."""

    defaulting: Defaulting = "System"
    constraints: tuple[TopologySpreadConstraint, ...] = ()
    """Used with ``List`` only (no labelSelector: the default selector is used)."""

    @property
    def in_use(self) -> tuple[TopologySpreadConstraint, ...]:
        return SYSTEM_DEFAULT_CONSTRAINTS if self.defaulting == "System" else self.constraints


def spread_defaults(defaulting: str, constraints: Iterable[Mapping[str, Any]]) -> SpreadDefaults:
    """From the settings (``topology_spread_defaulting``, ``..._default_constraints``, already
    checked by ``Settings.validate``)."""
    if defaulting == "System":
        return SpreadDefaults()
    return SpreadDefaults(
        "List", tuple(msgspec.convert(c, TopologySpreadConstraint) for c in constraints)
    )


def default_selector(pod: Pod, cluster: ClusterView) -> Selector:
    """The labels of the Services selecting ``pod`` and the selector of the controller
    owning it, ANDed (upstream's ``helper.DefaultSelector``); empty when there are none."""
    meta = pod.metadata
    services = cluster.service_selectors(meta.namespace)
    if not meta.owner_references and not services:
        return EVERYTHING  # a bare pod in a namespace without Services: the common case
    labels = meta.labels
    merged: dict[str, str] = {}
    for wanted in services:
        if all(labels.get(k) == v for k, v in wanted.items()):
            merged.update(wanted)
    requirements = [Requirement(k, "In", frozenset((v,))) for k, v in merged.items()]
    owner = next((o for o in meta.owner_references if o.controller), None)
    if owner is not None:
        kind = CONTROLLER_KINDS.get((owner.api_version, owner.kind))
        if kind is not None:
            owned_by = cluster.controller_selector(kind, meta.namespace, owner.name)
            if owned_by is not None and not owned_by.nothing:
                requirements += owned_by.requirements
    return Selector(tuple(requirements))


def count_matching(node: NodeInfo, selector: Selector, namespace: str) -> int:
    """Upstream's ``countPodsMatchSelector``: an empty selector counts nothing."""
    if selector.empty:
        return 0
    count = 0
    # Every node's pods, for every constrained pod: the selector's guard inline first
    # (see ``Selector.may_match``), so most pods cost a dict lookup and no call.
    guard = selector.guard_key
    values = selector.guard_values
    for info in node.pods.values():
        meta = info.pod.metadata
        labels = meta.labels
        if guard is not None and labels.get(guard) not in values:
            continue
        if (
            meta.deletion_timestamp is None
            and meta.namespace == namespace
            and selector.matches(labels)
        ):
            count += 1
    return count


def has_keys(node: Node, constraints: Sequence[SpreadConstraint]) -> bool:
    labels = node.metadata.labels
    # A loop for the hot path (every node, every attempt of a pod with constraints).
    for c in constraints:  # noqa: SIM110
        if c.topology_key not in labels:
            return False
    return True


def node_included(
    c: SpreadConstraint, pod: Pod, node: Node, node_affinity: Callable[[Node], bool]
) -> bool:
    """Upstream's ``matchNodeInclusionPolicies``: whether the node counts for ``c``
    (also used by preemption's dry run)."""
    if c.honor_node_affinity and not node_affinity(node):
        return False
    if c.honor_node_taints:
        tolerations = pod.spec.tolerations
        for taint in node.spec.taints:
            if taint.effect in _TAINT_EFFECTS and not tolerated(tolerations, taint):
                return False
    return True


def required_node_affinity(pod: PodInfo) -> Callable[[Node], bool]:
    if pod.node_affinity is None:
        pod.node_affinity = compile_required(pod.pod)
    return pod.node_affinity


class SpreadFilter:
    """One attempt's counts per constraint and domain."""

    name: ClassVar[str] = "PodTopologySpread"
    __slots__ = ("constraints", "counts", "minimum", "self_match")

    def __init__(
        self, pod: PodInfo, constraints: list[SpreadConstraint], counts: list[dict[str, int]]
    ) -> None:
        self.constraints = constraints
        self.counts = counts
        labels = pod.pod.metadata.labels
        self.self_match = [1 if c.selector.matches(labels) else 0 for c in constraints]
        self.minimum = []
        for c, domains in zip(constraints, counts, strict=True):
            if len(domains) < c.min_domains:
                self.minimum.append(0)  # too few domains: the global minimum counts as 0
            else:
                self.minimum.append(min(domains.values(), default=_NO_DOMAINS))

    def filter(self, pod: PodInfo, node: NodeInfo) -> tuple[str, ...] | None:
        labels = node.node.metadata.labels
        for i, c in enumerate(self.constraints):
            domain = labels.get(c.topology_key)
            if domain is None:
                return _MISSING_LABEL
            skew = self.counts[i].get(domain, 0) + self.self_match[i] - self.minimum[i]
            if skew > c.max_skew:
                return _REASONS
        return None


class SpreadScore:
    name: ClassVar[str] = "PodTopologySpread"
    scores_are_absolute: ClassVar[bool] = False
    __slots__ = ("constraints", "counts", "ignored", "namespace", "weight", "weights")

    def __init__(
        self,
        weight: int,
        namespace: str,
        constraints: list[SpreadConstraint],
        counts: list[dict[str, int]],
        weights: list[float],
        ignored: set[str],
    ) -> None:
        self.weight = weight
        self.namespace = namespace
        self.constraints = constraints
        self.counts = counts
        self.weights = weights
        self.ignored = ignored

    def score(self, pod: PodInfo, node: NodeInfo) -> int:
        if node.name in self.ignored:
            return _IGNORED
        labels = node.node.metadata.labels
        total = 0.0
        for i, c in enumerate(self.constraints):
            domain = labels.get(c.topology_key)
            if domain is None:
                continue
            if c.topology_key == HOSTNAME:
                count = count_matching(node, c.selector, self.namespace)
            else:
                count = self.counts[i].get(domain, 0)
            total += count * self.weights[i] + (c.max_skew - 1)
        return math.floor(total + 0.5)  # Go's math.Round (half away from zero; total >= 0)

    def normalize(self, scores: list[int]) -> None:
        valid = [s for s in scores if s != _IGNORED]
        low = min(valid, default=0)
        high = max(valid, default=0)
        for i, value in enumerate(scores):
            if value == _IGNORED:
                scores[i] = 0
            elif high == 0:
                scores[i] = MAX_NODE_SCORE
            else:
                scores[i] = MAX_NODE_SCORE * (high + low - value) // high


class PodTopologySpread:
    name: ClassVar[str] = "PodTopologySpread"
    __slots__ = ("_hard_defaults", "defaults", "system_defaulted", "weight")

    def __init__(
        self, weight: int = DEFAULT_WEIGHT, defaults: SpreadDefaults | None = None
    ) -> None:
        self.weight = weight
        defaults = defaults or SpreadDefaults()
        self.defaults = defaults.in_use
        self.system_defaulted = defaults.defaulting == "System"
        self._hard_defaults = any(c.when_unsatisfiable == "DoNotSchedule" for c in self.defaults)

    def constraints(
        self, pod: PodInfo, cluster: ClusterView, action: Action
    ) -> list[SpreadConstraint]:
        """The pod's own constraints for ``action``, or the defaults if it has none."""
        own = pod.pod.spec.topology_spread_constraints
        if own:
            return compile_constraints(pod.pod, own, action)
        if not self.defaults:
            return []
        selector = default_selector(pod.pod, cluster)  # empty (cheaply) for most bare pods
        if selector.empty:
            return []
        defaults = compile_constraints(pod.pod, self.defaults, action)
        return [replace(c, selector=selector) for c in defaults]

    def pre_filter(self, pod: PodInfo, cluster: ClusterView) -> SpreadFilter | None:
        if not pod.pod.spec.topology_spread_constraints and not self._hard_defaults:
            return None
        constraints = self.constraints(pod, cluster, "DoNotSchedule")
        if not constraints:
            return None
        node_affinity = required_node_affinity(pod)
        namespace = pod.pod.metadata.namespace
        counts: list[dict[str, int]] = [{} for _ in constraints]
        for node in cluster.nodes():
            obj = node.node
            if not has_keys(obj, constraints):
                continue
            labels = obj.metadata.labels
            for i, c in enumerate(constraints):
                if not node_included(c, pod.pod, obj, node_affinity):
                    continue
                domain = labels[c.topology_key]
                domains = counts[i]
                domains[domain] = domains.get(domain, 0) + count_matching(
                    node, c.selector, namespace
                )
        return SpreadFilter(pod, constraints, counts)

    def pre_score(
        self, pod: PodInfo, cluster: ClusterView, feasible: Sequence[NodeInfo]
    ) -> SpreadScore | None:
        own = pod.pod.spec.topology_spread_constraints
        if not feasible or (not own and not self.defaults):
            return None
        constraints = self.constraints(pod, cluster, "ScheduleAnyway")
        if not constraints:
            return None
        # System defaults do not need every key: nodes without a zone still spread by host.
        require_all = bool(own) or not self.system_defaulted
        ignored: set[str] = set()
        counts: list[dict[str, int]] = [{} for _ in constraints]
        for node in feasible:
            obj = node.node
            if require_all and not has_keys(obj, constraints):
                ignored.add(node.name)  # scored 0 later
                continue
            labels = obj.metadata.labels
            for i, c in enumerate(constraints):
                if c.topology_key != HOSTNAME:  # per-node counts are taken when scoring
                    counts[i].setdefault(labels.get(c.topology_key, ""), 0)
        weights = []
        for c, domains in zip(constraints, counts, strict=True):
            size = len(feasible) - len(ignored) if c.topology_key == HOSTNAME else len(domains)
            weights.append(math.log(size + 2))
        node_affinity = required_node_affinity(pod)
        namespace = pod.pod.metadata.namespace
        for node in cluster.nodes():
            obj = node.node
            if require_all and not has_keys(obj, constraints):
                continue
            labels = obj.metadata.labels
            for i, c in enumerate(constraints):
                domains = counts[i]
                domain = labels.get(c.topology_key, "")
                if domain not in domains or not node_included(c, pod.pod, obj, node_affinity):
                    continue
                domains[domain] += count_matching(node, c.selector, namespace)
        return SpreadScore(self.weight, namespace, constraints, counts, weights, ignored)
