"""VolumeBinding's PreBind (``VolumePreBind``) against a fake API (a patcher that applies
merge patches to plain objects) and a store we feed as the watch would, and the storage
watch handlers' requeueing."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec

from scheduler.api.watch import ADDED, MODIFIED
from scheduler.cache.cluster_cache import ClusterCache
from scheduler.cache.volumes import VolumeStore
from scheduler.core.volume_binding import PREFIX, VolumePreBind
from scheduler.core.volume_events import storage_handlers
from scheduler.framework.plugins.volume_binding import VolumeBinding
from scheduler.model.volumes import (
    ANN_BIND_COMPLETED,
    ANN_SELECTED_NODE,
    PersistentVolume,
    PersistentVolumeClaim,
)
from scheduler.queue.scheduling_queue import SchedulingQueue
from tests.unit.factories import make_node, pod_info
from tests.unit.volume_factories import claim, pvc_volume, storage_class, store_of, volume


def _merge(target: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = value
    return target


class FakeApi:
    """Applies merge patches to the store's API objects and answers with the result (a new
    resourceVersion); the watch does not see it until ``deliver``."""

    def __init__(self, store: VolumeStore) -> None:
        self.store = store
        self.patches: list[tuple[str, dict[str, Any]]] = []
        self.pending: list[Any] = []

    async def patch(self, path: str, body: object) -> bytes:
        assert isinstance(body, dict)
        self.patches.append((path, body))
        name = path.rsplit("/", 1)[1]
        current: Any
        kind: type[Any]
        if "/persistentvolumes/" in path:
            current, kind = self.store.api_volume(name), PersistentVolume
        else:
            namespace = path.split("/namespaces/")[1].split("/", maxsplit=1)[0]
            current, kind = self.store.api_claim(f"{namespace}/{name}"), PersistentVolumeClaim
        data = msgspec.to_builtins(current)
        body = {
            **body,
            "metadata": {k: v for k, v in body["metadata"].items() if k != "resourceVersion"},
        }
        _merge(data, body)
        data["metadata"]["resourceVersion"] = str(int(data["metadata"]["resourceVersion"]) + 1)
        updated = msgspec.convert(data, kind)
        self.pending.append(updated)
        return msgspec.json.encode(updated)

    def deliver(self) -> None:
        for obj in self.pending:
            if isinstance(obj, PersistentVolume):
                self.store.set_volume(obj)
            else:
                self.store.set_claim(obj)
        self.pending.clear()


def setup(store: VolumeStore, timeout: float = 5.0) -> tuple[VolumePreBind, FakeApi, ClusterCache]:
    cache = ClusterCache()
    cache.set_node(make_node("a", labels={"kubernetes.io/hostname": "a"}))
    api = FakeApi(store)
    pre_bind = VolumePreBind(
        api,
        store,
        VolumeBinding(store),
        pod_present=lambda uid: True,
        node_labels=lambda name: {"kubernetes.io/hostname": name},
        timeout=timeout,
    )
    return pre_bind, api, cache


def bound(c: PersistentVolumeClaim, pv_name: str) -> PersistentVolumeClaim:
    """The claim as the PV controller leaves it."""
    meta = msgspec.structs.replace(
        c.metadata,
        annotations={**c.metadata.annotations, ANN_BIND_COMPLETED: "yes"},
        resource_version=str(int(c.metadata.resource_version) + 1),
    )
    return msgspec.structs.replace(
        c, metadata=meta, spec=msgspec.structs.replace(c.spec, volume_name=pv_name)
    )


def provisioning_store() -> VolumeStore:
    return store_of(
        storage_class("fast", provisioner="example.com/csi"), claim("data", class_name="fast")
    )


async def start(
    store: VolumeStore, timeout: float = 5.0
) -> tuple[asyncio.Task[str | None], FakeApi]:
    """Reserve a pod's claim at node a and start its PreBind; it has made its writes."""
    pre_bind, api, cache = setup(store, timeout)
    pod = pod_info("web", volumes=[pvc_volume("data")])
    reserved = pre_bind.reserve(pod, cache.nodes()[0])
    assert reserved is not None
    task = asyncio.create_task(pre_bind.bind(pod, "a", reserved))
    await asyncio.sleep(0.01)
    return task, api


def controller_binds(store: VolumeStore, pv_name: str) -> None:
    c = store.api_claim("default/data")
    assert c is not None
    store.set_claim(bound(c, pv_name))


async def test_static_binding_writes_claim_ref_and_waits_for_the_controller() -> None:
    store = store_of(
        storage_class("local"),
        claim("data", class_name="local"),
        volume("pv", class_name="local", hostname="a"),
    )
    task, api = await start(store)
    ((path, body),) = api.patches
    assert path == "/api/v1/persistentvolumes/pv"
    assert body["spec"]["claimRef"]["name"] == "data"
    assert body["spec"]["claimRef"]["uid"] == "uid-claim-data"
    assert body["metadata"]["resourceVersion"] == "1"
    assert not task.done()
    api.deliver()  # the PV with its claimRef comes back through the watch
    await asyncio.sleep(0.01)
    assert not task.done()  # the claim is not bound yet
    controller_binds(store, "pv")
    assert await asyncio.wait_for(task, 2) is None


async def test_dynamic_provisioning_sets_selected_node() -> None:
    store = provisioning_store()
    task, api = await start(store)
    ((path, body),) = api.patches
    assert path == "/api/v1/namespaces/default/persistentvolumeclaims/data"
    assert body["metadata"]["annotations"] == {ANN_SELECTED_NODE: "a"}
    api.deliver()
    made = volume("pvc-1", class_name="fast", hostname="a", claim_ref=("default", "data"))
    store.set_volume(made)
    controller_binds(store, "pvc-1")
    assert await asyncio.wait_for(task, 2) is None


async def test_provisioner_giving_up_fails_the_pre_bind_and_unreserves() -> None:
    store = provisioning_store()
    task, api = await start(store)
    api.deliver()
    c = store.api_claim("default/data")
    assert c is not None
    # The provisioner takes the annotation away.
    given_up = msgspec.structs.replace(
        c,
        metadata=msgspec.structs.replace(
            c.metadata, annotations={}, resource_version=str(int(c.metadata.resource_version) + 1)
        ),
    )
    store.set_claim(given_up)
    message = await asyncio.wait_for(task, 2)
    assert message == PREFIX + 'provisioning failed for PVC "data"'
    after = store.claim("default", "data")
    assert after is not None and ANN_SELECTED_NODE not in after.metadata.annotations


async def test_timeout() -> None:
    task, _ = await start(provisioning_store(), timeout=0.05)
    assert await task == PREFIX + "context deadline exceeded"


def test_storage_events_requeue_on_what_matters() -> None:
    store = VolumeStore()
    queue = SchedulingQueue()
    moved: list[str] = []
    queue.move_all = lambda event: moved.append(str(event)) or 0  # type: ignore[method-assign,func-returns-value]
    claims, volumes, classes, *_ = storage_handlers(store, queue)
    claims.apply(ADDED, claim("data"))
    claims.apply(MODIFIED, claim("data", resource_version="2"))  # nothing we read changed
    claims.apply(MODIFIED, claim("data", volume="pv", resource_version="3"))
    volumes.apply(ADDED, volume("pv"))
    classes.apply(ADDED, storage_class("local"))
    assert moved == [
        "PersistentVolumeClaimAdd",
        "PersistentVolumeClaimUpdate",
        "PersistentVolumeAdd",
        "StorageClassAdd",
    ]
    claims.replace([])
    assert store.api_claim("default/data") is None
