"""The volume plugins in the pod cycle: preemption frees a ReadWriteOncePod claim, and a
failed PreBind sends the pod back to the queue with kube-scheduler's message."""

from __future__ import annotations

from test_preemption_cycle import pending, running, world

from scheduler.api.client import ApiError
from scheduler.core.volume_binding import PREFIX, VolumePreBind
from scheduler.framework.plugins.volume_binding import VolumeBinding
from tests.unit.volume_factories import claim, pvc_volume, storage_class, store_of, volume


async def test_preemption_evicts_the_pod_holding_a_read_write_once_pod_claim() -> None:
    store = store_of(
        claim("data", namespace="default", modes=("ReadWriteOncePod",), volume="pv"),
        volume("pv", claim_ref=("default", "data"), phase="Bound"),
    )
    w = world(("n1", "4"), ("n2", "4"), volumes=store)
    w.add(running("holder", 0, "1", "n1", volumes=[pvc_volume("data")]))
    w.add(running("other", 0, "1", "n2"))
    w.add(pending("p", 100, "1", volumes=[pvc_volume("data")]))
    assert await w.try_pod("p") is None
    assert w.reporter.failed["p"] == (
        "0/2 nodes are available: 2 node has pod using PersistentVolumeClaim with the same "
        "name and ReadWriteOncePod access mode."
    )
    # The holder's node, and only the holder: the other node's pod does not use the claim.
    assert w.preempter.evictions == [("holder", "p", "n1")]


class FailingApi:
    async def patch(self, path: str, body: object) -> bytes:
        raise ApiError(
            409, b'{"reason": "Conflict", "message": "the object has been modified"}', "PATCH", path
        )


async def test_failed_pre_bind_requeues_with_upstream_wording() -> None:
    store = store_of(
        storage_class("local"),
        claim("data", namespace="default", class_name="local"),
        volume("pv", class_name="local"),
    )
    w = world(("n1", "4"), volumes=store)
    plugin = next(p for p in w.scheduler.profile.pre_filters if isinstance(p, VolumeBinding))
    cache = w.cache
    w.scheduler.volumes = VolumePreBind(
        FailingApi(),
        store,
        plugin,
        pod_present=lambda uid: cache.node_of(uid) is not None,
        node_labels=lambda name: {},
    )
    w.add(pending("p", 0, "1", volumes=[pvc_volume("data")]))
    assert await w.try_pod("p") == "n1"  # assumed; the binding cycle runs next
    await w.scheduler.drain()
    assert w.cache.node_of("uid-default-p") is None
    message = w.reporter.failed["p"]
    assert message.startswith(PREFIX + "PATCH /api/v1/persistentvolumes/pv: 409 Conflict"), message
    assert w.queue.get("uid-default-p") is not None  # back in the queue, to be retried
    # The assumption is dropped: the PV is free for the next attempt.
    pv = store.volume("pv")
    assert pv is not None and pv.spec.claim_ref is None


async def test_volume_pre_filter_refusal_gets_kube_schedulers_tail() -> None:
    """kube-scheduler v1.35 says ``not found`` after it (DynamicResources' PostFilter finds
    no state when an earlier pre-filter rejected the pod) and does not preempt."""
    w = world(("n1", "4"), ("n2", "4"), volumes=store_of())
    w.add(running("low", 0, "4", "n1"))
    w.add(pending("p", 100, "1", volumes=[pvc_volume("data")]))
    assert await w.try_pod("p") is None
    assert w.reporter.failed["p"] == (
        '0/2 nodes are available: persistentvolumeclaim "data" not found. not found'
    )
    assert w.preempter.evictions == []


async def test_storage_events_move_only_pods_that_use_storage() -> None:
    w = world(("n1", "1"), volumes=store_of())
    w.add(pending("big", 0, "8"))  # no volumes: waits for capacity, not for storage
    w.add(pending("claims", 0, "1", volumes=[pvc_volume("data")]))
    assert await w.try_pod("big") is None
    assert await w.try_pod("claims") is None
    where = {qp.info.pod.metadata.name: qp.where for qp in w.queue.pods_in_any()}
    assert where == {"big": "unschedulable", "claims": "unschedulable"}
    assert w.queue.move_all("PersistentVolumeClaimAdd") == 1
    assert w.queue.move_all("NodeAdd") == 1  # the other one
