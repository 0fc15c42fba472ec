"""VolumeZone: a bound PV's zone and region labels must match the node's, as upstream's
``volumezone`` plugin decides::

    0/3 nodes are available: 2 node(s) had no available volume zone.

A PV label (``topology.kubernetes.io/zone`` or ``region``, or their beta
``failure-domain.beta.kubernetes.io`` forms) may list several values joined by ``__``; the
node's value must be one of them (a beta key on the PV matches the node's GA key too). A
node with none of these labels passes (a single-zone cluster). Only
``persistentVolumeClaim`` volumes count (not generic ephemeral ones), and unbound
``WaitForFirstConsumer`` claims are skipped (VolumeBinding places them). Pre-filter
refusals, for every node: ``persistentvolume "pv-1" not found``, ``PersistentVolume had
no name`` (an unbound claim of an Immediate class), ``PersistentVolumeClaim had no pv
name and storageClass name``, ``storageclass.storage.k8s.io "fast" not found``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Final

from scheduler.framework.types import ClusterView, NodeInfo, PodInfo, Unresolvable
from scheduler.framework.volumes import VolumeView
from scheduler.model.volumes import WAIT_FOR_FIRST_CONSUMER

NO_ZONE: Final = "node(s) had no available volume zone"
BETA_ZONE: Final = "failure-domain.beta.kubernetes.io/zone"
BETA_REGION: Final = "failure-domain.beta.kubernetes.io/region"
ZONE: Final = "topology.kubernetes.io/zone"
REGION: Final = "topology.kubernetes.io/region"
TOPOLOGY_LABELS: Final = (BETA_ZONE, BETA_REGION, ZONE, REGION)
_TO_GA: Final = {BETA_ZONE: ZONE, BETA_REGION: REGION}


def zones(value: str) -> frozenset[str]:
    """``LabelZonesToSet``: values joined by ``__``, blanks trimmed."""
    return frozenset(z.strip() for z in value.split("__") if z.strip())


@dataclass(slots=True)
class _Check:
    topologies: list[tuple[str, frozenset[str]]]
    name: ClassVar[str] = "VolumeZone"

    def filter(self, pod: PodInfo, node: NodeInfo) -> tuple[str, ...] | None:
        labels = node.node.metadata.labels
        if not any(key in labels for key in TOPOLOGY_LABELS):
            return None
        for key, values in self.topologies:
            value = labels.get(key)
            if value is None:
                value = labels.get(_TO_GA.get(key, key))
            if value is None or value not in values:
                return (NO_ZONE,)
        return None


class VolumeZone:
    name: ClassVar[str] = "VolumeZone"

    def __init__(self, store: VolumeView) -> None:
        self.store = store

    def pre_filter(self, pod: PodInfo, cluster: ClusterView) -> _Check | Unresolvable | None:
        if pod.signature is not None:
            return None
        namespace = pod.pod.metadata.namespace
        topologies: list[tuple[str, frozenset[str]]] = []
        for volume in pod.pod.spec.volumes:
            source = volume.get("persistentVolumeClaim")
            if not isinstance(source, dict):
                continue
            claim_name = str(source.get("claimName", ""))
            if not claim_name:
                return Unresolvable(self.name, "PersistentVolumeClaim had no name")
            claim = self.store.claim(namespace, claim_name)
            if claim is None:
                return Unresolvable(self.name, f'persistentvolumeclaim "{claim_name}" not found')
            pv_name = claim.spec.volume_name
            if not pv_name:
                class_name = claim.class_name
                if not class_name:
                    return Unresolvable(
                        self.name, "PersistentVolumeClaim had no pv name and storageClass name"
                    )
                storage_class = self.store.storage_class(class_name)
                if storage_class is None:
                    return Unresolvable(
                        self.name, f'storageclass.storage.k8s.io "{class_name}" not found'
                    )
                if storage_class.volume_binding_mode == WAIT_FOR_FIRST_CONSUMER:
                    continue
                return Unresolvable(self.name, "PersistentVolume had no name")
            pv = self.store.volume(pv_name)
            if pv is None:
                return Unresolvable(self.name, f'persistentvolume "{pv_name}" not found')
            for key in TOPOLOGY_LABELS:
                value = pv.metadata.labels.get(key)
                if value is not None:
                    topologies.append((key, zones(value)))
        return _Check(topologies) if topologies else None
