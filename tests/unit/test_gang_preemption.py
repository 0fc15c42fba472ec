"""Workload-aware preemption's victim search: whole units, one domain, least disruption."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import msgspec
import pytest
from factories import make_node, make_pod

from scheduler.api.sources.policies import podgroup_object, workload_object
from scheduler.api.sources.shapes import PodGroup, Workload
from scheduler.cache.cluster_cache import ClusterCache
from scheduler.cache.priority_classes import PriorityClasses
from scheduler.framework import recount
from scheduler.framework.cycle import NodesView, Profile, find_feasible, run_pre_filters
from scheduler.framework.nodeinfo import add_pod, make_node_info
from scheduler.framework.podinfo import make_pod_info
from scheduler.framework.preemption import compile_budget, run_filters
from scheduler.framework.recount import RECOUNTED_PLUGINS, DryRun
from scheduler.framework.types import NodeInfo, PodInfo, Unresolvable
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
from tests.unit.volume_factories import claim, pvc_volume, store_of, volume

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
    run = DryRun(PROFILE, NodesView(cluster), cluster)
    high = members("high", 2, 100)
    plan = [(high[0], "n0"), (high[1], "n0")]
    assert still_fits(run, plan)
    assert not still_fits(run, [*plan, (pod("high-2", 100), "n0")])
    run.add("n0", pod("low", 10))
    assert not still_fits(run, plan)
    assert still_fits(run, [(high[0], "n0"), (high[1], "n1")])
    assert not still_fits(run, [(high[0], "gone")])
    assert len(run.copies["n0"].pods) == 1 and not run.copies["n1"].pods  # restored
    assert not cluster[0].pods  # the cluster's nodes are not the dry run's


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


def test_room_without_victims_preempts_nothing_and_says_so() -> None:
    # The gang cycle could not place the gang, but the dry run does without evicting
    # anyone: no plan without victims (it used to fail on describing one).
    cluster = nodes(2)
    units = [running_gang("low", 10, cluster[:1], per_node=1)]
    result = find_gang_victims(
        PROFILE, members("high", 2, 100), 2, 100, cluster, units, [], random.Random(0)
    )
    assert result == NoVictims(
        "preemption's dry run places 2 pods without evicting any pod; nothing is preempted"
    )


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


# -- inter-pod affinity and topology spread in the dry run ---------------------------------

HOST, ZONE = "kubernetes.io/hostname", "topology.kubernetes.io/zone"


def anti_affinity(app: str, key: str = HOST) -> dict[str, Any]:
    term = {"labelSelector": {"matchLabels": {"app": app}}, "topologyKey": key}
    return {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [term]}}


def zone_spread(app: str) -> list[dict[str, Any]]:
    return [
        {
            "maxSkew": 1,
            "topologyKey": ZONE,
            "whenUnsatisfiable": "DoNotSchedule",
            "labelSelector": {"matchLabels": {"app": app}},
        }
    ]


def labelled(name: str, priority: int, app: str = "", node: str = "", **spec: Any) -> PodInfo:
    return make_pod_info(
        make_pod(
            name,
            cpu="1",
            memory="1Gi",
            priority=priority,
            labels={"app": app} if app else None,
            node_name=node,
            **spec,
        )
    )


def cache_of(*layout: tuple[str, str, list[PodInfo]]) -> ClusterCache:
    """A cache of 4-cpu nodes given as (name, zone, pods on it), with hostname and zone."""
    cache = ClusterCache()
    for name, zone, _ in layout:
        cache.set_node(make_node(name, cpu="4", memory="64Gi", labels={HOST: name, ZONE: zone}))
    for name, _, pods in layout:
        for p in pods:
            cache.set_assigned_pod(p, name)
    return cache


def singles(cache: ClusterCache) -> list[Unit]:
    """Every running pod as its own unit, in node order."""
    return [
        Unit(p.key, (p,), p.pod.spec.priority, gang=False)
        for node in cache.nodes()
        for p in node.pods.values()
    ]


def full(node: str, count: int = 4, priority: int = 10) -> list[PodInfo]:
    return [labelled(f"{node}-low{j}", priority, node=node) for j in range(count)]


def find(cache: ClusterCache, gang: list[PodInfo], need: int) -> GangVictims | NoVictims:
    profile = Profile.default(cluster=cache)
    return find_gang_victims(
        profile, gang, need, 100, cache.nodes(), singles(cache), [], random.Random(0)
    )


def placeable(cache: ClusterCache, victims: GangVictims) -> bool:
    """The oracle: with the victims really removed from the cache, every member of the
    plan passes the profile's pre-filters and filters over the cache on its planned node,
    in plan order, each counted there before the next (as the gang cycle assumes them)."""
    profile = Profile.default(cluster=cache)
    for victim in victims.pods:
        cache.remove_pod(victim.uid)
    for member, node_name in victims.plan:
        extra = run_pre_filters(profile, member, cache)
        node = cache.node(node_name)
        if isinstance(extra, Unresolvable) or node is None:
            return False
        if not find_feasible(profile, member, [node], None, [*profile.filters, *extra]).feasible:
            return False
        cache.assume(member, node_name)
    return True


def test_members_with_anti_affinity_to_each_other_get_one_node_each() -> None:
    # One worker per node: four full nodes, a gang of two that must not share a node.
    cache = cache_of(*((f"n{i}", "z", full(f"n{i}")) for i in range(4)))
    gang = [labelled(f"w{i}", 100, "worker", affinity=anti_affinity("worker")) for i in range(2)]
    result = find(cache, gang, 2)
    assert isinstance(result, GangVictims), result
    planned = [node for _, node in result.plan]
    assert len(set(planned)) == 2  # one member per node
    assert len(result.pods) == 2  # one victim on each of those nodes, nothing more
    assert sorted(cache.node_of(v.uid) or "" for v in result.pods) == sorted(planned)
    assert placeable(cache, result)


@pytest.mark.parametrize("whose", ["victim's", "member's"])
def test_removing_the_pod_anti_affinity_is_about_makes_room(whose: str) -> None:
    # n0 has room but holds a low pod anti-affinity keeps the gang away from (its own
    # anti-affinity against the members, or the members' against it); n1 is full of pods
    # more important than it. Evicting that one pod is the least disruption.
    if whose == "victim's":
        guard = labelled("guard", 5, "web", node="n0", affinity=anti_affinity("gang"))
        gang = [labelled(f"m{i}", 100, "gang") for i in range(2)]
    else:
        guard = labelled("guard", 5, "web", node="n0")
        gang = [labelled(f"m{i}", 100, "gang", affinity=anti_affinity("web")) for i in range(2)]
    cache = cache_of(("n0", "z", [guard]), ("n1", "z", full("n1")))
    result = find(cache, gang, 2)
    assert victims_of(result) == ["default/guard"]
    assert isinstance(result, GangVictims)
    assert [node for _, node in result.plan] == ["n0", "n0"]
    assert placeable(cache, result)


def test_spread_gang_is_planned_within_its_skew() -> None:
    # maxSkew 1 over two zones: the gang of four needs two members in each, though the
    # pods of zone b are the more important ones (reprieved first).
    cache = cache_of(
        ("a0", "a", full("a0", priority=5)),
        ("a1", "a", full("a1", priority=5)),
        ("b0", "b", full("b0")),
        ("b1", "b", full("b1")),
    )
    gang = [
        labelled(f"m{i}", 100, "gang", topologySpreadConstraints=zone_spread("gang"))
        for i in range(4)
    ]
    result = find(cache, gang, 4)
    assert isinstance(result, GangVictims), result
    zones = Counter(node[0] for _, node in result.plan)  # a0 and a1 in zone a, b0 and b1 in b
    assert zones == {"a": 2, "b": 2}
    assert len(result.pods) == 4
    assert placeable(cache, result)


def _random_pod(rng: random.Random, name: str, priority: int, node: str = "") -> PodInfo:
    """A pod with random labels, maybe required affinity or anti-affinity (to ``x``,
    ``y`` or ``gang`` pods, by host or zone) and maybe a zone spread constraint."""
    spec: dict[str, Any] = {}
    if rng.random() < 0.4:
        app, key = rng.choice(["x", "y", "gang"]), rng.choice([HOST, ZONE])
        if rng.random() < 0.8:
            spec["affinity"] = anti_affinity(app, key)
        else:
            term = {"labelSelector": {"matchLabels": {"app": app}}, "topologyKey": key}
            spec["affinity"] = {
                "podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [term]}
            }
    if rng.random() < 0.3:
        spec["topologySpreadConstraints"] = zone_spread(rng.choice(["x", "gang"]))
    return labelled(name, priority, rng.choice(["x", "y", "gang", ""]), node=node, **spec)


@pytest.mark.parametrize("compact_at", [4096, 3])
@pytest.mark.parametrize("seed", range(30))
def test_dry_run_filters_match_a_pre_filter_over_the_changed_cluster(
    seed: int, compact_at: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The oracle for ``DryRun``: after any changes to any nodes (pods removed, put back,
    new pods placed), the filters it gives a pod judge every node as InterPodAffinity's and
    PodTopologySpread's pre-filters run afresh over the changed cluster do, whenever the pod
    was first judged (also with the log of changes compacted every few changes)."""
    monkeypatch.setattr(recount, "_COMPACT_AT", compact_at)
    rng = random.Random(seed)
    layout = []
    for i in range(6):
        pods = [_random_pod(rng, f"p{i}-{j}", 10, f"n{i}") for j in range(rng.randrange(4))]
        layout.append((f"n{i}", f"z{i % 3}", pods))
    cache = cache_of(*layout)
    profile = Profile.default(cluster=cache)
    run = DryRun(profile, cache, cache.nodes())
    judged: list[PodInfo] = []
    for step in range(12):
        name = f"n{rng.randrange(6)}"
        copy = run.copies[name]
        if copy.pods and rng.random() < 0.5:
            run.remove(name, rng.choice(list(copy.pods)))
        elif rng.random() < 0.5:
            original = rng.choice([p for n in cache.nodes() for p in n.pods.values()])
            run.add(cache.node_of(original.uid) or "", original)  # put back
        else:
            run.add(name, _random_pod(rng, f"new{step}", 100))
        if rng.random() < 0.5:
            judged.append(_random_pod(rng, f"judged{step}", 100))
        for pod in judged:
            got = run.pre_filters(pod)
            fresh = run_pre_filters(profile, pod, run.view)
            assert isinstance(got, list) and isinstance(fresh, list)
            for node in run.copies.values():
                expected = run_filters([f for f in fresh if f.name in RECOUNTED_PLUGINS], pod, node)
                actual = run_filters([f for f in got if f.name in RECOUNTED_PLUGINS], pod, node)
                assert actual == expected, (seed, step, pod.key, node.name)


@pytest.mark.parametrize("seed", range(40))
def test_gang_plans_are_placeable_with_the_victims_gone(seed: int) -> None:
    """The oracle for the whole search: whatever the members' and the running pods'
    affinity, anti-affinity and spread, a plan found is one the cluster with its victims
    really removed accepts, member by member."""
    rng = random.Random(seed)
    layout = []
    for i in range(6):
        pods = [_random_pod(rng, f"p{i}-{j}", rng.choice([5, 10]), f"n{i}") for j in range(4)]
        layout.append((f"n{i}", f"z{i % 3}", pods))
    cache = cache_of(*layout)
    template = _random_pod(rng, "template", 100)
    gang = [
        make_pod_info(
            msgspec.structs.replace(
                template.pod,
                metadata=msgspec.structs.replace(
                    template.pod.metadata, name=f"m{i}", uid=f"uid-m{i}"
                ),
            )
        )
        for i in range(rng.randrange(2, 5))
    ]
    result = find(cache, gang, len(gang))
    if isinstance(result, GangVictims):
        assert placeable(cache, result), (seed, result.plan)


def test_a_plan_the_filters_refuse_afresh_preempts_nothing() -> None:
    # Two members share one ReadWriteOncePod claim: the gang can never run whole. The dry
    # run does not count claims in use across nodes (VolumeRestrictions skips a claim no
    # pod uses yet), so the chosen plan is checked once with the pre-filters run afresh.
    store = store_of(
        claim("data", namespace="default", modes=("ReadWriteOncePod",), volume="pv"),
        volume("pv", claim_ref=("default", "data"), phase="Bound"),
    )
    cache = cache_of(("n0", "z", full("n0")), ("n1", "z", full("n1")))
    gang = [labelled(f"m{i}", 100, volumes=[pvc_volume("data")]) for i in range(2)]
    profile = Profile.default(cluster=cache, volumes=store)
    result = find_gang_victims(
        profile, gang, 2, 100, cache.nodes(), singles(cache), [], random.Random(0)
    )
    assert isinstance(result, NoVictims), result
    assert result.message.startswith("preemption's plan fails the filters run afresh (pod ")
    assert result.message.endswith(
        ": node has pod using PersistentVolumeClaim with the same name and ReadWriteOncePod "
        "access mode); nothing is preempted"
    )
