"""VolumeBinding, from the cases of upstream's volume_binding_test.go / binder_test.go
(our own data): pre-filter refusals, bound PVs' node affinity, static PV matching at the
node (smallest fit), dynamic provisioning, and Reserve's assumptions."""

from __future__ import annotations

import random
from typing import Any

import msgspec
import pytest

from scheduler.cache.cluster_cache import ClusterCache
from scheduler.framework.cycle import Profile, pick_node
from scheduler.framework.diagnosis import unschedulable_message
from scheduler.framework.plugins.volume_binding import (
    BIND_CONFLICT,
    GANG_UNSUPPORTED,
    NODE_CONFLICT,
    NOT_ENOUGH_SPACE,
    PV_NOT_EXIST,
    UNBOUND_IMMEDIATE,
    VolumeBinding,
)
from scheduler.framework.types import Unresolvable
from scheduler.model.volumes import ANN_SELECTED_NODE, CSIDriver, CSIStorageCapacity
from tests.unit.factories import make_node, pod_info
from tests.unit.volume_factories import claim, pvc_volume, storage_class, store_of, volume

LOCAL = storage_class("local")
DYNAMIC = storage_class("fast", provisioner="example.com/csi")


def cluster(*names: str, zone: dict[str, str] | None = None) -> ClusterCache:
    cache = ClusterCache()
    for name in names:
        labels = {"kubernetes.io/hostname": name}
        if zone and name in zone:
            labels["zone"] = zone[name]
        cache.set_node(make_node(name, labels=labels))
    return cache


def verdicts(plugin: VolumeBinding, pod: Any, cache: ClusterCache) -> dict[str, str | None] | str:
    state = plugin.pre_filter(pod, cache)
    if isinstance(state, Unresolvable):
        return state.message
    out: dict[str, str | None] = {}
    for node in cache.nodes():
        reasons = state.filter(pod, node) if state is not None else None
        out[node.name] = reasons[0] if reasons else None
    return out


def with_claims(*names: str, **kwargs: Any) -> Any:
    return pod_info("web-0", volumes=[pvc_volume(n) for n in names], **kwargs)


@pytest.mark.parametrize(
    ("objects", "pod", "message"),
    [
        ((), with_claims("data"), 'persistentvolumeclaim "data" not found'),
        (
            (claim("data", deleting=True, volume="pv"),),
            with_claims("data"),
            'persistentvolumeclaim "data" is being deleted',
        ),
        (
            (claim("data", volume="gone", phase="Lost"),),
            with_claims("data"),
            'persistentvolumeclaim "data" bound to non-existent persistentvolume "gone"',
        ),
        ((claim("data"),), with_claims("data"), UNBOUND_IMMEDIATE),  # no class
        (
            (claim("data", class_name="std"), storage_class("std", mode="Immediate")),
            with_claims("data"),
            UNBOUND_IMMEDIATE,
        ),
        ((claim("data", class_name="missing"),), with_claims("data"), UNBOUND_IMMEDIATE),
        # WaitForFirstConsumer: decided per node, not refused here.
        (
            (claim("data", class_name="local", annotations={}), LOCAL),
            with_claims("data"),
            None,
        ),
        (
            (),
            pod_info("web-0", volumes=[{"name": "tmp", "ephemeral": {}}]),
            "waiting for ephemeral volume controller to create the persistentvolumeclaim "
            '"web-0-tmp"',
        ),
        (
            (claim("web-0-tmp", volume="pv", owner_uid="someone-else"),),
            pod_info("web-0", volumes=[{"name": "tmp", "ephemeral": {}}]),
            "PVC default/web-0-tmp was not created for pod default/web-0 (pod is not owner)",
        ),
    ],
)
def test_pre_filter_refusals(objects: tuple[Any, ...], pod: Any, message: str | None) -> None:
    plugin = VolumeBinding(store_of(*objects))
    verdict = plugin.pre_filter(pod, cluster("a"))
    if message is None:
        assert not isinstance(verdict, Unresolvable)
    else:
        assert isinstance(verdict, Unresolvable)
        assert verdict.message == message


def test_pre_bound_claim_waits_as_immediate() -> None:
    """A claim naming its volume but not yet bound by the PV controller is its job."""
    store = store_of(claim("data", class_name="local", volume="pv-1", bind_completed=False), LOCAL)
    verdict = VolumeBinding(store).pre_filter(with_claims("data"), cluster("a"))
    assert isinstance(verdict, Unresolvable) and verdict.message == UNBOUND_IMMEDIATE


def test_no_claims_skips() -> None:
    assert VolumeBinding(store_of()).pre_filter(pod_info("p"), cluster("a")) is None


def test_owned_ephemeral_claim_is_placed() -> None:
    owned = claim("web-0-tmp", volume="pv", owner_uid="uid-default-web-0")
    store = store_of(owned, volume("pv", claim_ref=("default", "web-0-tmp"), phase="Bound"))
    pod = pod_info("web-0", volumes=[{"name": "tmp", "ephemeral": {}}])
    assert verdicts(VolumeBinding(store), pod, cluster("a")) == {"a": None}


def test_bound_volume_node_affinity() -> None:
    store = store_of(
        claim("data", volume="pv-1"), volume("pv-1", hostname="b", claim_ref=("default", "data"))
    )
    assert verdicts(VolumeBinding(store), with_claims("data"), cluster("a", "b", "c")) == {
        "a": NODE_CONFLICT,
        "b": None,
        "c": NODE_CONFLICT,
    }


def test_bound_to_missing_volume() -> None:
    store = store_of(claim("data", volume="pv-gone"))
    assert verdicts(VolumeBinding(store), with_claims("data"), cluster("a")) == {"a": PV_NOT_EXIST}


def test_delayed_claim_finds_a_local_volume_per_node() -> None:
    store = store_of(
        LOCAL,
        claim("data", class_name="local"),
        volume("pv-b", class_name="local", hostname="b"),
    )
    assert verdicts(VolumeBinding(store), with_claims("data"), cluster("a", "b")) == {
        "a": BIND_CONFLICT,
        "b": None,
    }


@pytest.mark.parametrize(
    ("pv", "fits"),
    [
        (volume("pv", class_name="local"), True),
        (volume("pv", class_name="local", size="512Mi"), False),  # too small
        (volume("pv", class_name="other"), False),  # another class
        (volume("pv", class_name="local", modes=("ReadOnlyMany",)), False),  # access modes
        (volume("pv", class_name="local", phase="Released"), False),  # not available
        (volume("pv", class_name="local", claim_ref=("default", "other")), False),  # taken
        (volume("pv", class_name="local", labels={"tier": "gold"}), True),  # selector below
    ],
)
def test_static_matching_rules(pv: Any, fits: bool) -> None:
    store = store_of(LOCAL, claim("data", class_name="local"), pv)
    got = verdicts(VolumeBinding(store), with_claims("data"), cluster("a"))
    assert got == {"a": None if fits else BIND_CONFLICT}


def test_selector_must_match_the_volume_labels() -> None:
    wanted = claim("data", class_name="local", selector={"matchLabels": {"tier": "gold"}})
    store = store_of(LOCAL, wanted, volume("pv", class_name="local", labels={"tier": "iron"}))
    assert verdicts(VolumeBinding(store), with_claims("data"), cluster("a")) == {"a": BIND_CONFLICT}


def test_smallest_fitting_volume_is_chosen_and_each_volume_once() -> None:
    store = store_of(
        LOCAL,
        claim("big", class_name="local", size="5Gi"),
        claim("small", class_name="local", size="1Gi"),
        volume("pv-10", class_name="local", size="10Gi"),
        volume("pv-5", class_name="local", size="5Gi"),
        volume("pv-2", class_name="local", size="2Gi"),
    )
    plugin = VolumeBinding(store)
    pod = with_claims("big", "small")
    node = cluster("a").nodes()[0]
    bound = plugin.reserve(pod, node)
    assert bound is not None
    assert sorted((pv.metadata.name, c.metadata.name) for pv, c in bound.static) == [
        ("pv-2", "small"),
        ("pv-5", "big"),
    ]
    # Reserve assumed them: the chosen PVs now carry the claims.
    ref = store.volume("pv-2")
    assert ref is not None and ref.spec.claim_ref is not None
    assert ref.spec.claim_ref.name == "small"


def test_a_reserved_volume_is_not_chosen_again() -> None:
    store = store_of(
        LOCAL,
        claim("one", class_name="local"),
        claim("two", class_name="local"),
        volume("pv", class_name="local"),
    )
    plugin = VolumeBinding(store)
    node = cluster("a").nodes()[0]
    assert plugin.reserve(with_claims("one"), node) is not None
    assert verdicts(plugin, with_claims("two"), cluster("a")) == {"a": BIND_CONFLICT}
    store.restore_volume("pv")  # unreserve
    assert verdicts(plugin, with_claims("two"), cluster("a")) == {"a": None}


def test_pre_bound_volume_wins_over_a_smaller_one() -> None:
    store = store_of(
        LOCAL,
        claim("data", class_name="local"),
        volume("small", class_name="local"),
        volume("mine", class_name="local", size="9Gi", claim_ref=("default", "data")),
    )
    bound = VolumeBinding(store).reserve(with_claims("data"), cluster("a").nodes()[0])
    assert bound is not None and [pv.metadata.name for pv, _ in bound.static] == ["mine"]


def test_dynamic_provisioning_and_allowed_topologies() -> None:
    zoned = storage_class("zoned", provisioner="example.com/csi", topologies=[{"zone": ["z1"]}])
    store = store_of(
        DYNAMIC, zoned, claim("fast", class_name="fast"), claim("z", class_name="zoned")
    )
    nodes = cluster("a", "b", zone={"a": "z1", "b": "z2"})
    plugin = VolumeBinding(store)
    assert verdicts(plugin, with_claims("fast"), nodes) == {"a": None, "b": None}
    assert verdicts(plugin, with_claims("z"), nodes) == {"a": None, "b": BIND_CONFLICT}
    reserved = plugin.reserve(with_claims("z"), nodes.nodes()[0])
    assert reserved is not None and not reserved.static
    (annotated,) = reserved.provision
    assert annotated.metadata.annotations[ANN_SELECTED_NODE] == "a"
    # Assumed: the claim now reads as provisioned for node a, so b is out.
    assert verdicts(plugin, with_claims("z"), nodes) == {"a": None, "b": BIND_CONFLICT}


def test_no_provisioner_without_volume() -> None:
    store = store_of(LOCAL, claim("data", class_name="local"))
    assert verdicts(VolumeBinding(store), with_claims("data"), cluster("a")) == {"a": BIND_CONFLICT}


def test_selected_node_elsewhere() -> None:
    taken = claim("data", class_name="fast", annotations={ANN_SELECTED_NODE: "b"})
    store = store_of(DYNAMIC, taken)
    assert verdicts(VolumeBinding(store), with_claims("data"), cluster("a", "b")) == {
        "a": BIND_CONFLICT,
        "b": None,
    }


def test_bound_and_delayed_reasons_together() -> None:
    store = store_of(
        LOCAL,
        claim("bound", volume="pv-b"),
        volume("pv-b", hostname="b", claim_ref=("default", "bound")),
        claim("later", class_name="local"),
    )
    got = verdicts(VolumeBinding(store), with_claims("bound", "later"), cluster("a"))
    assert got == {"a": NODE_CONFLICT}


def test_gang_members_with_delayed_claims_are_refused() -> None:
    store = store_of(LOCAL, claim("data", class_name="local"))
    plugin = VolumeBinding(store, gang_member=lambda uid: True)
    verdict = plugin.pre_filter(with_claims("data"), cluster("a"))
    assert isinstance(verdict, Unresolvable) and verdict.message == GANG_UNSUPPORTED
    # Bound claims need no PreBind: a gang member with those is placed.
    bound = store_of(claim("data", volume="pv"), volume("pv", claim_ref=("default", "data")))
    member = VolumeBinding(bound, gang_member=lambda uid: True)
    assert not isinstance(member.pre_filter(with_claims("data"), cluster("a")), Unresolvable)


def test_storage_capacity_of_a_driver_that_publishes_it() -> None:
    driver = msgspec.convert(
        {"metadata": {"name": "example.com/csi"}, "spec": {"storageCapacity": True}}, CSIDriver
    )

    def capacity(name: str, zone: str, amount: str, maximum: str | None = None) -> Any:
        data: dict[str, Any] = {
            "metadata": {"name": name, "namespace": "kube-system"},
            "storageClassName": "fast",
            "nodeTopology": {"matchLabels": {"zone": zone}},
            "capacity": amount,
        }
        if maximum is not None:
            data["maximumVolumeSize"] = maximum
        return msgspec.convert(data, CSIStorageCapacity)

    store = store_of(DYNAMIC, claim("data", class_name="fast", size="10Gi"), driver)
    store.set_capacity(capacity("z1", "z1", "100Gi"))
    store.set_capacity(capacity("z2", "z2", "100Gi", maximum="5Gi"))  # no 10Gi volume there
    nodes = cluster("a", "b", "c", zone={"a": "z1", "b": "z2", "c": "z3"})
    assert verdicts(VolumeBinding(store), with_claims("data"), nodes) == {
        "a": None,
        "b": NOT_ENOUGH_SPACE,
        "c": NOT_ENOUGH_SPACE,
    }
    # A driver that does not publish capacity is not checked.
    store.set_csi_driver(msgspec.convert({"metadata": {"name": "example.com/csi"}}, CSIDriver))
    assert verdicts(VolumeBinding(store), with_claims("data"), nodes) == {
        "a": None,
        "b": None,
        "c": None,
    }


def test_every_node_is_filtered_for_a_volume_bound_to_a_host() -> None:
    """v1.35 words the other nodes by VolumeBinding's own reason (no PreFilterResult)."""
    store = store_of(
        claim("data", volume="pv-b"), volume("pv-b", hostname="b", claim_ref=("default", "data"))
    )
    nodes = cluster("a", "c")
    nodes.set_node(make_node("b", labels={"kubernetes.io/hostname": "b"}, unschedulable=True))
    node, fit = pick_node(
        Profile.default(cluster=nodes, volumes=store),
        with_claims("data"),
        nodes.nodes(),
        random.Random(1),
    )
    assert node is None
    assert unschedulable_message(3, fit.reasons) == (
        "0/3 nodes are available: 1 node(s) were unschedulable, "
        "2 node(s) didn't match PersistentVolume's node affinity."
    )
