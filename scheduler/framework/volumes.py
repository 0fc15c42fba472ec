"""What the volume plugins read: the storage objects (``VolumeView``, kept by
``scheduler.cache.volumes.VolumeStore``) and a pod's volumes, named as upstream names them.

A pod's claim volumes are ``persistentVolumeClaim`` volumes and generic ephemeral
volumes, whose claim is ``<pod name>-<volume name>`` and must be controlled by the pod
(component-helpers' ``ephemeral.VolumeClaimName`` / ``VolumeIsForPod``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

from scheduler.framework.node_selectors import compile_label_terms
from scheduler.model.objects import NodeSelector, Pod
from scheduler.model.volumes import (
    CSIDriver,
    CSINode,
    CSIStorageCapacity,
    PersistentVolume,
    PersistentVolumeClaim,
    StorageClass,
    TopologyTerm,
)

VOLUME_PLUGINS: Final = frozenset(
    {"VolumeRestrictions", "NodeVolumeLimits", "VolumeBinding", "VolumeZone"}
)
"""The volume plugins' names: their pre-filters' filters also run in preemption's dry runs
(they read only the node at hand, so removing victims from a copy of it counts)."""


class VolumeView(Protocol):
    """The storage objects as the scheduler sees them: the watch's latest, overlaid with
    what we assumed ourselves (a PV we chose for a claim, a node selected for a claim)
    until the watch shows it (upstream's assume caches)."""

    def claim(self, namespace: str, name: str) -> PersistentVolumeClaim | None: ...

    def volume(self, name: str) -> PersistentVolume | None: ...

    def volumes_of_class(self, class_name: str) -> Sequence[PersistentVolume]:
        """Every PV of this StorageClass ("" for none), in a stable order."""
        ...

    def storage_class(self, name: str) -> StorageClass | None: ...

    def csi_node(self, name: str) -> CSINode | None: ...

    def csi_driver(self, name: str) -> CSIDriver | None: ...

    def capacities(self) -> Sequence[CSIStorageCapacity]:
        """Every CSIStorageCapacity, in a stable order."""
        ...

    def assume_claim(self, claim: PersistentVolumeClaim) -> None:
        """Read ``claim`` (selected node set) instead of the API's until the watch brings
        a newer version or it is restored."""
        ...

    def assume_volume(self, volume: PersistentVolume) -> None:
        """Likewise for a PV we chose for a claim (claim reference set)."""
        ...

    def restore_claim(self, key: str) -> None: ...

    def restore_volume(self, name: str) -> None: ...


@dataclass(frozen=True, slots=True)
class ClaimVolume:
    """One of a pod's volumes that uses a claim."""

    volume: str
    claim: str
    ephemeral: bool


def claim_volumes(pod: Pod) -> Iterator[ClaimVolume]:
    """The pod's PVC and generic ephemeral volumes, in spec order."""
    for volume in pod.spec.volumes:
        name = str(volume.get("name", ""))
        pvc = volume.get("persistentVolumeClaim")
        if isinstance(pvc, dict):
            yield ClaimVolume(name, str(pvc.get("claimName", "")), False)
        elif "ephemeral" in volume:
            yield ClaimVolume(name, f"{pod.metadata.name}-{name}", True)


def has_claims(pod: Pod) -> bool:
    return any(True for _ in claim_volumes(pod))


def not_for_pod(pod: Pod, claim: PersistentVolumeClaim) -> str | None:
    """Why an ephemeral volume's claim is not the pod's own (it must be controlled by the
    pod), in ``ephemeral.VolumeIsForPod``'s words; None when it is."""
    uid = pod.metadata.uid
    for ref in claim.metadata.owner_references:
        if ref.controller and ref.uid == uid:
            return None
    meta, cmeta = pod.metadata, claim.metadata
    return (
        f"PVC {cmeta.namespace}/{cmeta.name} was not created for pod "
        f"{meta.namespace}/{meta.name} (pod is not owner)"
    )


def volume_source(volume: Mapping[str, Any], kind: str) -> Mapping[str, Any] | None:
    """The ``kind`` source of an inline volume (``gcePersistentDisk``, ``csi``, ...)."""
    source = volume.get(kind)
    return source if isinstance(source, dict) else None


_AFFINITY_CACHE: dict[int, tuple[NodeSelector, Callable[[Mapping[str, str]], bool]]] = {}


def volume_fits_node(pv: PersistentVolume, labels: Mapping[str, str]) -> bool:
    """The PV's required node affinity against the node's labels (``CheckNodeAffinity``:
    terms ORed, a term's expressions ANDed; fields never match a PV's affinity)."""
    affinity = pv.spec.node_affinity
    if affinity is None or affinity.required is None:
        return True
    required = affinity.required
    # PV structs are immutable and replaced on every watch event: compile once per object.
    cached = _AFFINITY_CACHE.get(id(required))
    if cached is None or cached[0] is not required:
        if len(_AFFINITY_CACHE) > 4096:
            _AFFINITY_CACHE.clear()
        cached = (required, compile_label_terms(required))
        _AFFINITY_CACHE[id(required)] = cached
    return cached[1](labels)


def topology_allows(terms: Sequence[TopologyTerm], labels: Mapping[str, str]) -> bool:
    """A StorageClass's ``allowedTopologies`` against a node's labels
    (``MatchTopologySelectorTerms``): no terms allow every node; terms are ORed, a
    term's expressions ANDed, each an ``In`` of its values."""
    if not terms:
        return True
    for term in terms:
        expressions = term.match_label_expressions
        # An empty term selects nothing.
        if expressions and all(labels.get(e.key) in e.values for e in expressions):
            return True
    return False
