"""Watch events of the storage objects become ``VolumeStore`` updates, and requeue the
pods they may let fit (upstream's VolumeBinding, VolumeZone, VolumeRestrictions and
NodeVolumeLimits register these events).

Only what can make a parked pod fit moves the queue: an object added, or an update to what
the volume plugins read (a claim's volume, phase, annotations or access modes; a PV's claim
reference, phase, labels or capacity; a class's allowed topologies; a CSINode's drivers or
migrated plugins; a CSIDriver's ``storageCapacity``; a CSIStorageCapacity's amounts or
topology). Status churn otherwise costs a dict write. Deletions never help a pod fit (a
deleted pod frees a ReadWriteOncePod claim through the pod watch).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Generic, TypeVar

from scheduler.api.watch import DELETED
from scheduler.cache.volumes import VolumeStore
from scheduler.model.objects import Pod
from scheduler.model.volumes import (
    CSIDriver,
    CSINode,
    CSIStorageCapacity,
    PersistentVolume,
    PersistentVolumeClaim,
    StorageClass,
)
from scheduler.queue.scheduling_queue import ClusterEvent, SchedulingQueue

STORAGE_KINDS: Final = (
    "PersistentVolumeClaim",
    "PersistentVolume",
    "StorageClass",
    "CSINode",
    "CSIDriver",
    "CSIStorageCapacity",
)
"""The event names these watches send start with one of these."""
_STORAGE_VOLUMES: Final = frozenset(
    {
        "persistentVolumeClaim",
        "ephemeral",
        "awsElasticBlockStore",
        "gcePersistentDisk",
        "azureDisk",
        "cinder",
    }
)


def uses_storage(pod: Pod) -> bool:
    """Whether a storage object can change where the pod fits: claims, and in-tree volumes
    NodeVolumeLimits counts once migrated (CSINode)."""
    return any(not _STORAGE_VOLUMES.isdisjoint(volume) for volume in pod.spec.volumes)


def not_storage(event: ClusterEvent) -> bool:
    """The retry hint of a pod that uses no storage: storage events cannot help it (as
    upstream's queueing hints skip the volume plugins' events for pods they did not reject)."""
    return not event.name.startswith(STORAGE_KINDS)


T = TypeVar(
    "T",
    PersistentVolumeClaim,
    PersistentVolume,
    StorageClass,
    CSINode,
    CSIDriver,
    CSIStorageCapacity,
)


def _claim_key(claim: PersistentVolumeClaim) -> tuple[object, ...]:
    return (
        claim.spec.volume_name,
        claim.status.phase,
        claim.metadata.annotations,
        claim.metadata.deletion_timestamp,
        tuple(claim.spec.access_modes),
    )


def _volume_key(pv: PersistentVolume) -> tuple[object, ...]:
    return (pv.spec.claim_ref, pv.status.phase, pv.metadata.labels, pv.spec.capacity)


def _class_key(storage_class: StorageClass) -> tuple[object, ...]:
    return (storage_class.allowed_topologies,)


def _csi_node_key(csi_node: CSINode) -> tuple[object, ...]:
    return (csi_node.spec.drivers, csi_node.metadata.annotations)


def _driver_key(driver: CSIDriver) -> tuple[object, ...]:
    return (driver.spec.storage_capacity,)


def _capacity_key(capacity: CSIStorageCapacity) -> tuple[object, ...]:
    return (capacity.capacity, capacity.maximum_volume_size, capacity.node_topology)


@dataclass(frozen=True, slots=True)
class _StoreOps(Generic[T]):
    """How one kind of object goes in and out of the store."""

    name: Callable[[T], str]
    get: Callable[[str], T | None]
    put: Callable[[T], None]
    delete: Callable[[str], None]
    names: Callable[[], list[str]]
    relevant: Callable[[T], tuple[object, ...]]


class StorageEvents(Generic[T]):
    """One storage resource's watch (``kind``: ``PersistentVolumeClaim``, ...)."""

    def __init__(self, kind: str, store_ops: _StoreOps[T], queue: SchedulingQueue) -> None:
        self.kind = kind
        self.ops: _StoreOps[T] = store_ops
        self.queue = queue

    def replace(self, items: list[T]) -> None:
        seen = {self.ops.name(item) for item in items}
        for key in self.ops.names():
            if key not in seen:
                self.ops.delete(key)
        for item in items:
            self.ops.put(item)
        self.queue.move_all(f"{self.kind}Relist")

    def apply(self, event_type: str, obj: T) -> None:
        key = self.ops.name(obj)
        if event_type == DELETED:
            self.ops.delete(key)
            return
        old = self.ops.get(key)
        self.ops.put(obj)
        if old is None:
            self.queue.move_all(f"{self.kind}Add")
        elif self.ops.relevant(old) != self.ops.relevant(obj):
            self.queue.move_all(f"{self.kind}Update")


def storage_handlers(
    store: VolumeStore, queue: SchedulingQueue
) -> tuple[
    StorageEvents[PersistentVolumeClaim],
    StorageEvents[PersistentVolume],
    StorageEvents[StorageClass],
    StorageEvents[CSINode],
    StorageEvents[CSIDriver],
    StorageEvents[CSIStorageCapacity],
]:
    """The handlers for the storage watches, over one store."""
    claims: _StoreOps[PersistentVolumeClaim] = _StoreOps(
        lambda c: c.key,
        store.api_claim,
        store.set_claim,
        store.delete_claim,
        store.claim_keys,
        _claim_key,
    )
    volumes: _StoreOps[PersistentVolume] = _StoreOps(
        lambda v: v.metadata.name,
        store.api_volume,
        store.set_volume,
        store.delete_volume,
        store.volume_names,
        _volume_key,
    )
    classes: _StoreOps[StorageClass] = _StoreOps(
        lambda c: c.metadata.name,
        store.storage_class,
        store.set_storage_class,
        store.delete_storage_class,
        store.storage_class_names,
        _class_key,
    )
    csi_nodes: _StoreOps[CSINode] = _StoreOps(
        lambda c: c.metadata.name,
        store.csi_node,
        store.set_csi_node,
        store.delete_csi_node,
        store.csi_node_names,
        _csi_node_key,
    )
    drivers: _StoreOps[CSIDriver] = _StoreOps(
        lambda d: d.metadata.name,
        store.csi_driver,
        store.set_csi_driver,
        store.delete_csi_driver,
        store.csi_driver_names,
        _driver_key,
    )
    capacities: _StoreOps[CSIStorageCapacity] = _StoreOps(
        lambda c: c.key,
        store.capacity,
        store.set_capacity,
        store.delete_capacity,
        store.capacity_keys,
        _capacity_key,
    )
    return (
        StorageEvents("PersistentVolumeClaim", claims, queue),
        StorageEvents("PersistentVolume", volumes, queue),
        StorageEvents("StorageClass", classes, queue),
        StorageEvents("CSINode", csi_nodes, queue),
        StorageEvents("CSIDriver", drivers, queue),
        StorageEvents("CSIStorageCapacity", capacities, queue),
    )
