"""No futile retries: a parked gang wakes only for events that could make it fit."""

from __future__ import annotations

import random

from factories import make_node, make_pod

from scheduler.cache.cluster_cache import ClusterCache
from scheduler.framework.cycle import Profile
from scheduler.framework.podinfo import make_pod_info
from scheduler.gang.placement import place_gang
from scheduler.gang.retry import GangRetryHint
from scheduler.queue.scheduling_queue import UNSCHEDULABLE, ClusterEvent, SchedulingQueue

TAINT = {"key": "dedicated", "value": "x", "effect": "NoSchedule"}


def racks() -> ClusterCache:
    """r0: two free 4-cpu nodes; r1: two tainted nodes; one node without a rack."""
    cache = ClusterCache()
    for i in range(2):
        cache.set_node(make_node(f"r0-n{i}", cpu="4", labels={"rack": "r0"}))
        cache.set_node(make_node(f"r1-n{i}", cpu="4", labels={"rack": "r1"}, taints=[TAINT]))
    cache.set_node(make_node("loose", cpu="4"))
    return cache


def gone(node: str, cpu: int) -> ClusterEvent:
    return ClusterEvent("AssignedPodDelete", node, {"cpu": cpu, "pods": 1})


def test_the_hint_waits_for_enough_capacity_in_a_domain_that_can_use_it() -> None:
    cache = racks()
    pods = [make_pod_info(make_pod(f"w{i}", cpu="1")) for i in range(10)]
    attempt = place_gang(cache, Profile.default(), pods, 10, random.Random(0), topology_key="rack")
    assert not attempt.ok(10)

    def domain_of(name: str) -> str | None:
        node = cache.node(name)
        return node.node.metadata.labels.get("rack") if node else None

    hint = GangRetryHint(attempt, domain_of)
    assert not hint(gone("loose", 8000)), "no rack label: the gang cannot go there"
    assert not hint(gone("r1-n0", 8000)), "tainted: freeing it does not help"
    assert not hint(gone("r0-n0", 1000)), "r0 is short by 2 cpu; 1 is not enough"
    assert hint(gone("r0-n1", 1000)), "2 cpu given back in r0 by now"
    assert hint(ClusterEvent("NodeAdd", "r2-n0"))
    assert hint(ClusterEvent("AssumedPodForgotten")), "no details: cannot judge, so yes"


def test_no_topology_any_capacity_counts() -> None:
    cache = ClusterCache()
    cache.set_node(make_node("n0", cpu="2"))
    pods = [make_pod_info(make_pod(f"w{i}", cpu="1")) for i in range(3)]
    attempt = place_gang(cache, Profile.default(), pods, 3, random.Random(0))
    hint = GangRetryHint(attempt, None)
    assert not hint(gone("elsewhere", 500))
    assert hint(gone("n0", 500))


def test_queue_parks_members_until_the_hint_says_yes_and_counts_each_event_once() -> None:
    q = SchedulingQueue()
    members = [make_pod_info(make_pod(f"w{i}", cpu="1")) for i in range(3)]
    for m in members:
        q.add(m)
    popped = q.pop_ready([m.uid for m in members])
    asked: list[str] = []

    def hint(event: ClusterEvent) -> bool:
        asked.append(event.name)
        return event.name == "NodeAdd"

    for qp in popped:
        q.requeue_unschedulable(qp, hint=hint, attempts=4)
    assert all(qp.where == UNSCHEDULABLE and qp.attempts == 4 for qp in popped)
    assert q.move_all(gone("n0", 1000)) == 0
    assert q.move_all(ClusterEvent("NodeAdd", "n9")) == 3
    assert all(qp.where != UNSCHEDULABLE for qp in popped)


def test_an_event_while_in_flight_counts_only_if_the_hint_accepts_it() -> None:
    q = SchedulingQueue()
    a, b = make_pod_info(make_pod("a")), make_pod_info(make_pod("b"))
    q.add(a)
    q.add(b)
    qa, qb = q.pop_ready([a.uid, b.uid])
    q.move_all(gone("n0", 100))  # while both are in flight
    q.requeue_unschedulable(qa, hint=lambda e: False)
    q.requeue_unschedulable(qb, hint=lambda e: e.name == "AssignedPodDelete")
    assert qa.where == UNSCHEDULABLE
    assert qb.where != UNSCHEDULABLE
