"""The gang cycle's preemption step: room for a whole gang, or nothing evicted.

When a gang cannot be placed, ``GangPreemption.preempt`` builds the victim units from
the cache (a running gang is one unit unless its group allows single-pod disruption;
any other pod is its own unit), asks ``scheduler.gang.preemption`` for the least
disruptive plan, and carries it out through the pod cycle's ``Preempter``:

- every victim pod is evicted (DisruptionTarget, graceful delete, ``Preempted``);
- each member the plan places is nominated to its node, so the pod cycle and other
  gangs leave that room alone while the victims terminate (``PodPreemption.holding``);
- Events: ``Preempting`` on the preemptor's group object (``preempting 2 gangs (16
  pods) of priority 100 in rack=r3 to place 8 pods``) and ``Preempted`` on each
  victim gang's object.

No thrash: a gang whose victims are still terminating waits for them instead of
preempting again; equal priority never preempts; at most ``MAX_VICTIM_PODS`` per cycle.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import structlog

from scheduler.cache.cluster_cache import ClusterCache
from scheduler.core.interfaces import Reporter
from scheduler.core.preemption import PodPreemption
from scheduler.framework.cycle import Profile
from scheduler.framework.preemption import priority
from scheduler.framework.types import PodInfo
from scheduler.gang import priority as gang_priority
from scheduler.gang.model import GroupKey, GroupPolicy
from scheduler.gang.preemption import GangVictims, NoVictims, Unit, describe, find_gang_victims
from scheduler.gang.registry import GangRegistry

log = structlog.get_logger(__name__)

PREEMPTING = "Preempting"
PREEMPTED = "Preempted"


@dataclass(slots=True)
class GangPreemptionResult:
    """What happened: victims chosen (``message`` describes them), waiting for earlier
    victims, or why preemption cannot help."""

    preempted: bool
    message: str


@dataclass(slots=True)
class GangPreemption:
    cache: ClusterCache
    profile: Profile
    gangs: GangRegistry
    pods: PodPreemption
    reporter: Reporter
    _victims: dict[GroupKey, set[str]] = field(default_factory=dict)
    """Per preemptor gang: the victims it evicted that may still be terminating."""

    def group_priority(self, policy: GroupPolicy, members: list[PodInfo]) -> int:
        return gang_priority.group_priority(self.gangs, policy, members)

    def waiting_for(self, group: GroupKey) -> int:
        """How many of the gang's earlier victims still hold their room."""
        victims = self._victims.get(group)
        if not victims:
            return 0
        left = {uid for uid in victims if self.cache.node_of(uid) is not None}
        if left:
            self._victims[group] = left
        else:
            del self._victims[group]
        return len(left)

    def units(self, exclude: GroupKey) -> list[Unit]:
        """Every running pod as a victim unit: whole gangs, or single pods."""
        groups: dict[GroupKey, list[PodInfo]] = {}
        singles: list[Unit] = []
        policies: dict[GroupKey, GroupPolicy] = {}
        for node in self.cache.nodes():
            for pod in node.pods.values():
                key = self.gangs.key_of(pod.uid)
                if key == exclude:
                    continue
                policy = self.gangs.policy(key) if key is not None else None
                if key is not None and isinstance(policy, GroupPolicy) and policy.gang:
                    if not policy.single_pod_disruption:
                        groups.setdefault(key, []).append(pod)
                        policies[key] = policy
                        continue
                    own = gang_priority.own_priority(self.gangs, policy)
                    level = own if own is not None else priority(pod)
                    singles.append(Unit(pod.key, (pod,), level, gang=False))
                    continue
                singles.append(Unit(pod.key, (pod,), priority(pod), gang=False))
        whole = [
            Unit(str(key), tuple(pods), self.group_priority(policies[key], pods), gang=True)
            for key, pods in groups.items()
        ]
        return [*whole, *singles]

    def preempt(
        self,
        group: GroupKey,
        policy: GroupPolicy,
        members: list[PodInfo],
        need: int,
        domain: str | None,
    ) -> GangPreemptionResult:
        """Try to make room for ``need`` of ``members``; the message to report."""
        metrics = self.pods.metrics
        waiting = self.waiting_for(group)
        if waiting:
            return GangPreemptionResult(False, f"waiting for {waiting} preempted pods to terminate")
        level = self.group_priority(policy, members)
        if any(m.pod.spec.preemption_policy == "Never" for m in members):
            return GangPreemptionResult(False, "not eligible due to preemptionPolicy=Never.")
        missing = gang_priority.missing_class(self.gangs, policy)
        if missing is not None:  # never preempt at a guessed priority
            return GangPreemptionResult(False, missing)
        pods_for = self.pods.nominator.pods_for

        def nominated(node_name: str) -> list[PodInfo]:
            # Room nominated to others of this priority or higher (as nominated_for).
            return [p for p in pods_for(node_name) if self.pods.priority_of(p) >= level]

        units = self.units(group)
        result = find_gang_victims(
            self.profile,
            members,
            need,
            level,
            self.cache.nodes(),
            units,
            self.pods.budgets(),
            self.pods.rng,
            topology_key=policy.topology_key,
            domain=domain,
            nominated=nominated,
        )
        if isinstance(result, NoVictims):
            metrics.workload_preemption_attempts.labels("unschedulable").inc()
            for member in members:  # a nomination from an earlier attempt no longer holds
                if self.pods.nominator.node_of(member.uid) is not None:
                    self.pods.nominator.remove(member.uid)
                    self.pods.preempter.nominate(member.pod, "")
            return GangPreemptionResult(False, result.message)
        metrics.workload_preemption_attempts.labels("success").inc()
        metrics.workload_preemption_victims.observe(len(result.pods))
        message = describe(result, level, need, policy.topology_key)
        self._carry_out(group, level, result, message)
        return GangPreemptionResult(True, message)

    def _carry_out(self, group: GroupKey, level: int, plan: GangVictims, message: str) -> None:
        log.info("gang preempting", gang=str(group), victims=[p.key for p in plan.pods])
        by_node: dict[str, PodInfo] = {node: pod for pod, node in plan.plan}
        first = plan.plan[0][0]
        victims: set[str] = set()
        obj = self.gangs.objects.get(group.obj)
        group_ref = obj.ref if obj is not None else None
        for victim in plan.pods:
            node = self.cache.node_of(victim.uid) or victim.pod.spec.node_name
            victims.add(victim.uid)
            if victim.pod.metadata.deletion_timestamp is None:
                preemptor = by_node.get(node, first)
                self.pods.preempter.evict(victim.pod, preemptor.pod, node, group_ref)
        self._victims[group] = victims
        for pod, node in plan.plan:
            self.pods.nominator.nominate(pod, node)
            self.pods.preempter.nominate(pod.pod, node)
        self._event(group, PREEMPTING, f"gang {group}: {message}")
        for unit in plan.units:
            if not unit.gang:
                continue
            victim_key = self.gangs.key_of(unit.pods[0].uid)
            if victim_key is not None:
                self._event(
                    victim_key,
                    PREEMPTED,
                    f"gang {victim_key}: {len(unit.pods)} pods preempted by gang {group} "
                    f"of priority {level}",
                )

    def _event(self, group: GroupKey, reason: str, message: str) -> None:
        obj = self.gangs.objects.get(group.obj)
        if obj is not None:
            self.reporter.event(obj.ref, reason, message, action="Preempting")


def evictable_alone(gangs: GangRegistry) -> Callable[[PodInfo], bool]:
    """For pod-by-pod preemption: a member of a gang that is evicted whole (the default
    ``disruptionMode``) is not a victim on its own, so no single pod's preemption leaves
    a running gang below its ``minCount``; gang preemption evicts such gangs whole."""

    def evictable(pod: PodInfo) -> bool:
        key = gangs.key_of(pod.uid)
        if key is None:
            return True
        policy = gangs.policy(key)
        return not (isinstance(policy, GroupPolicy) and policy.gang) or (
            policy.single_pod_disruption
        )

    return evictable
