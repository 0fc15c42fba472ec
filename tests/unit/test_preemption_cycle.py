"""The pod cycle with preemption: nominate, evict, hold the room, take it, clear stale
nominations (a recording Preempter and reporter instead of the API server)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import msgspec
import pytest
from factories import make_node, make_pod

from scheduler.binder.binder import BindOutcome
from scheduler.cache.cluster_cache import ClusterCache
from scheduler.core.event_handlers import PodEvents
from scheduler.core.gang_preemption import evictable_alone
from scheduler.core.preemption import PodPreemption
from scheduler.core.scheduler import Scheduler
from scheduler.framework.cycle import Profile
from scheduler.framework.podinfo import make_pod_info
from scheduler.framework.preemption import Budget, compile_budget
from scheduler.framework.types import PodInfo
from scheduler.framework.volumes import VolumeView
from scheduler.gang import priority as gang_priority
from scheduler.gang.model import (
    CRD_WORKLOAD,
    LABEL_POD_GROUP,
    LABEL_WORKLOAD,
    GroupKey,
    GroupObject,
    GroupPolicy,
    ObjectKey,
)
from scheduler.gang.registry import GangRegistry
from scheduler.metrics import Metrics
from scheduler.model.objects import Pod, PriorityClass
from scheduler.model.policy import PodDisruptionBudget
from scheduler.model.refs import ObjectRef
from scheduler.queue.nominator import Nominator
from scheduler.queue.scheduling_queue import SchedulingQueue


@dataclass
class RecordingPreempter:
    nominations: list[tuple[str, str]] = field(default_factory=list)
    evictions: list[tuple[str, str, str]] = field(default_factory=list)

    def nominate(self, pod: Pod, node_name: str) -> None:
        self.nominations.append((pod.metadata.name, node_name))

    groups: list[ObjectRef | None] = field(default_factory=list)

    def evict(
        self, victim: Pod, preemptor: Pod, node_name: str, group: ObjectRef | None = None
    ) -> None:
        self.evictions.append((victim.metadata.name, preemptor.metadata.name, node_name))
        self.groups.append(group)


@dataclass
class RecordingReporter:
    failed: dict[str, str] = field(default_factory=dict)

    def event(self, ref: ObjectRef, reason: str, message: str, **_: Any) -> None:
        pass

    def pod_unschedulable(self, ref: ObjectRef, message: str, *_: Any, **__: Any) -> None:
        self.failed[ref.name] = message

    def pod_scheduled(self, ref: ObjectRef, node: str) -> None:
        pass


class Binder:
    async def bind(self, pod: Pod, node_name: str) -> tuple[BindOutcome, str]:
        return BindOutcome.BOUND, ""


@dataclass
class World:
    cache: ClusterCache
    queue: SchedulingQueue
    events: PodEvents
    scheduler: Scheduler
    preempter: RecordingPreempter
    reporter: RecordingReporter
    metrics: Metrics
    budgets: list[Budget] = field(default_factory=list)

    def add(self, pod: Pod) -> None:
        self.events.apply("ADDED", pod)

    def delete(self, pod: Pod) -> None:
        self.events.apply("DELETED", pod)

    async def try_pod(self, name: str) -> str | None:
        """Run one attempt for the named pending pod; the node it was assumed on, if any."""
        qp = next(q for q in self.queue.pods_in_any() if q.info.pod.metadata.name == name)
        await self.scheduler.schedule(qp)
        return self.cache.node_of(qp.uid)


def world(
    *nodes: tuple[str, str], volumes: VolumeView | None = None, cached: bool = False
) -> World:
    """Nodes (name, cpu) and a scheduler with preemption; ``volumes`` turns the volume
    plugins on, over that store; ``cached``: plugins read the cache as their cluster view
    (as the app wires it), not just the nodes at hand."""
    cache = ClusterCache()
    for name, cpu in nodes:
        cache.set_node(make_node(name, cpu=cpu, memory="16Gi"))
    gangs = GangRegistry()

    def member_priority(info: PodInfo) -> int:  # as the app wires it
        return gang_priority.member_priority(gangs, info)

    queue = SchedulingQueue(priority_of=member_priority)
    nominator = Nominator()
    preempter = RecordingPreempter()
    reporter = RecordingReporter()
    metrics = Metrics()
    profile = (
        Profile.default(cluster=cache if cached else None)
        if volumes is None
        else Profile.default(cluster=cache, volumes=volumes)
    )
    budgets: list[Budget] = []
    preemption = PodPreemption(
        cache,
        profile,
        preempter,
        metrics,
        lambda: budgets,
        nominator,
        eligible=evictable_alone(gangs),
        priority_of=member_priority,
    )
    events = PodEvents(
        "workload-scheduler", cache, queue, lambda p, m: None, lambda uid: None, gangs, nominator
    )
    scheduler = Scheduler(
        name="workload-scheduler",
        cache=cache,
        queue=queue,
        profile=profile,
        binder=Binder(),
        reporter=reporter,  # type: ignore[arg-type]
        metrics=metrics,
        seed=1,
        gangs=gangs,
        preemption=preemption,
    )
    return World(cache, queue, events, scheduler, preempter, reporter, metrics, budgets)


def pending(name: str, priority: int, cpu: str, **spec: Any) -> Pod:
    return make_pod(name, cpu=cpu, priority=priority, schedulerName="workload-scheduler", **spec)


def running(name: str, priority: int, cpu: str, node: str, **kw: Any) -> Pod:
    return make_pod(name, cpu=cpu, priority=priority, node_name=node, **kw)


def terminating(pod: Pod) -> Pod:
    """The victim as the watch shows it after our delete: DisruptionTarget, deleting."""
    status = msgspec.convert(
        {
            "conditions": [
                {"type": "DisruptionTarget", "status": "True", "reason": "PreemptionByScheduler"}
            ]
        },
        type(pod.status),
    )
    meta = msgspec.structs.replace(pod.metadata, deletion_timestamp="2026-01-01T00:00:00Z")
    return msgspec.structs.replace(pod, metadata=meta, status=status)


def samples(metrics: Metrics, name: str) -> float:
    value = metrics.registry.get_sample_value(name)
    return value or 0.0


async def test_preempt_nominate_hold_the_room_and_take_it() -> None:
    w = world(("n1", "4"), ("n2", "4"))
    low = running("low", 0, "4", "n1")
    mid = running("mid", 50, "4", "n2")
    w.add(low)
    w.add(mid)
    w.add(pending("p", 100, "2"))
    assert await w.try_pod("p") is None
    # The lowest victim's node: n1 (priority 0) rather than n2 (50).
    assert w.preempter.evictions == [("low", "p", "n1")]
    assert w.preempter.nominations == [("p", "n1")]
    assert w.reporter.failed["p"] == "0/2 nodes are available: 2 Insufficient cpu."
    assert samples(w.metrics, "scheduler_preemption_attempts_total") == 1
    assert samples(w.metrics, "scheduler_preemption_victims_sum") == 1

    # While the victim terminates the preemptor does not preempt again.
    w.add(terminating(low))
    assert await w.try_pod("p") is None
    assert len(w.preempter.evictions) == 1
    assert w.reporter.failed["p"] == (
        "0/2 nodes are available: 2 Insufficient cpu. "
        "no new claims to deallocate, "
        "preemption: not eligible due to a terminating pod on the nominated node."
    )

    # The victim is gone; a lower-priority pod must not take the room meanwhile.
    w.delete(low)
    w.add(pending("q", 10, "3"))
    assert await w.try_pod("q") is None
    assert w.reporter.failed["q"] == (
        "0/2 nodes are available: 2 Insufficient cpu. no new claims to deallocate, "
        "preemption: 0/2 nodes are available: 2 No preemption victims found for incoming pod."
    )
    # The preemptor takes its nominated node; its nomination has served.
    assert await w.try_pod("p") == "n1"
    assert w.scheduler.preemption is not None
    assert (
        w.scheduler.preemption.nominator.node_of(make_pod_info(pending("p", 100, "2")).uid) is None
    )
    await asyncio.sleep(0)


async def test_preemption_policy_never_and_equal_priority() -> None:
    w = world(("n1", "4"))
    w.add(running("low", 0, "4", "n1"))
    w.add(pending("never", 100, "2", preemptionPolicy="Never"))
    assert await w.try_pod("never") is None
    assert w.reporter.failed["never"] == (
        "0/1 nodes are available: 1 Insufficient cpu. "
        "no new claims to deallocate, preemption: not eligible due to preemptionPolicy=Never."
    )
    w.add(pending("same", 0, "2"))
    assert await w.try_pod("same") is None
    assert w.preempter.evictions == []


async def test_unresolvable_nodes_are_not_preempted() -> None:
    w = world(("n1", "4"))
    w.add(running("low", 0, "4", "n1"))
    w.add(pending("picky", 100, "2", nodeSelector={"zone": "a"}))
    assert await w.try_pod("picky") is None
    assert w.reporter.failed["picky"] == (
        "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector. "
        "no new claims to deallocate, "
        "preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling."
    )
    assert w.preempter.evictions == []


async def test_pdb_protected_pod_spared_when_another_node_has_none() -> None:
    w = world(("n1", "4"), ("n2", "4"))
    w.add(running("guarded", 0, "4", "n1", labels={"app": "db"}))
    w.add(running("free", 0, "4", "n2"))
    w.budgets.append(
        compile_budget(
            msgspec.convert(
                {
                    "metadata": {"name": "db", "namespace": "default", "uid": "u"},
                    "spec": {"selector": {"matchLabels": {"app": "db"}}},
                    "status": {"disruptionsAllowed": 0},
                },
                PodDisruptionBudget,
            )
        )
    )
    w.add(pending("p", 100, "2"))
    assert await w.try_pod("p") is None
    assert w.preempter.evictions == [("free", "p", "n2")]


async def test_stale_nomination_is_cleared() -> None:
    w = world(("n1", "4"))
    w.add(running("high", 1000, "4", "n1"))
    pod = pending("p", 100, "2")
    w.add(
        msgspec.structs.replace(
            pod, status=msgspec.structs.replace(pod.status, nominated_node_name="n1")
        )
    )
    assert await w.try_pod("p") is None
    assert w.preempter.nominations == [("p", "")]
    assert w.reporter.failed["p"].endswith(
        "preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod."
    )


async def test_lower_priority_nomination_on_the_chosen_node_is_cleared() -> None:
    w = world(("n1", "4"))
    w.add(running("victim", 0, "4", "n1"))
    w.add(pending("low", 10, "2"))
    assert await w.try_pod("low") is None  # low preempts victim, is nominated to n1
    assert w.preempter.nominations == [("low", "n1")]
    w.add(pending("high", 100, "4"))
    assert await w.try_pod("high") is None
    # high needs the whole node: low's nomination no longer holds there.
    assert ("low", "") in w.preempter.nominations
    assert ("high", "n1") in w.preempter.nominations


# -- gangs -------------------------------------------------------------------------------


def gang_world(nodes: int, cpu: str = "4") -> tuple[World, GangRegistry]:
    w = world(*((f"n{i}", cpu) for i in range(nodes)))
    gangs = w.scheduler.gangs
    assert w.scheduler.gang_cycle.preemption is not None
    return w, gangs


def crd_workload(gangs: GangRegistry, name: str, min_count: int, **policy: Any) -> ObjectKey:
    key = ObjectKey(CRD_WORKLOAD, "default", name)
    gangs.set_object(
        GroupObject(
            key,
            ObjectRef("workload-scheduler.io/v1alpha1", "Workload", "default", name, f"w-{name}"),
            {"g": GroupPolicy(gang=True, min_count=min_count, **policy)},
        )
    )
    return key


def member(workload: str, i: int, priority: int, cpu: str, node: str = "") -> Pod:
    labels = {LABEL_WORKLOAD: workload, LABEL_POD_GROUP: "g"}
    if node:
        return running(f"{workload}-{i}", priority, cpu, node, labels=labels)
    return make_pod(
        f"{workload}-{i}",
        cpu=cpu,
        priority=priority,
        labels=labels,
        schedulerName="workload-scheduler",
    )


async def test_gang_preempts_two_whole_low_gangs_and_takes_the_room() -> None:
    w, gangs = gang_world(4)
    low_pods = []
    for g in range(4):
        crd_workload(gangs, f"low{g}", 4)
        for i in range(4):
            p = member(f"low{g}", i, 10, "1", node=f"n{i}")  # striped: each node full
            low_pods.append(p)
            w.add(p)
    crd_workload(gangs, "high", 8)
    for i in range(8):
        w.add(member("high", i, 100, "1"))
    assert await w.try_pod("high-0") is None
    evicted = {name for name, _, _ in w.preempter.evictions}
    gangs_hit = {name.rsplit("-", 1)[0] for name in evicted}
    assert len(gangs_hit) == 2 and len(evicted) == 8  # two whole gangs, never part of one
    assert len([n for n in w.preempter.nominations if n[1]]) == 8
    assert (
        "preemption: preempting 2 gangs (8 pods) of priority 10 to place 8 pods"
        in (w.reporter.failed["high-0"])
    )
    # While the victims terminate, no second preemption.
    assert await w.try_pod("high-1") is None
    assert len(w.preempter.evictions) == 8
    assert "waiting for 8 preempted pods to terminate" in w.reporter.failed["high-1"]
    # A low pod may not take the room meanwhile.
    for p in low_pods:
        if p.metadata.name in evicted:
            w.delete(p)
    w.add(pending("sneaky", 5, "1"))
    assert await w.try_pod("sneaky") is None
    # The gang is placed once the victims are gone.
    assert await w.try_pod("high-2") is not None
    placed = [q for q in gangs.members(GroupKey(ObjectKey(CRD_WORKLOAD, "default", "high"), "g"))]
    assert all(w.cache.node_of(uid) for uid in placed)
    await asyncio.sleep(0)


async def test_single_pod_disruption_gang_loses_only_what_is_needed() -> None:
    w, gangs = gang_world(2)
    crd_workload(gangs, "low", 8, single_pod_disruption=True)
    for i in range(8):
        w.add(member("low", i, 10, "1", node=f"n{i % 2}"))
    crd_workload(gangs, "high", 2)
    for i in range(2):
        w.add(member("high", i, 100, "1"))
    assert await w.try_pod("high-0") is None
    assert len(w.preempter.evictions) == 2


async def test_pod_preemption_never_breaks_a_whole_gang() -> None:
    w, gangs = gang_world(1)
    crd_workload(gangs, "low", 4)
    for i in range(4):
        w.add(member("low", i, 10, "1", node="n0"))
    w.add(pending("urgent", 1000, "1"))
    assert await w.try_pod("urgent") is None
    assert w.preempter.evictions == []


async def test_equal_priority_gangs_do_not_preempt_each_other() -> None:
    w, gangs = gang_world(1)
    crd_workload(gangs, "a", 4)
    for i in range(4):
        w.add(member("a", i, 100, "1", node="n0"))
    crd_workload(gangs, "b", 4)
    for i in range(4):
        w.add(member("b", i, 100, "1"))
    assert await w.try_pod("b-0") is None
    assert w.preempter.evictions == []
    assert "no pods of lower priority than 100 to preempt" in w.reporter.failed["b-0"]


async def test_gang_priority_from_its_priority_class() -> None:
    """Our CRD names a class; its members' own priority is 0. Unknown class: no guess."""
    w, gangs = gang_world(4)
    for g in range(4):
        crd_workload(gangs, f"low{g}", 4, priority=10)
        for i in range(4):
            w.add(member(f"low{g}", i, 10, "1", node=f"n{i}"))
    high = crd_workload(gangs, "high", 8, priority_class_name="urgent")
    for i in range(8):
        w.add(member("high", i, 0, "1"))
    assert await w.try_pod("high-0") is None
    assert w.preempter.evictions == []
    assert "preemption: no PriorityClass with name urgent was found" in w.reporter.failed["high-0"]
    gangs.classes.apply(
        "ADDED", msgspec.convert({"metadata": {"name": "urgent"}, "value": 100}, PriorityClass)
    )
    assert await w.try_pod("high-1") is None
    assert len(w.preempter.evictions) == 8
    assert (
        "preempting 2 gangs (8 pods) of priority 10 to place 8 pods"
        in (w.reporter.failed["high-1"])
    )
    # Each victim's Preempted Event names the preemptor's group object (related).
    assert set(w.preempter.groups) == {gangs.objects[high].ref}


async def test_room_nominated_to_a_gang_is_held_at_its_group_priority() -> None:
    """A pod of priority 50 does not take room nominated to a gang of priority 100 whose
    members' own priority is 0 (RunFilterPluginsWithNominatedPods, at the group's level)."""
    w, gangs = gang_world(4)
    low_pods = []
    for g in range(4):
        crd_workload(gangs, f"low{g}", 4, priority=10)
        for i in range(4):
            p = member(f"low{g}", i, 10, "1", node=f"n{i}")
            low_pods.append(p)
            w.add(p)
    crd_workload(gangs, "high", 8, priority=100)
    for i in range(8):
        w.add(member("high", i, 0, "1"))
    assert await w.try_pod("high-0") is None
    evicted = {name for name, _, _ in w.preempter.evictions}
    assert len(evicted) == 8
    for p in low_pods:
        if p.metadata.name in evicted:
            w.delete(p)
    w.add(pending("sneaky", 50, "1"))
    assert await w.try_pod("sneaky") is None  # the room is the gang's
    w.add(pending("urgent", 1000, "1"))
    assert await w.try_pod("urgent") is not None  # higher than the gang: it may
    await asyncio.sleep(0)


async def test_queue_orders_gang_members_at_their_group_priority() -> None:
    w, gangs = gang_world(1)
    crd_workload(gangs, "high", 1, priority=100)
    w.add(pending("plain", 50, "1"))
    w.add(member("high", 0, 0, "1"))  # its own priority 0, its group's 100
    first = await w.queue.pop()
    assert first.info.pod.metadata.name == "high-0"


async def test_pod_preemption_compares_a_single_mode_gang_at_its_group_priority() -> None:
    """Members of a gang that may lose pods one by one are victims of pod-by-pod
    preemption only for a pod above their group's priority, whatever their own."""
    w, gangs = gang_world(1)
    crd_workload(gangs, "batch", 4, single_pod_disruption=True, priority=1000)
    for i in range(4):
        w.add(member("batch", i, 0, "1", node="n0"))
    w.add(pending("mid", 500, "1"))
    assert await w.try_pod("mid") is None
    assert w.preempter.evictions == []
    w.add(pending("top", 2000, "1"))
    assert await w.try_pod("top") is None
    assert len(w.preempter.evictions) == 1


ANTI_X = {
    "podAntiAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": [
            {
                "labelSelector": {"matchLabels": {"app": "x"}},
                "topologyKey": "kubernetes.io/hostname",
            }
        ]
    }
}


def labelled_world(cached: bool = False) -> World:
    w = world(cached=cached)
    w.cache.set_node(make_node("n1", cpu="4", labels={"kubernetes.io/hostname": "n1"}))
    return w


@pytest.mark.parametrize("cached", [False, True])
async def test_anti_affinity_preemption_evicts_exactly_the_pod_it_rejects(cached: bool) -> None:
    """InterPodAffinity runs in the dry run with the victims removed: of two lower-priority
    pods, only the one the preemptor's anti-affinity selects is evicted (resources alone
    would evict none), and the preemptor then takes the node."""
    w = labelled_world(cached)
    low = running("low", 0, "1", "n1", labels={"app": "x"})
    w.add(low)
    w.add(running("other", 0, "1", "n1"))
    w.add(pending("p", 100, "1", affinity=ANTI_X))
    assert await w.try_pod("p") is None
    assert w.preempter.evictions == [("low", "p", "n1")]
    assert w.preempter.nominations == [("p", "n1")]
    assert w.reporter.failed["p"] == (
        "0/1 nodes are available: 1 node(s) didn't match pod anti-affinity rules."
    )
    w.delete(low)
    assert await w.try_pod("p") == "n1"


@pytest.mark.parametrize("cached", [False, True])
async def test_existing_pods_anti_affinity_preemption_evicts_the_guard(cached: bool) -> None:
    """An existing lower-priority pod whose required anti-affinity rejects the preemptor is
    the victim; its neighbour stays (the cache's anti-affinity index is not reused)."""
    w = labelled_world(cached)
    guard_terms = {
        "podAntiAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {
                    "labelSelector": {"matchLabels": {"app": "p"}},
                    "topologyKey": "kubernetes.io/hostname",
                }
            ]
        }
    }
    w.add(running("guard", 0, "1", "n1", affinity=guard_terms))
    w.add(running("other", 0, "1", "n1", labels={"app": "p"}))
    w.add(pending("p", 100, "1", labels={"app": "p"}))
    assert await w.try_pod("p") is None
    assert w.preempter.evictions == [("guard", "p", "n1")]
    assert w.reporter.failed["p"] == (
        "0/1 nodes are available: 1 node(s) didn't satisfy existing pods anti-affinity rules."
    )


SPREAD_S = [
    {
        "maxSkew": 1,
        "topologyKey": "topology.kubernetes.io/zone",
        "whenUnsatisfiable": "DoNotSchedule",
        "labelSelector": {"matchLabels": {"app": "s"}},
    }
]


@pytest.mark.parametrize("cached", [False, True])
async def test_spread_preemption_evicts_one_pod_in_the_crowded_zone(cached: bool) -> None:
    """maxSkew 1 over two zones: zone a holds two low pods, zone b one pod of the
    preemptor's priority on a full node. Evicting one pod in zone a makes room; the other
    is reprieved (removing it too is not needed)."""
    w = world(cached=cached)
    w.cache.set_node(make_node("n1", cpu="4", labels={"topology.kubernetes.io/zone": "a"}))
    w.cache.set_node(make_node("n2", cpu="1", labels={"topology.kubernetes.io/zone": "b"}))
    w.add(running("l1", 0, "1", "n1", labels={"app": "s"}))
    w.add(running("l2", 0, "1", "n1", labels={"app": "s"}))
    w.add(running("peer", 100, "1", "n2", labels={"app": "s"}))
    w.add(pending("p", 100, "1", labels={"app": "s"}, topologySpreadConstraints=SPREAD_S))
    assert await w.try_pod("p") is None
    assert len(w.preempter.evictions) == 1
    assert w.preempter.evictions[0][0] in ("l1", "l2")
    assert w.preempter.evictions[0][1:] == ("p", "n1")
    assert w.preempter.nominations == [("p", "n1")]


async def test_same_pod_without_lower_priority_pods_keeps_upstreams_message() -> None:
    w = labelled_world()
    w.add(running("peer", 100, "1", "n1", labels={"app": "x"}))
    w.add(pending("p", 100, "1", affinity=ANTI_X))
    assert await w.try_pod("p") is None
    assert w.reporter.failed["p"] == (
        "0/1 nodes are available: 1 node(s) didn't match pod anti-affinity rules. "
        "no new claims to deallocate, "
        "preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod."
    )


async def test_affinity_to_a_lower_priority_pod_is_lost_with_the_victims() -> None:
    """As upstream's SelectVictimsOnNode: every lower-priority pod is removed first, and the
    pod the preemptor's required affinity needs is one of them, so the node is no candidate
    (nothing is evicted) even though evicting only the other pod would make room."""
    w = labelled_world()
    w.add(running("target", 0, "1", "n1", labels={"app": "x"}))
    w.add(running("filler", 0, "3", "n1"))
    affinity = {"podAffinity": ANTI_X["podAntiAffinity"]}
    w.add(pending("p", 100, "1", affinity=affinity))
    assert await w.try_pod("p") is None
    assert w.preempter.evictions == []
    assert w.reporter.failed["p"] == (
        "0/1 nodes are available: 1 Insufficient cpu. no new claims to deallocate, "
        "preemption: 0/1 nodes are available: 1 node(s) didn't match pod affinity rules."
    )
