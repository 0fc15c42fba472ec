"""Workload-aware preemption on a real API server, per gang API mode.

Victim pods have ``terminationGracePeriodSeconds: 0`` (no kubelet here), so the API
server removes them as soon as the scheduler deletes them; the test then sees which
pods are gone and which gang was placed.
"""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from tests.e2e.k8s import failed_scheduling_message, pods_by_name, wait_until
from tests.e2e.test_gang import settle, submit

LOW, HIGH = "e2e-gang-low", "e2e-gang-high"


def priority_classes(gang: Any) -> None:
    for name, value in ((LOW, 10), (HIGH, 1000)):
        try:
            gang.mode.request(
                "POST",
                "/apis/scheduling.k8s.io/v1/priorityclasses",
                {
                    "apiVersion": "scheduling.k8s.io/v1",
                    "kind": "PriorityClass",
                    "metadata": {"name": name},
                    "value": value,
                },
            )
        except ApiException as error:
            if error.status != 409:
                raise


def running_gangs(gang: Any, count: int, size: int, **workload: Any) -> dict[str, list[str]]:
    """``count`` low-priority gangs of ``size`` one-cpu pods, all bound."""
    names: dict[str, list[str]] = {}
    for g in range(count):
        gang.mode.create_workload(gang.ns, f"low{g}", {"g": size}, **workload)
        names[f"low{g}"] = submit(
            gang, f"low{g}", "g", size, f"low{g}", cpu="1", extra_spec={"priorityClassName": LOW}
        )
    everyone = [n for members in names.values() for n in members]
    wait_until(
        lambda: (
            all(p.spec.node_name for p in pods_by_name(gang.core, gang.ns).values())
            and len(pods_by_name(gang.core, gang.ns)) == len(everyone)
        ),
        timeout=60,
        what="low gangs bound",
    )
    return names


def wait_bound(gang: Any, names: list[str], what: str) -> None:
    wait_until(
        lambda: all(pods_by_name(gang.core, gang.ns)[n].spec.node_name for n in names),
        timeout=90,
        what=what,
    )


def whole(gang: Any) -> dict[str, Any]:
    """Gangs evicted whole: the 1.37 API defaults ``disruptionMode`` to single, so the
    PodGroup says so explicitly; the other modes default to whole with us."""
    return {"extra": {"disruptionMode": {"all": {}}}} if gang.mode.name == "v1beta1" else {}


def alive(gang: Any) -> set[str]:
    return set(pods_by_name(gang.core, gang.ns))


def test_high_gang_evicts_exactly_two_whole_low_gangs(gang: Any) -> None:
    priority_classes(gang)
    for i in range(4):
        gang.node(f"gp-{i}", cpu="4", memory="16Gi")
    low = running_gangs(gang, 4, 4, **whole(gang))
    gang.mode.create_workload(gang.ns, "high", {"g": 8})
    high = submit(gang, "high", "g", 8, "high", cpu="1", extra_spec={"priorityClassName": HIGH})
    wait_bound(gang, high, "high gang bound")
    settle()
    left = alive(gang)
    evicted = {g for g, members in low.items() if not set(members) & left}
    intact = {g for g, members in low.items() if set(members) <= left}
    assert len(evicted) == 2 and len(intact) == 2, (evicted, intact)  # never part of a gang


def test_group_priority_from_its_priority_class(gang: Any) -> None:
    """The group names the class, its pods none (priority 0): the group's priority counts.
    Our CRD's priorityClassName is resolved by the scheduler from the PriorityClass watch;
    a 1.37 PodGroup's by admission or, where admission leaves it, by us."""
    if gang.mode.name == "v1alpha1":
        pytest.skip("the v1alpha1 Workload has no priority")
    priority_classes(gang)
    for i in range(4):
        gang.node(f"gc-{i}", cpu="4", memory="16Gi")
    low = running_gangs(gang, 4, 4, **whole(gang))
    gang.mode.create_workload(gang.ns, "high", {"g": 8}, extra={"priorityClassName": HIGH})
    high = submit(gang, "high", "g", 8, "high", cpu="1")
    wait_bound(gang, high, "high gang (priority from its class) bound")
    settle()
    left = alive(gang)
    evicted = {g for g, members in low.items() if not set(members) & left}
    intact = {g for g, members in low.items() if set(members) <= left}
    assert len(evicted) == 2 and len(intact) == 2, (evicted, intact)
    # Each victim's Preempted Event names the preemptor's group object as related.
    events = [
        e
        for e in gang.core.list_namespaced_event(gang.ns).items
        if e.reason == "Preempted" and e.involved_object.kind == "Pod"
    ]
    assert len(events) == 8, [e.message for e in events]
    related = ("PodGroup", "high-g") if gang.mode.name == "v1beta1" else ("Workload", "high")
    for event in events:
        assert event.related is not None, event.message
        assert (event.related.kind, event.related.name) == related, event.related
        assert event.message == f"Preempted by podgroup {event.related.uid} on node cluster"


def test_no_preemption_when_evicting_every_lower_pod_is_not_enough(gang: Any) -> None:
    priority_classes(gang)
    for i in range(2):
        gang.node(f"gn-{i}", cpu="4", memory="16Gi")
    low = running_gangs(gang, 2, 4)
    gang.mode.create_workload(gang.ns, "huge", {"g": 12})
    names = submit(gang, "huge", "g", 12, "huge", cpu="1", extra_spec={"priorityClassName": HIGH})
    message = wait_until(
        lambda: failed_scheduling_message(gang.core, gang.ns, names[0]),
        timeout=30,
        what="FailedScheduling",
    )
    assert "preemption: evicting every pod of lower priority than 1000" in message, message
    settle()
    assert {n for members in low.values() for n in members} <= alive(gang)


def test_equal_priority_gangs_do_not_preempt_each_other(gang: Any) -> None:
    priority_classes(gang)
    gang.node("ge-0", cpu="4", memory="16Gi")
    gang.mode.create_workload(gang.ns, "first", {"g": 4})
    first = submit(gang, "first", "g", 4, "first", cpu="1", extra_spec={"priorityClassName": HIGH})
    wait_bound(gang, first, "first gang bound")
    gang.mode.create_workload(gang.ns, "second", {"g": 4})
    second = submit(
        gang, "second", "g", 4, "second", cpu="1", extra_spec={"priorityClassName": HIGH}
    )
    message = wait_until(
        lambda: failed_scheduling_message(gang.core, gang.ns, second[0]),
        timeout=30,
        what="FailedScheduling",
    )
    assert "no pods of lower priority than 1000 to preempt" in message, message
    settle(4)
    assert set(first) <= alive(gang)


def test_topology_victims_only_in_the_chosen_domain(gang: Any) -> None:
    if gang.mode.name == "v1alpha1":
        pytest.skip("the v1alpha1 Workload has no topology constraint")
    priority_classes(gang)
    for rack in ("r1", "r2"):
        for i in range(2):
            gang.node(f"gt-{rack}-{i}", cpu="4", memory="16Gi", labels={"rack": rack})
    # Both racks full of low gangs of 4 (one rack each, by the topology constraint).
    low = running_gangs(gang, 4, 4, topology_key="rack", **whole(gang))
    gang.mode.create_workload(gang.ns, "high", {"g": 6}, topology_key="rack")
    high = submit(gang, "high", "g", 6, "high", cpu="1", extra_spec={"priorityClassName": HIGH})
    wait_bound(gang, high, "high gang bound")
    settle()
    pods = pods_by_name(gang.core, gang.ns)
    racks = {pods[n].spec.node_name.split("-")[1] for n in high}
    assert len(racks) == 1, racks
    left = set(pods)
    evicted = [g for g, members in low.items() if not set(members) & left]
    assert len(evicted) == 2, evicted  # 6 members need 8 cpu freed... two gangs of one rack
    assert all(
        not set(members) & left or set(members) <= left for members in low.values()
    )  # whole gangs only


def test_disruption_mode_single_evicts_pod_by_pod(gang: Any) -> None:
    if gang.mode.name == "v1alpha1":
        pytest.skip("the v1alpha1 Workload has no disruptionMode")
    priority_classes(gang)
    for i in range(2):
        gang.node(f"gs-{i}", cpu="4", memory="16Gi")
    mode = {"single": {}} if gang.mode.name != "crd" else "Single"
    low = running_gangs(gang, 1, 8, extra={"disruptionMode": mode})
    gang.mode.create_workload(gang.ns, "high", {"g": 2})
    high = submit(gang, "high", "g", 2, "high", cpu="1", extra_spec={"priorityClassName": HIGH})
    wait_bound(gang, high, "high gang bound")
    settle()
    assert len(set(low["low0"]) - alive(gang)) == 2


def test_members_with_anti_affinity_to_each_other_preempt_a_node_each(gang: Any) -> None:
    """One worker per node (required anti-affinity among the members by hostname): the
    dry run counts the members it places, so two whole low gangs, each filling one node,
    are evicted at once and the members land on those two nodes. (Counting them over the
    cache alone, it planned both on one node: one gang evicted, a plan the gang cycle
    could not place, and no way out.)"""
    priority_classes(gang)
    host = "kubernetes.io/hostname"
    for i in range(4):
        gang.node(f"ga-{i}", cpu="4", memory="16Gi")
    low: dict[str, list[str]] = {}
    for i in range(4):  # each low gang fills one node
        gang.mode.create_workload(gang.ns, f"low{i}", {"g": 4}, **whole(gang))
        low[f"low{i}"] = submit(
            gang,
            f"low{i}",
            "g",
            4,
            f"low{i}",
            cpu="1",
            node_selector={host: f"ga-{i}"},
            extra_spec={"priorityClassName": LOW},
        )
    wait_bound(gang, [n for members in low.values() for n in members], "low gangs bound")
    term = {"labelSelector": {"matchLabels": {"app": "worker"}}, "topologyKey": host}
    gang.mode.create_workload(gang.ns, "high", {"g": 2})
    high = submit(
        gang,
        "high",
        "g",
        2,
        "high",
        cpu="1",
        labels={"app": "worker"},
        affinity={"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [term]}},
        extra_spec={"priorityClassName": HIGH},
    )
    wait_bound(gang, high, "high gang bound, one member per node")
    settle()
    pods = pods_by_name(gang.core, gang.ns)
    assert len({pods[n].spec.node_name for n in high}) == 2
    left = set(pods)
    evicted = {g for g, members in low.items() if not set(members) & left}
    intact = {g for g, members in low.items() if set(members) <= left}
    assert len(evicted) == 2 and len(intact) == 2, (evicted, intact)
    assert {pods[n].spec.node_name for n in high} == {
        f"ga-{g.removeprefix('low')}" for g in evicted
    }
