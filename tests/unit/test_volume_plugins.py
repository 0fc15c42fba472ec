"""VolumeRestrictions, VolumeZone and NodeVolumeLimits, from the cases of upstream's
volume_restrictions_test.go, volume_zone_test.go and csi_test.go (our own data)."""

from __future__ import annotations

from typing import Any

import pytest

from scheduler.cache.cluster_cache import ClusterCache
from scheduler.framework.nodeinfo import copy_node_info, remove_pod
from scheduler.framework.plugins.node_volume_limits import MAX_VOLUME_COUNT, NodeVolumeLimits
from scheduler.framework.plugins.volume_restrictions import (
    DISK_CONFLICT,
    RWOP_CONFLICT,
    VolumeRestrictions,
    disks_conflict,
)
from scheduler.framework.plugins.volume_zone import NO_ZONE, VolumeZone
from scheduler.framework.types import PreFilterPlugin, Unresolvable
from tests.unit.factories import make_node, pod_info
from tests.unit.volume_factories import (
    claim,
    csi_node,
    pvc_volume,
    storage_class,
    store_of,
    volume,
)


def nodes(*specs: tuple[str, dict[str, str]]) -> ClusterCache:
    cache = ClusterCache()
    for name, labels in specs:
        cache.set_node(make_node(name, labels={"kubernetes.io/hostname": name, **labels}))
    return cache


def verdicts(plugin: PreFilterPlugin, pod: Any, cache: ClusterCache) -> dict[str, str | None] | str:
    state = plugin.pre_filter(pod, cache)
    if isinstance(state, Unresolvable):
        return state.message
    return {
        n.name: (r[0] if (r := state.filter(pod, n) if state is not None else None) else None)
        for n in cache.nodes()
    }


def place(cache: ClusterCache, name: str, node: str, **kwargs: Any) -> None:
    cache.set_assigned_pod(pod_info(name, node_name=node, **kwargs), node)


# -- VolumeRestrictions -------------------------------------------------------------------


def test_read_write_once_pod_claim_in_use_anywhere() -> None:
    store = store_of(claim("data", modes=("ReadWriteOncePod",), volume="pv"))
    cache = nodes(("a", {}), ("b", {}))
    plugin = VolumeRestrictions(store)
    pod = pod_info("new", volumes=[pvc_volume("data")])
    assert verdicts(plugin, pod, cache) == {"a": None, "b": None}
    place(cache, "holder", "a", volumes=[pvc_volume("data")])
    assert verdicts(plugin, pod, cache) == {"a": RWOP_CONFLICT, "b": RWOP_CONFLICT}
    # Another namespace's claim of that name is another claim.
    other = pod_info("new", namespace="other", volumes=[pvc_volume("data")])
    store.set_claim(claim("data", namespace="other", modes=("ReadWriteOncePod",), volume="pv2"))
    assert verdicts(plugin, other, cache) == {"a": None, "b": None}


def test_read_write_once_pod_preemption_dry_run_sees_the_holder_gone() -> None:
    store = store_of(claim("data", modes=("ReadWriteOncePod",), volume="pv"))
    cache = nodes(("a", {}))
    place(cache, "holder", "a", volumes=[pvc_volume("data")])
    pod = pod_info("new", volumes=[pvc_volume("data")])
    state = VolumeRestrictions(store).pre_filter(pod, cache)
    assert state is not None and not isinstance(state, Unresolvable)
    node = cache.nodes()[0]
    assert state.filter(pod, node) == (RWOP_CONFLICT,)
    emptied = copy_node_info(node)
    remove_pod(emptied, next(iter(emptied.pods)))
    assert state.filter(pod, emptied) is None


def test_read_write_once_claims_are_shared() -> None:
    store = store_of(claim("data", volume="pv"))
    cache = nodes(("a", {}))
    place(cache, "holder", "a", volumes=[pvc_volume("data")])
    pod = pod_info("new", volumes=[pvc_volume("data")])
    assert VolumeRestrictions(store).pre_filter(pod, cache) is None


def test_missing_claim() -> None:
    verdict = VolumeRestrictions(store_of()).pre_filter(
        pod_info("p", volumes=[pvc_volume("x")]), nodes(("a", {}))
    )
    assert isinstance(verdict, Unresolvable)
    assert verdict.message == 'persistentvolumeclaim "x" not found'


def gce(name: str, read_only: bool = False) -> dict[str, Any]:
    return {"name": "d", "gcePersistentDisk": {"pdName": name, "readOnly": read_only}}


def ebs(volume_id: str) -> dict[str, Any]:
    return {"name": "d", "awsElasticBlockStore": {"volumeID": volume_id}}


def iscsi(iqn: str, read_only: bool = False) -> dict[str, Any]:
    return {
        "name": "d",
        "iscsi": {"iqn": iqn, "targetPortal": "t", "lun": 0, "readOnly": read_only},
    }


def rbd(
    monitors: list[str], image: str, read_only: bool = False, pool: str = "rbd"
) -> dict[str, Any]:
    return {
        "name": "d",
        "rbd": {"monitors": monitors, "image": image, "pool": pool, "readOnly": read_only},
    }


@pytest.mark.parametrize(
    ("mine", "theirs", "conflict"),
    [
        (gce("foo"), gce("foo"), True),
        (gce("foo"), gce("bar"), False),
        (gce("foo", True), gce("foo", True), False),
        (gce("foo", True), gce("foo"), True),
        (ebs("vol-1"), ebs("vol-1"), True),
        (ebs("vol-1"), ebs("vol-2"), False),
        (iscsi("iqn.a"), iscsi("iqn.a"), True),
        (iscsi("iqn.a", True), iscsi("iqn.a", True), False),
        (iscsi("iqn.a"), iscsi("iqn.b"), False),
        (rbd(["a", "b"], "img"), rbd(["b", "c"], "img"), True),
        (rbd(["a"], "img"), rbd(["c"], "img"), False),
        (rbd(["a"], "img"), rbd(["a"], "other"), False),
        (rbd(["a"], "img"), rbd(["a"], "img", pool="p2"), False),
        (rbd(["a"], "img", True), rbd(["a"], "img", True), False),
        (gce("foo"), ebs("foo"), False),
    ],
)
def test_disk_conflicts(mine: dict[str, Any], theirs: dict[str, Any], conflict: bool) -> None:
    assert disks_conflict(mine, theirs) is conflict


def test_disk_conflict_filter() -> None:
    cache = nodes(("a", {}), ("b", {}))
    place(cache, "holder", "a", volumes=[gce("foo")])
    pod = pod_info("new", volumes=[gce("foo")])
    assert verdicts(VolumeRestrictions(store_of()), pod, cache) == {"a": DISK_CONFLICT, "b": None}


# -- VolumeZone -----------------------------------------------------------------------------

ZONE = "topology.kubernetes.io/zone"
BETA_ZONE = "failure-domain.beta.kubernetes.io/zone"
REGION = "topology.kubernetes.io/region"


@pytest.mark.parametrize(
    ("pv_labels", "expected"),
    [
        ({ZONE: "z1"}, {"a": None, "b": NO_ZONE, "plain": None}),
        ({ZONE: "z1__z2"}, {"a": None, "b": None, "plain": None}),
        ({BETA_ZONE: "z2"}, {"a": NO_ZONE, "b": None, "plain": None}),  # beta key, GA node label
        ({REGION: "r1", ZONE: "z2"}, {"a": NO_ZONE, "b": None, "plain": None}),
        ({REGION: "r2"}, {"a": NO_ZONE, "b": NO_ZONE, "plain": None}),
        ({}, {"a": None, "b": None, "plain": None}),
    ],
)
def test_volume_zone(pv_labels: dict[str, str], expected: dict[str, str | None]) -> None:
    store = store_of(claim("data", volume="pv"), volume("pv", labels=pv_labels))
    cache = nodes(
        ("a", {ZONE: "z1", REGION: "r1"}), ("b", {ZONE: "z2", REGION: "r1"}), ("plain", {})
    )
    assert (
        verdicts(VolumeZone(store), pod_info("p", volumes=[pvc_volume("data")]), cache) == expected
    )


@pytest.mark.parametrize(
    ("objects", "message"),
    [
        ((claim("data", volume="gone"),), 'persistentvolume "gone" not found'),
        ((claim("data"),), "PersistentVolumeClaim had no pv name and storageClass name"),
        ((claim("data", class_name="nope"),), 'storageclass.storage.k8s.io "nope" not found'),
        (
            (claim("data", class_name="std"), storage_class("std", mode="Immediate")),
            "PersistentVolume had no name",
        ),
        ((claim("data", class_name="local"), storage_class("local")), None),  # skipped
    ],
)
def test_volume_zone_pre_filter(objects: tuple[Any, ...], message: str | None) -> None:
    verdict = VolumeZone(store_of(*objects)).pre_filter(
        pod_info("p", volumes=[pvc_volume("data")]), nodes(("a", {}))
    )
    if message is None:
        assert verdict is None
    else:
        assert isinstance(verdict, Unresolvable) and verdict.message == message


# -- NodeVolumeLimits --------------------------------------------------------------------------

DRIVER = "ebs.example.com"


def csi_objects(*names: str) -> list[Any]:
    out: list[Any] = []
    for name in names:
        out.append(claim(name, volume=f"pv-{name}"))
        out.append(volume(f"pv-{name}", csi=(DRIVER, f"handle-{name}"), phase="Bound"))
    return out


def test_csi_limit_counts_unique_volumes() -> None:
    store = store_of(*csi_objects("one", "two", "three"), csi_node("a", {DRIVER: 2}))
    cache = nodes(("a", {}), ("b", {}))
    place(cache, "p1", "a", volumes=[pvc_volume("one")])
    place(cache, "p2", "a", volumes=[pvc_volume("two")])
    plugin = NodeVolumeLimits(store)
    new = pod_info("new", volumes=[pvc_volume("three")])
    assert verdicts(plugin, new, cache) == {"a": MAX_VOLUME_COUNT, "b": None}  # b: no CSINode
    # A volume already attached there counts once.
    shared = pod_info("shared", volumes=[pvc_volume("two")])
    assert verdicts(plugin, shared, cache) == {"a": None, "b": None}


def test_csi_limit_counts_unbound_claims_through_their_class() -> None:
    store = store_of(
        *csi_objects("one"),
        storage_class("csi", provisioner=DRIVER),
        claim("fresh", class_name="csi"),
        csi_node("a", {DRIVER: 1}),
    )
    cache = nodes(("a", {}))
    place(cache, "p1", "a", volumes=[pvc_volume("one")])
    new = pod_info("new", volumes=[pvc_volume("fresh")])
    assert verdicts(NodeVolumeLimits(store), new, cache) == {"a": MAX_VOLUME_COUNT}


def test_other_drivers_and_no_limits() -> None:
    store = store_of(*csi_objects("one", "two"), csi_node("a", {"other.example.com": 0}))
    cache = nodes(("a", {}))
    place(cache, "p1", "a", volumes=[pvc_volume("one")])
    new = pod_info("new", volumes=[pvc_volume("two")])
    assert verdicts(NodeVolumeLimits(store), new, cache) == {"a": None}
    assert NodeVolumeLimits(store).pre_filter(pod_info("plain"), cache) is None
