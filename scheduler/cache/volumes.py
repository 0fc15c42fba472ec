"""PersistentVolumeClaims, PersistentVolumes, StorageClasses and CSINodes as the watches
report them, plus what we assumed ourselves (upstream's PV and PVC assume caches).

When a pod's claims are to be bound at its node (``WaitForFirstConsumer``), the pod cycle
assumes the outcome at once: the PV it chose carries the claim reference, the claim to be
provisioned carries the selected node. The next pod's cycle sees that and does not choose
the same PV. An assumption lasts until the watch brings a newer version of that object
(the API write and the PV controller's work arrive that way) or the binding failed and
``restore`` drops it.

``changed`` wakes whoever waits for the PV controller (the PreBind step).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from scheduler.model.volumes import (
    CSIDriver,
    CSINode,
    CSIStorageCapacity,
    PersistentVolume,
    PersistentVolumeClaim,
    StorageClass,
)


class VolumeStore:
    def __init__(self) -> None:
        self._claims: dict[str, PersistentVolumeClaim] = {}
        """namespace/name -> the claim as the API has it."""
        self._volumes: dict[str, PersistentVolume] = {}
        self._classes: dict[str, StorageClass] = {}
        self._csi_nodes: dict[str, CSINode] = {}
        self._csi_drivers: dict[str, CSIDriver] = {}
        self._capacities: dict[str, CSIStorageCapacity] = {}
        self._capacity_list: list[CSIStorageCapacity] | None = None
        self._assumed_claims: dict[str, PersistentVolumeClaim] = {}
        self._assumed_volumes: dict[str, PersistentVolume] = {}
        self._by_class: dict[str, list[str]] | None = None
        self._changed = asyncio.Event()

    # -- reading (VolumeView) ---------------------------------------------------------

    def claim(self, namespace: str, name: str) -> PersistentVolumeClaim | None:
        key = f"{namespace}/{name}"
        return self._assumed_claims.get(key) or self._claims.get(key)

    def volume(self, name: str) -> PersistentVolume | None:
        return self._assumed_volumes.get(name) or self._volumes.get(name)

    def volumes_of_class(self, class_name: str) -> Sequence[PersistentVolume]:
        if self._by_class is None:
            by_class: dict[str, list[str]] = {}
            for name in sorted(self._volumes):
                by_class.setdefault(self._volumes[name].class_name, []).append(name)
            self._by_class = by_class
        found = (self.volume(n) for n in self._by_class.get(class_name, ()))
        return [pv for pv in found if pv is not None]

    def storage_class(self, name: str) -> StorageClass | None:
        return self._classes.get(name)

    def csi_node(self, name: str) -> CSINode | None:
        return self._csi_nodes.get(name)

    def csi_driver(self, name: str) -> CSIDriver | None:
        return self._csi_drivers.get(name)

    def capacities(self) -> Sequence[CSIStorageCapacity]:
        if self._capacity_list is None:
            self._capacity_list = [self._capacities[k] for k in sorted(self._capacities)]
        return self._capacity_list

    def api_claim(self, key: str) -> PersistentVolumeClaim | None:
        """The claim as the watch last reported it (no assumption)."""
        return self._claims.get(key)

    def api_volume(self, name: str) -> PersistentVolume | None:
        return self._volumes.get(name)

    async def changed(self) -> None:
        """Returns at the next change the watches bring."""
        await self._changed.wait()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    # -- assumptions ----------------------------------------------------------------

    def assume_claim(self, claim: PersistentVolumeClaim) -> None:
        self._assumed_claims[claim.key] = claim

    def assume_volume(self, volume: PersistentVolume) -> None:
        self._assumed_volumes[volume.metadata.name] = volume

    def restore_claim(self, key: str) -> None:
        self._assumed_claims.pop(key, None)

    def restore_volume(self, name: str) -> None:
        self._assumed_volumes.pop(name, None)

    # -- watch events ---------------------------------------------------------------

    def set_claim(self, claim: PersistentVolumeClaim) -> None:
        key = claim.key
        self._claims[key] = claim
        assumed = self._assumed_claims.get(key)
        if assumed is not None and assumed.metadata.resource_version != (
            claim.metadata.resource_version
        ):
            del self._assumed_claims[key]
        self._notify()

    def delete_claim(self, key: str) -> None:
        self._claims.pop(key, None)
        self._assumed_claims.pop(key, None)
        self._notify()

    def claim_keys(self) -> list[str]:
        return list(self._claims)

    def set_volume(self, volume: PersistentVolume) -> None:
        name = volume.metadata.name
        old = self._volumes.get(name)
        self._volumes[name] = volume
        if old is None or old.class_name != volume.class_name:
            self._by_class = None
        assumed = self._assumed_volumes.get(name)
        if assumed is not None and assumed.metadata.resource_version != (
            volume.metadata.resource_version
        ):
            del self._assumed_volumes[name]
        self._notify()

    def delete_volume(self, name: str) -> None:
        if self._volumes.pop(name, None) is not None:
            self._by_class = None
        self._assumed_volumes.pop(name, None)
        self._notify()

    def volume_names(self) -> list[str]:
        return list(self._volumes)

    def set_storage_class(self, storage_class: StorageClass) -> None:
        self._classes[storage_class.metadata.name] = storage_class
        self._notify()

    def delete_storage_class(self, name: str) -> None:
        self._classes.pop(name, None)
        self._notify()

    def storage_class_names(self) -> list[str]:
        return list(self._classes)

    def set_csi_node(self, csi_node: CSINode) -> None:
        self._csi_nodes[csi_node.metadata.name] = csi_node
        self._notify()

    def delete_csi_node(self, name: str) -> None:
        self._csi_nodes.pop(name, None)
        self._notify()

    def csi_node_names(self) -> list[str]:
        return list(self._csi_nodes)

    def set_csi_driver(self, driver: CSIDriver) -> None:
        self._csi_drivers[driver.metadata.name] = driver
        self._notify()

    def delete_csi_driver(self, name: str) -> None:
        self._csi_drivers.pop(name, None)
        self._notify()

    def csi_driver_names(self) -> list[str]:
        return list(self._csi_drivers)

    def set_capacity(self, capacity: CSIStorageCapacity) -> None:
        self._capacities[capacity.key] = capacity
        self._capacity_list = None
        self._notify()

    def delete_capacity(self, key: str) -> None:
        self._capacities.pop(key, None)
        self._capacity_list = None
        self._notify()

    def capacity(self, key: str) -> CSIStorageCapacity | None:
        return self._capacities.get(key)

    def capacity_keys(self) -> list[str]:
        return list(self._capacities)
