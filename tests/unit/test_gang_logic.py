"""Gang decisions on plain data: policies from objects, gates, all-or-nothing placement."""

from __future__ import annotations

import random

import msgspec
from factories import make_node, make_pod

from scheduler.api.sources.policies import podgroup_object, workload_object
from scheduler.api.sources.shapes import PodGroup, Workload
from scheduler.cache.cluster_cache import ClusterCache
from scheduler.framework.cycle import Profile
from scheduler.framework.podinfo import make_pod_info
from scheduler.gang import messages
from scheduler.gang.membership import pod_group_key
from scheduler.gang.model import CRD_WORKLOAD, PODGROUP, WORKLOAD, GroupKey, ObjectKey
from scheduler.gang.placement import place_gang
from scheduler.gang.registry import GangRegistry
from scheduler.gang.status import status_apply


def workload(name: str, groups: list[dict[str, object]], **meta: object) -> Workload:
    return msgspec.convert(
        {"metadata": {"name": name, "namespace": "ns", **meta}, "spec": {"podGroups": groups}},
        Workload,
    )


def test_workload_policies_and_validation() -> None:
    ok = workload_object(
        workload(
            "train",
            [
                {"name": "workers", "policy": {"gang": {"minCount": 4}}},
                {"name": "driver", "policy": {"basic": {}}},
            ],
        ),
        kind=WORKLOAD,
        api_version="scheduling.k8s.io/v1alpha1",
    )
    assert ok.invalid is None
    assert ok.policies["workers"].gang and ok.policies["workers"].min_count == 4
    assert not ok.policies["driver"].gang
    for groups, expected in [
        ([{"name": "w", "policy": {"gang": {"minCount": 0}}}], "minCount must be"),
        ([{"name": "w", "policy": {}}], "exactly one of"),
        ([{"name": "W!", "policy": {"basic": {}}}], "not a DNS label"),
        ([], "at least one item"),
        ([{"name": f"g{i}", "policy": {"basic": {}}} for i in range(9)], "at most 8"),
    ]:
        bad = workload_object(workload("bad", groups), kind=CRD_WORKLOAD, api_version="x/v1")
        assert bad.invalid is not None and expected in bad.invalid, bad.invalid


def test_timeout_annotation_and_topology() -> None:
    obj = workload_object(
        workload(
            "t",
            [
                {
                    "name": "g",
                    "policy": {"gang": {"minCount": 2}},
                    "schedulingConstraints": {"topology": [{"key": "rack"}]},
                }
            ],
            annotations={"workload-scheduler.io/gang-timeout-seconds": "60"},
        ),
        kind=CRD_WORKLOAD,
        api_version="x/v1",
    )
    assert obj.policies["g"].timeout_seconds == 60.0
    assert obj.policies["g"].topology_key == "rack"


def test_podgroup_policy() -> None:
    pg = msgspec.convert(
        {
            "metadata": {"name": "pg", "namespace": "ns"},
            "spec": {"schedulingPolicy": {"gang": {"minCount": 3}}},
        },
        PodGroup,
    )
    obj = podgroup_object(pg, api_version="scheduling.k8s.io/v1beta1", resource="/apis/x")
    assert obj.key == ObjectKey(PODGROUP, "ns", "pg")
    assert obj.policies[""].min_count == 3


def test_pod_group_keys_for_every_api() -> None:
    native = msgspec.convert(
        {
            "metadata": {"namespace": "ns"},
            "spec": {"workloadRef": {"name": "w", "podGroup": "g", "podGroupReplicaKey": "1"}},
        },
        type(make_pod("x")),
    )
    assert pod_group_key(native) == GroupKey(ObjectKey(WORKLOAD, "ns", "w"), "g", "1")
    scheduling_group = msgspec.convert(
        {"metadata": {"namespace": "ns"}, "spec": {"schedulingGroup": {"podGroupName": "pg"}}},
        type(make_pod("x")),
    )
    assert pod_group_key(scheduling_group) == GroupKey(ObjectKey(PODGROUP, "ns", "pg"), "")
    labelled = make_pod(
        "x",
        namespace="ns",
        labels={"workload-scheduler.io/workload": "w", "workload-scheduler.io/pod-group": "g"},
    )
    assert pod_group_key(labelled) == GroupKey(ObjectKey(CRD_WORKLOAD, "ns", "w"), "g", "")
    # 1.37's WorkloadWithJob gives a Job's pods a basic PodGroup: our labels still win.
    both = msgspec.convert(
        {
            "metadata": {
                "namespace": "ns",
                "labels": {
                    "workload-scheduler.io/workload": "w",
                    "workload-scheduler.io/pod-group": "g",
                },
            },
            "spec": {"schedulingGroup": {"podGroupName": "job-pg"}},
        },
        type(make_pod("x")),
    )
    assert pod_group_key(both) == GroupKey(ObjectKey(CRD_WORKLOAD, "ns", "w"), "g", "")
    assert pod_group_key(make_pod("plain")) is None


def test_gate_waits_for_object_group_and_quorum() -> None:
    registry = GangRegistry()
    pods = [
        make_pod(
            f"m{i}",
            namespace="ns",
            labels={"workload-scheduler.io/workload": "w", "workload-scheduler.io/pod-group": "g"},
        )
        for i in range(3)
    ]
    infos = [make_pod_info(p) for p in pods]
    registry.observe_pod(pods[0], "")
    assert "to appear" in (registry.gate(infos[0]) or "")
    registry.set_object(
        workload_object(
            workload("w", [{"name": "g", "policy": {"gang": {"minCount": 3}}}]),
            kind=CRD_WORKLOAD,
            api_version="workload-scheduler.io/v1alpha1",
        )
    )
    assert registry.gate(infos[0]) == "waiting for gang ns/w/g: 1 of 3 pods exist"
    registry.observe_pod(pods[1], "")
    registry.observe_pod(pods[2], "node-1")  # bound members count too
    assert registry.gate(infos[0]) is None
    registry.forget_pod(pods[2].metadata.uid)
    assert registry.gate(infos[0]) == "waiting for gang ns/w/g: 2 of 3 pods exist"


def test_gang_is_all_or_nothing_and_rolls_back() -> None:
    cache = ClusterCache()
    for i in range(3):
        cache.set_node(make_node(f"n{i}", cpu="2", memory="4Gi"))
    pods = [make_pod_info(make_pod(f"w{i}", cpu="1500m")) for i in range(4)]
    attempt = place_gang(cache, Profile.default(), pods, 4, random.Random(0))
    # 6 cpu free for 6 cpu asked, but each node takes one member at most: no trial.
    assert not attempt.ok(4) and attempt.domains_tried == 0 and attempt.domains_pruned == 1
    assert all(not n.pods for n in cache.nodes())  # nothing stays reserved
    key = GroupKey(ObjectKey(WORKLOAD, "ns", "train"), "workers")
    assert messages.cannot_place(key, pods, 4, attempt, None) == (
        "gang ns/train/workers needs 4 x {cpu: 1500m}; at most 3 fit: "
        "too little room left on each node"
    )
    # A host port the capacity sums cannot see: tried, three fit, rolled back.
    ported = [make_pod_info(make_pod(f"p{i}", cpu="100m", host_ports=[80])) for i in range(4)]
    attempt = place_gang(cache, Profile.default(), ported, 4, random.Random(0))
    assert not attempt.ok(4) and len(attempt.placed) == 3 and attempt.domains_tried == 1
    assert all(not n.pods for n in cache.nodes())
    assert messages.cannot_place(key, ported, 4, attempt, None) == (
        "gang ns/train/workers needs 4 x {cpu: 100m}; only 3 fit: "
        "3 nodes didn't have free ports for the requested pod ports"
    )
    cache.set_node(make_node("n3", cpu="2", memory="4Gi"))
    attempt = place_gang(cache, Profile.default(), pods, 4, random.Random(0))
    assert attempt.ok(4)
    assert sorted(len(n.pods) for n in cache.nodes()) == [1, 1, 1, 1]


def test_gang_min_count_places_extras_where_they_fit() -> None:
    cache = ClusterCache()
    for i in range(5):
        cache.set_node(make_node(f"n{i}", cpu="2", memory="4Gi"))
    pods = [make_pod_info(make_pod(f"w{i}", cpu="1500m")) for i in range(6)]
    attempt = place_gang(cache, Profile.default(), pods, 4, random.Random(0))
    assert attempt.ok(4) and len(attempt.placed) == 5 and len(attempt.unplaced) == 1


def test_topology_picks_the_tightest_domain() -> None:
    cache = ClusterCache()
    for rack, count in (("r1", 2), ("r2", 3), ("r3", 6)):
        for i in range(count):
            cache.set_node(make_node(f"{rack}-{i}", cpu="2", memory="4Gi", labels={"rack": rack}))
    pods = [make_pod_info(make_pod(f"w{i}", cpu="1500m")) for i in range(3)]
    attempt = place_gang(cache, Profile.default(), pods, 3, random.Random(0), topology_key="rack")
    assert attempt.ok(3) and attempt.domain == "r2"
    assert {node.split("-")[0] for _, node in attempt.placed} == {"r2"}
    # the trials in r3 were rolled back
    assert all(not n.pods for n in cache.nodes() if n.name.startswith("r3"))


def test_each_crd_gang_entry_is_applied_by_its_own_field_manager() -> None:
    """A report on one gang must not delete another gang's status entry (server-side apply
    removes list entries that a manager owned and left out of its newest apply)."""
    obj = workload_object(
        workload("train", [{"name": "workers", "policy": {"gang": {"minCount": 2}}}]),
        kind=CRD_WORKLOAD,
        api_version="workload-scheduler.io/v1alpha1",
        resource="/apis/workload-scheduler.io/v1alpha1",
    )
    key = GroupKey(obj.key, "workers")
    first = status_apply(obj, key, True, "Scheduled", "all 2 pods bound")
    second = status_apply(obj, GroupKey(obj.key, "workers", "r1"), False, "Unschedulable", "")
    assert first is not None and second is not None
    assert first.path == "/apis/workload-scheduler.io/v1alpha1/namespaces/ns/workloads/train/status"
    assert first.field_manager == "workload-scheduler/workers"
    assert second.field_manager == "workload-scheduler/workers[r1]"
    long = status_apply(obj, GroupKey(obj.key, "w" * 200), True, "Scheduled", "")
    assert long is not None and len(long.field_manager) <= 128
    assert (
        long.field_manager
        != status_apply(obj, GroupKey(obj.key, "w" * 199), True, "Scheduled", "").field_manager
    )  # type: ignore[union-attr]


def test_members_too_big_for_every_node_are_told_why_per_node() -> None:
    """A pruned domain where not one member fits on any node says why in kube-scheduler's
    words, as a trial would have, rather than only a shortfall in sums."""
    cache = ClusterCache()
    for i in range(2):
        cache.set_node(make_node(f"n{i}", cpu="2", memory="4Gi"))
    pods = [make_pod_info(make_pod(f"w{i}", cpu="8")) for i in range(2)]
    attempt = place_gang(cache, Profile.default(), pods, 2, random.Random(0))
    assert not attempt.ok(2) and attempt.domains_tried == 0
    key = GroupKey(ObjectKey(WORKLOAD, "ns", "train"), "workers")
    assert "2 nodes Insufficient cpu" in messages.cannot_place(key, pods, 2, attempt, None)
