"""UnsupportedFeatures: what we do not implement is refused for every node, in words."""

from __future__ import annotations

import random
from typing import Any

import pytest
from factories import make_node, pod_info

from scheduler.cache.cluster_cache import ClusterCache
from scheduler.framework.cycle import NodesView, Profile, pick_node
from scheduler.framework.diagnosis import unschedulable_message
from scheduler.framework.plugins import UnsupportedFeatures
from scheduler.framework.types import Unresolvable
from scheduler.gang.messages import cannot_place
from scheduler.gang.model import GroupKey, ObjectKey
from scheduler.gang.placement import place_gang

PVC = {"name": "data", "persistentVolumeClaim": {"claimName": "data"}}
EPHEMERAL = {"name": "tmp", "ephemeral": {"volumeClaimTemplate": {"spec": {}}}}
CSI = {"name": "inline", "csi": {"driver": "x"}}


@pytest.mark.parametrize(
    ("spec", "feature"),
    [
        ({"volumes": [PVC]}, "PersistentVolumeClaim volumes"),
        ({"volumes": [EPHEMERAL]}, "ephemeral volumes"),
        ({"volumes": [CSI]}, "inline csi volumes"),
        (
            {"volumes": [{"name": "d", "gcePersistentDisk": {"pdName": "x"}}]},
            "inline gcePersistentDisk volumes",
        ),
        ({"resourceClaims": [{"name": "gpu", "resourceClaimName": "c"}]}, "resource claims (DRA)"),
    ],
)
def test_refused(spec: dict[str, Any], feature: str) -> None:
    verdict = UnsupportedFeatures().pre_filter(pod_info(**spec), NodesView([]))
    assert verdict == Unresolvable(
        "UnsupportedFeatures", f"workload-scheduler does not support {feature} yet"
    )


def test_every_feature_is_named() -> None:
    verdict = UnsupportedFeatures().pre_filter(
        pod_info(volumes=[PVC, EPHEMERAL], resourceClaims=[{"name": "c"}]), NodesView([])
    )
    assert isinstance(verdict, Unresolvable)
    assert verdict.message == (
        "workload-scheduler does not support PersistentVolumeClaim volumes, "
        "ephemeral volumes, resource claims (DRA) yet"
    )


@pytest.mark.parametrize(
    "volume",
    [
        {"name": "c", "configMap": {"name": "x"}},
        {"name": "h", "hostPath": {"path": "/data"}},
        {"name": "n", "nfs": {"server": "s", "path": "/"}},
        {"name": "e", "emptyDir": {}},
    ],
)
def test_volumes_without_placement_constraints_pass(volume: dict[str, Any]) -> None:
    assert UnsupportedFeatures().pre_filter(pod_info(volumes=[volume]), NodesView([])) is None


def test_refused_pod_is_rejected_for_every_node_with_one_message() -> None:
    cache = ClusterCache()
    for i in range(3):
        cache.set_node(make_node(f"n{i}"))
    node, fit = pick_node(
        Profile.default(), pod_info(volumes=[PVC]), cache.nodes(), random.Random(0)
    )
    assert node is None and not fit.reasons
    assert unschedulable_message(3, fit.reasons, fit.pre_filter_message) == (
        "0/3 nodes are available: workload-scheduler does not support "
        "PersistentVolumeClaim volumes yet."
    )


def test_refused_gang_member_fails_the_gang_and_says_why() -> None:
    cache = ClusterCache()
    cache.set_node(make_node("n0"))
    pods = [pod_info("w0", cpu="1"), pod_info("w1", cpu="1", volumes=[PVC])]
    attempt = place_gang(cache, Profile.default(), pods, 2, random.Random(0))
    assert not attempt.ok(2) and cache.pod_count == 0
    message = cannot_place(
        GroupKey(ObjectKey("Workload", "ns", "train"), "workers"), pods, 2, attempt, None
    )
    assert message.endswith(
        "only 1 fit: workload-scheduler does not support PersistentVolumeClaim volumes yet"
    )


@pytest.mark.parametrize("volume", [PVC, EPHEMERAL, CSI])
def test_volumes_are_not_refused_once_the_volume_plugins_run(volume: dict[str, Any]) -> None:
    plugin = UnsupportedFeatures(volumes_supported=True)
    assert plugin.pre_filter(pod_info(volumes=[volume]), NodesView([])) is None
    claims = plugin.pre_filter(
        pod_info(volumes=[volume], resourceClaims=[{"name": "g", "resourceClaimName": "c"}]),
        NodesView([]),
    )
    assert claims == Unresolvable(
        "UnsupportedFeatures", "workload-scheduler does not support resource claims (DRA) yet"
    )
