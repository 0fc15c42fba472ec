"""Workload-aware preemption's victim search: whole units, one domain, least disruption."""

from __future__ import annotations

import random
from typing import Any

import msgspec
import pytest
from factories import make_node, make_pod

from scheduler.api.sources.policies import podgroup_object, workload_object
from scheduler.api.sources.shapes import PodGroup, Workload
from scheduler.cache.priority_classes import PriorityClasses
from scheduler.framework.cycle import Profile
from scheduler.framework.nodeinfo import add_pod, make_node_info
from scheduler.framework.podinfo import make_pod_info
from scheduler.framework.preemption import compile_budget
from scheduler.framework.types import NodeInfo, PodInfo
from scheduler.gang import priority as gang_priority
from scheduler.gang.model import (
    CRD_WORKLOAD,
    LABEL_POD_GROUP,
    LABEL_WORKLOAD,
    GroupObject,
    GroupPolicy,
    ObjectKey,
)
from scheduler.gang.preemption import (
    GangVictims,
    NoVictims,
    Unit,
    describe,
    find_gang_victims,
    still_fits,
)
from scheduler.gang.registry import GangRegistry
from scheduler.model.objects import PriorityClass
from scheduler.model.policy import PodDisruptionBudget
from scheduler.model.refs import ObjectRef

PROFILE = Profile.default()


def pod_info(name: str, priority: int) -> PodInfo:
    return make_pod_info(make_pod(name, priority=priority))


def pod(name: str, priority: int, cpu: str = "1", labels: dict[str, str] | None = None) -> PodInfo:
    return make_pod_info(make_pod(name, cpu=cpu, memory="1Gi", priority=priority, labels=labels))


def nodes(count: int, cpu: str = "4", rack: str | None = None, prefix: str = "n") -> list[NodeInfo]:
    labels = {"rack": rack} if rack else {}
    return [
        make_node_info(make_node(f"{prefix}{i}", cpu=cpu, memory="64Gi", labels=labels))
        for i in range(count)
    ]


def running_gang(
    name: str, priority: int, on: list[NodeInfo], per_node: int = 1, cpu: str = "1"
) -> Unit:
    pods = []
    for node in on:
        for j in range(per_node):
            p = pod(f"{name}-{node.name}-{j}", priority, cpu)
            add_pod(node, p)
            pods.append(p)
    return Unit(f"default/{name}", tuple(pods), priority, gang=True)


def members(name: str, count: int, priority: int, cpu: str = "1") -> list[PodInfo]:
    return [pod(f"{name}-{i}", priority, cpu) for i in range(count)]


def victims_of(result: GangVictims | NoVictims) -> list[str]:
    assert isinstance(result, GangVictims), result
    return sorted(u.name for u in result.units)


def test_two_whole_low_gangs_make_room_for_a_gang_of_eight() -> None:
    cluster = nodes(4)
    # Four low gangs of 4, striped over the nodes: each node full.
    units = [running_gang(f"low{i}", 10, cluster) for i in range(4)]
    result = find_gang_victims(
        PROFILE, members("high", 8, 100), 8, 100, cluster, units, [], random.Random(0)
    )
    assert isinstance(result, GangVictims)
    assert len(result.units) == 2 and all(u.gang for u in result.units)
    assert len(result.pods) == 8  # two whole gangs, never part of one
    assert len(result.plan) == 8
    assert describe(result, 100, 8, None) == (
        "preempting 2 gangs (8 pods) of priority 10 to place 8 pods"
    )


def test_lower_priority_gangs_go_first() -> None:
    cluster = nodes(2)
    units = [
        running_gang("mid", 50, cluster, per_node=2),
        running_gang("low", 10, cluster, per_node=2),
    ]
    result = find_gang_victims(
        PROFILE, members("high", 4, 100), 4, 100, cluster, units, [], random.Random(0)
    )
    assert victims_of(result) == ["default/low"]


def test_topology_victims_only_in_the_chosen_domain() -> None:
    r1 = nodes(2, rack="r1", prefix="a")
    r2 = nodes(2, rack="r2", prefix="b")
    units = [
        running_gang("r1-mid", 50, r1, per_node=4),
        running_gang("r2-low-a", 10, r2, per_node=2),
        running_gang("r2-low-b", 10, r2, per_node=2),
    ]
    result = find_gang_victims(
        PROFILE,
        members("high", 8, 100),
        8,
        100,
        [*r1, *r2],
        units,
        [],
        random.Random(0),
        topology_key="rack",
    )
    assert isinstance(result, GangVictims)
    assert result.domain == "r2"
    assert victims_of(result) == ["default/r2-low-a", "default/r2-low-b"]
    assert {node for _, node in result.plan} <= {"b0", "b1"}
    assert describe(result, 100, 8, "rack") == (
        "preempting 2 gangs (8 pods) of priority 10 in rack=r2 to place 8 pods"
    )


def test_topology_fixed_domain_when_the_gang_already_runs_there() -> None:
    r1 = nodes(1, rack="r1", prefix="a")
    r2 = nodes(1, rack="r2", prefix="b")
    units = [running_gang("in-r1", 50, r1, per_node=4), running_gang("in-r2", 10, r2, per_node=4)]
    result = find_gang_victims(
        PROFILE,
        members("high", 2, 100),
        2,
        100,
        [*r1, *r2],
        units,
        [],
        random.Random(0),
        topology_key="rack",
        domain="r1",
    )
    assert victims_of(result) == ["default/in-r1"]


def test_single_pod_disruption_evicts_only_what_is_needed() -> None:
    cluster = nodes(2)
    gang = running_gang("single", 10, cluster, per_node=4)
    units = [Unit(p.key, (p,), 10, gang=False) for p in gang.pods]
    result = find_gang_victims(
        PROFILE, members("high", 2, 100), 2, 100, cluster, units, [], random.Random(0)
    )
    assert isinstance(result, GangVictims)
    assert len(result.pods) == 2
    assert describe(result, 100, 2, None) == "preempting 2 pods of priority 10 to place 2 pods"


def test_still_fits_checks_the_plan_on_its_own_nodes() -> None:
    cluster = nodes(2, cpu="2")
    high = members("high", 2, 100)
    plan = [(high[0], "n0"), (high[1], "n0")]
    assert still_fits(PROFILE, plan, cluster)
    assert not still_fits(PROFILE, [*plan, (pod("high-2", 100), "n0")], cluster)
    add_pod(cluster[0], pod("low", 10))
    assert not still_fits(PROFILE, plan, cluster)
    assert still_fits(PROFILE, [(high[0], "n0"), (high[1], "n1")], cluster)
    assert not still_fits(PROFILE, [(high[0], "gone")], cluster)
    assert len(cluster[0].pods) == 1 and not cluster[1].pods  # restored


def test_many_single_units_place_the_gang_about_once_per_victim(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import scheduler.gang.preemption as gp

    cluster = nodes(20)
    gangs = [running_gang(f"low{i}", 10, cluster) for i in range(4)]
    units = [Unit(p.key, (p,), 10, gang=False) for g in gangs for p in g.pods]
    calls = 0
    real = gp.simulate

    def counting(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(gp, "simulate", counting)
    result = find_gang_victims(
        PROFILE, members("high", 8, 100), 8, 100, cluster, units, [], random.Random(0)
    )
    assert isinstance(result, GangVictims)
    assert len(result.pods) == 8  # the minimum, out of 80 candidate units
    assert len(result.plan) == 8
    # Once with every unit removed, at most twice per victim, once for the final plan;
    # never once per candidate unit.
    assert calls <= 2 + 2 * len(result.units) < len(units)


def test_no_preemption_when_evicting_everything_lower_is_not_enough() -> None:
    cluster = nodes(2)
    units = [
        running_gang("low", 10, cluster, per_node=2),
        running_gang("top", 500, cluster, per_node=2),
    ]
    result = find_gang_victims(
        PROFILE, members("high", 8, 100), 8, 100, cluster, units, [], random.Random(0)
    )
    assert result == NoVictims(
        "evicting every pod of lower priority than 100 would not make room for 8 pods"
    )


def test_equal_priority_never_preempts() -> None:
    cluster = nodes(1)
    units = [running_gang("peer", 100, cluster, per_node=4)]
    result = find_gang_victims(
        PROFILE, members("high", 4, 100), 4, 100, cluster, units, [], random.Random(0)
    )
    assert result == NoVictims("no pods of lower priority than 100 to preempt")


def test_pdb_guarded_gang_is_spared() -> None:
    cluster = nodes(2)
    guarded = []
    for node in cluster[:1]:
        for j in range(4):
            p = pod(f"g-{j}", 10, labels={"app": "db"})
            add_pod(node, p)
            guarded.append(p)
    units = [
        Unit("default/guarded", tuple(guarded), 10, gang=True),
        running_gang("free", 10, cluster[1:], per_node=4),
    ]
    pdb = compile_budget(
        msgspec.convert(
            {
                "metadata": {"name": "db", "namespace": "default", "uid": "u"},
                "spec": {"selector": {"matchLabels": {"app": "db"}}},
                "status": {"disruptionsAllowed": 0},
            },
            PodDisruptionBudget,
        )
    )
    result = find_gang_victims(
        PROFILE, members("high", 4, 100), 4, 100, cluster, units, [pdb], random.Random(0)
    )
    assert isinstance(result, GangVictims)
    assert victims_of(result) == ["default/free"] and result.pdb_violations == 0


def test_bounded_victims_per_cycle() -> None:
    cluster = nodes(4)
    units = [running_gang(f"low{i}", 10, cluster) for i in range(4)]
    result = find_gang_victims(
        PROFILE,
        members("high", 8, 100),
        8,
        100,
        cluster,
        units,
        [],
        random.Random(0),
        max_victim_pods=4,
    )
    assert result == NoVictims("preemption would evict 8 pods, more than 4 at once")


def test_nominated_room_of_another_preemptor_is_not_taken() -> None:
    cluster = nodes(1)
    units = [running_gang("low", 10, cluster, per_node=4)]
    waiting = pod("other-preemptor", 1000, "4")
    result = find_gang_victims(
        PROFILE,
        members("high", 2, 100),
        2,
        100,
        cluster,
        units,
        [],
        random.Random(0),
        nominated=lambda name: [waiting],
    )
    assert isinstance(result, NoVictims)


def test_cluster_is_left_untouched() -> None:
    cluster = nodes(2)
    units = [running_gang("low", 10, cluster, per_node=4)]
    before = [(dict(n.requested), set(n.pods)) for n in cluster]
    find_gang_victims(
        PROFILE, members("high", 4, 100), 4, 100, cluster, units, [], random.Random(0)
    )
    assert [(n.requested, set(n.pods)) for n in cluster] == before


# -- the group's priority and disruptionMode, as each API spells them ----------------------


def _podgroup_policy(spec: dict[str, Any]) -> Any:
    pg = msgspec.convert(
        {
            "metadata": {"name": "pg", "namespace": "ns", "uid": "u"},
            "spec": {"schedulingPolicy": {"gang": {"minCount": 2}}, **spec},
        },
        PodGroup,
    )
    obj = podgroup_object(pg, api_version="scheduling.k8s.io/v1beta1", resource="/apis/x")
    return obj.policies.get(""), obj.invalid


def test_podgroup_disruption_mode_and_priority() -> None:
    policy, _ = _podgroup_policy({})
    assert (policy.single_pod_disruption, policy.priority) == (False, None)
    policy, _ = _podgroup_policy({"disruptionMode": {"single": {}}})  # 1.37
    assert policy.single_pod_disruption
    policy, _ = _podgroup_policy({"disruptionMode": "Pod"})  # 1.36
    assert policy.single_pod_disruption
    policy, _ = _podgroup_policy({"disruptionMode": {"all": {}}, "priority": 0})
    # priority 0 without a class is admission's default: the members' priority counts.
    assert (policy.single_pod_disruption, policy.priority) == (False, None)
    policy, _ = _podgroup_policy({"priority": 0, "priorityClassName": "zero"})
    assert policy.priority == 0
    policy, _ = _podgroup_policy({"priority": 500})
    assert policy.priority == 500
    _, invalid = _podgroup_policy({"disruptionMode": "Sometimes"})
    assert invalid and "disruptionMode must be Single or All" in invalid
    # A class without a priority (admission did not resolve it): the scheduler does.
    policy, _ = _podgroup_policy({"priorityClassName": "urgent"})
    assert (policy.priority, policy.priority_class_name) == (None, "urgent")
    policy, _ = _podgroup_policy({"priorityClassName": "urgent", "priority": 7})
    assert (policy.priority, policy.priority_class_name) == (7, "")


def _crd_policy(entry: dict[str, Any]) -> tuple[Any, str | None]:
    data = {
        "metadata": {"name": "w", "namespace": "default", "uid": "u"},
        "spec": {"podGroups": [{"name": "g", "policy": {"gang": {"minCount": 2}}, **entry}]},
    }
    obj = workload_object(
        msgspec.convert(data, Workload), kind=CRD_WORKLOAD, api_version="workload-scheduler.io/v1"
    )
    return obj.policies.get("g"), obj.invalid


def test_crd_priority_class_name() -> None:
    policy, _ = _crd_policy({"priorityClassName": "urgent"})
    assert (policy.priority, policy.priority_class_name) == (None, "urgent")
    policy, _ = _crd_policy({"priority": 5})
    assert (policy.priority, policy.priority_class_name) == (5, "")
    _, invalid = _crd_policy({"priority": 5, "priorityClassName": "urgent"})
    assert invalid and "set priority or priorityClassName, not both" in invalid
    _, invalid = _crd_policy({"priorityClassName": "Not A Name"})
    assert invalid and "priorityClassName must be a PriorityClass name" in invalid


def test_group_and_member_priority() -> None:
    gangs = GangRegistry()
    named = GroupPolicy(gang=True, min_count=2, priority_class_name="urgent")
    members = [pod_info("m0", priority=3), pod_info("m1", priority=9)]
    # The class is not known yet: no guess (the members' priority meanwhile).
    assert gang_priority.missing_class(gangs, named) == (
        "no PriorityClass with name urgent was found"
    )
    assert gang_priority.group_priority(gangs, named, members) == 9
    gangs.classes.apply(
        "ADDED", msgspec.convert({"metadata": {"name": "urgent"}, "value": 1000}, PriorityClass)
    )
    assert gang_priority.missing_class(gangs, named) is None
    assert gang_priority.group_priority(gangs, named, members) == 1000
    system = GroupPolicy(gang=True, priority_class_name="system-cluster-critical")
    assert gang_priority.own_priority(gangs, system) == 2_000_000_000
    # Member priority: a gang member counts at its group's, anyone else at its own.
    key = ObjectKey(CRD_WORKLOAD, "default", "w")
    gangs.set_object(
        GroupObject(key, ObjectRef("v", "Workload", "default", "w", "u"), {"g": named})
    )
    member = make_pod("m0", priority=3, labels={LABEL_WORKLOAD: "w", LABEL_POD_GROUP: "g"})
    gangs.observe_pod(member, "")
    assert gang_priority.member_priority(gangs, make_pod_info(member)) == 1000
    assert gang_priority.member_priority(gangs, pod_info("plain", priority=3)) == 3
    gangs.classes.apply("DELETED", msgspec.convert({"metadata": {"name": "urgent"}}, PriorityClass))
    assert gang_priority.member_priority(gangs, make_pod_info(member)) == 3


def test_a_new_priority_class_is_announced_once() -> None:
    classes = PriorityClasses()
    news: list[int] = []
    classes.on_new = lambda: news.append(1)

    def pc(name: str, value: int) -> PriorityClass:
        return msgspec.convert({"metadata": {"name": name}, "value": value}, PriorityClass)

    classes.replace([pc("a", 1)])
    classes.apply("ADDED", pc("b", 2))
    classes.apply("MODIFIED", pc("b", 2))  # not new
    classes.replace([pc("a", 1), pc("b", 2)])  # a relist with nothing new
    assert len(news) == 2
    assert (classes.value("a"), classes.value("b"), classes.value("c")) == (1, 2, None)
