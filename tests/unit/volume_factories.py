"""Plain-data builders for claims, PVs, StorageClasses and CSINodes, shaped like the API's."""

from __future__ import annotations

from typing import Any

import msgspec

from scheduler.cache.volumes import VolumeStore
from scheduler.model.volumes import (
    ANN_BIND_COMPLETED,
    CSIDriver,
    CSINode,
    CSIStorageCapacity,
    PersistentVolume,
    PersistentVolumeClaim,
    StorageClass,
)


def claim(
    name: str,
    *,
    namespace: str = "default",
    size: str = "1Gi",
    class_name: str | None = None,
    volume: str = "",
    modes: tuple[str, ...] = ("ReadWriteOnce",),
    annotations: dict[str, str] | None = None,
    owner_uid: str = "",
    selector: dict[str, Any] | None = None,
    deleting: bool = False,
    phase: str = "",
    resource_version: str = "1",
    bind_completed: bool = True,
) -> PersistentVolumeClaim:
    """A claim; bound (``bind-completed``) when ``volume`` is given and ``bind_completed``."""
    ann = dict(annotations or {})
    if volume and bind_completed:
        ann.setdefault(ANN_BIND_COMPLETED, "yes")
    meta: dict[str, Any] = {
        "name": name,
        "namespace": namespace,
        "uid": f"uid-claim-{name}",
        "annotations": ann,
        "resourceVersion": resource_version,
    }
    if owner_uid:
        meta["ownerReferences"] = [
            {"apiVersion": "v1", "kind": "Pod", "name": "p", "uid": owner_uid, "controller": True}
        ]
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    spec: dict[str, Any] = {
        "accessModes": list(modes),
        "resources": {"requests": {"storage": size}},
        "volumeName": volume,
    }
    if class_name is not None:
        spec["storageClassName"] = class_name
    if selector is not None:
        spec["selector"] = selector
    return msgspec.convert(
        {"metadata": meta, "spec": spec, "status": {"phase": phase}}, PersistentVolumeClaim
    )


def volume(
    name: str,
    *,
    size: str = "1Gi",
    class_name: str = "",
    hostname: str | None = None,
    claim_ref: tuple[str, str] | None = None,
    claim_uid: str = "",
    modes: tuple[str, ...] = ("ReadWriteOnce",),
    labels: dict[str, str] | None = None,
    phase: str = "Available",
    csi: tuple[str, str] | None = None,
    resource_version: str = "1",
) -> PersistentVolume:
    """A PV; with ``hostname``, node affinity to that one node (a local volume)."""
    spec: dict[str, Any] = {
        "capacity": {"storage": size},
        "accessModes": list(modes),
        "storageClassName": class_name,
    }
    if hostname is not None:
        spec["nodeAffinity"] = {
            "required": {
                "nodeSelectorTerms": [
                    {
                        "matchExpressions": [
                            {
                                "key": "kubernetes.io/hostname",
                                "operator": "In",
                                "values": [hostname],
                            }
                        ]
                    }
                ]
            }
        }
    if claim_ref is not None:
        spec["claimRef"] = {"namespace": claim_ref[0], "name": claim_ref[1], "uid": claim_uid}
    if csi is not None:
        spec["csi"] = {"driver": csi[0], "volumeHandle": csi[1]}
    meta = {"name": name, "labels": labels or {}, "resourceVersion": resource_version}
    return msgspec.convert(
        {"metadata": meta, "spec": spec, "status": {"phase": phase}}, PersistentVolume
    )


def storage_class(
    name: str,
    *,
    provisioner: str = "kubernetes.io/no-provisioner",
    mode: str = "WaitForFirstConsumer",
    topologies: list[dict[str, list[str]]] | None = None,
) -> StorageClass:
    data: dict[str, Any] = {
        "metadata": {"name": name},
        "provisioner": provisioner,
        "volumeBindingMode": mode,
    }
    if topologies is not None:
        data["allowedTopologies"] = [
            {"matchLabelExpressions": [{"key": k, "values": v} for k, v in t.items()]}
            for t in topologies
        ]
    return msgspec.convert(data, StorageClass)


def csi_node(name: str, limits: dict[str, int]) -> CSINode:
    drivers = [{"name": d, "nodeID": name, "allocatable": {"count": c}} for d, c in limits.items()]
    return msgspec.convert({"metadata": {"name": name}, "spec": {"drivers": drivers}}, CSINode)


def store_of(*objects: Any) -> VolumeStore:
    store = VolumeStore()
    for obj in objects:
        if isinstance(obj, PersistentVolumeClaim):
            store.set_claim(obj)
        elif isinstance(obj, PersistentVolume):
            store.set_volume(obj)
        elif isinstance(obj, StorageClass):
            store.set_storage_class(obj)
        elif isinstance(obj, CSIDriver):
            store.set_csi_driver(obj)
        elif isinstance(obj, CSIStorageCapacity):
            store.set_capacity(obj)
        else:
            store.set_csi_node(obj)
    return store


def pvc_volume(claim_name: str, name: str | None = None) -> dict[str, Any]:
    return {"name": name or claim_name, "persistentVolumeClaim": {"claimName": claim_name}}
