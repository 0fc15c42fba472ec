"""VolumeBinding: a pod's PersistentVolumeClaims (and generic ephemeral volumes) must be
bound, or bindable, at the node, as upstream's ``volumebinding`` plugin decides.

Pre-filter (for every node at once, upstream's ``UnschedulableAndUnresolvable``)::

    persistentvolumeclaim "data" not found
    waiting for ephemeral volume controller to create the persistentvolumeclaim "web-0-tmp"
    persistentvolumeclaim "data" bound to non-existent persistentvolume "pv-1"
    persistentvolumeclaim "data" is being deleted
    PVC default/web-0-tmp was not created for pod default/web-0 (pod is not owner)
    pod has unbound immediate PersistentVolumeClaims

Filter, per node (upstream's ``FindPodVolumes``):

* a bound claim's PV must exist and its node affinity match the node:
  ``node(s) unavailable due to one or more pvc(s) bound to non-existent pv(s)`` /
  ``node(s) didn't match PersistentVolume's node affinity``;
* an unbound ``WaitForFirstConsumer`` claim needs an available PV (the smallest that
  fits: capacity, volume mode, access modes, class, selector, node affinity; claims in
  increasing size, each PV chosen once) or a class that provisions (not
  ``kubernetes.io/no-provisioner``) and allows the node's topology; a claim already
  provisioned for another node (``volume.kubernetes.io/selected-node``) rules this one
  out: ``node(s) didn't find available persistent volumes to bind``.

Once the node is chosen, ``reserve`` assumes the bindings (``VolumeStore``) and returns
what the PreBind step (``scheduler.core.volume_binding``) writes before the pod is bound.

A claim to provision whose CSI driver publishes storage capacity (CSIDriver
``storageCapacity: true``) needs a CSIStorageCapacity of its class, reachable from the node,
large enough: ``node(s) did not have enough free storage``.

Every node is filtered: v1.35 has no PreFilterResult for PVs bound to hosts (an earlier
release narrowed the nodes to those and worded the others ``node(s) didn't satisfy
plugin(s) [VolumeBinding]``; v1.35 reads ``node(s) didn't match PersistentVolume's node
affinity`` for them, as here; the e2e test compares it side by side).

Not done here: the Score extension (upstream scores only with the alpha
``StorageCapacityScoring`` / ``VolumeCapacityPriority`` gate, off by default).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from typing import ClassVar, Final

import msgspec
import structlog

from scheduler.framework.labels import SelectorError, compile_selector
from scheduler.framework.types import ClusterView, NodeInfo, PodInfo, Unresolvable
from scheduler.framework.volumes import (
    VolumeView,
    claim_volumes,
    not_for_pod,
    topology_allows,
    volume_fits_node,
)
from scheduler.model.objects import Pod
from scheduler.model.quantity import parse_quantity
from scheduler.model.volumes import (
    ANN_BOUND_BY_CONTROLLER,
    ANN_SELECTED_NODE,
    CLAIM_LOST,
    NO_PROVISIONER,
    VOLUME_AVAILABLE,
    WAIT_FOR_FIRST_CONSUMER,
    ClaimRef,
    PersistentVolume,
    PersistentVolumeClaim,
)

log = structlog.get_logger(__name__)

NODE_CONFLICT: Final = "node(s) didn't match PersistentVolume's node affinity"
BIND_CONFLICT: Final = "node(s) didn't find available persistent volumes to bind"
NOT_ENOUGH_SPACE: Final = "node(s) did not have enough free storage"
PV_NOT_EXIST: Final = "node(s) unavailable due to one or more pvc(s) bound to non-existent pv(s)"
UNBOUND_IMMEDIATE: Final = "pod has unbound immediate PersistentVolumeClaims"
GANG_UNSUPPORTED: Final = (
    "workload-scheduler does not support gang members with unbound WaitForFirstConsumer "
    "PersistentVolumeClaims yet"
)


@dataclass(slots=True)
class PodClaims:
    """A pod's claims, sorted as upstream's ``GetPodVolumeClaims`` sorts them."""

    bound: list[PersistentVolumeClaim] = field(default_factory=list)
    delayed: list[PersistentVolumeClaim] = field(default_factory=list)
    """Unbound, of a ``WaitForFirstConsumer`` class, no volume named: bound at the node."""
    immediate: list[PersistentVolumeClaim] = field(default_factory=list)
    """Unbound otherwise: the PV controller binds them; the pod waits."""


@dataclass(slots=True)
class PodVolumes:
    """What binding the pod's claims at one node takes (upstream's ``PodVolumes``)."""

    static: list[tuple[PersistentVolume, PersistentVolumeClaim]] = field(default_factory=list)
    """(PV with the claim reference set, claim) pairs to write."""
    provision: list[PersistentVolumeClaim] = field(default_factory=list)
    """Claims with the selected-node annotation set, to write."""

    @property
    def empty(self) -> bool:
        return not self.static and not self.provision


def pod_claims(pod: Pod, store: VolumeView) -> PodClaims | str:
    """The pod's claims sorted for binding, or why the pod cannot be placed anywhere."""
    namespace = pod.metadata.namespace
    claims: list[PersistentVolumeClaim] = []
    for cv in claim_volumes(pod):
        claim = store.claim(namespace, cv.claim)
        if claim is None:
            if cv.ephemeral:
                return (
                    "waiting for ephemeral volume controller to create the "
                    f'persistentvolumeclaim "{cv.claim}"'
                )
            return f'persistentvolumeclaim "{cv.claim}" not found'
        if claim.status.phase == CLAIM_LOST:
            return (
                f'persistentvolumeclaim "{cv.claim}" bound to non-existent persistentvolume '
                f'"{claim.spec.volume_name}"'
            )
        if claim.metadata.deletion_timestamp is not None:
            return f'persistentvolumeclaim "{cv.claim}" is being deleted'
        if cv.ephemeral:
            wrong = not_for_pod(pod, claim)
            if wrong is not None:
                return wrong
        claims.append(claim)
    sorted_claims = PodClaims()
    for claim in claims:
        if claim.fully_bound:
            sorted_claims.bound.append(claim)
            continue
        storage_class = store.storage_class(claim.class_name) if claim.class_name else None
        delayed = (
            storage_class is not None
            and storage_class.volume_binding_mode == WAIT_FOR_FIRST_CONSUMER
            and not claim.spec.volume_name
        )
        (sorted_claims.delayed if delayed else sorted_claims.immediate).append(claim)
    return sorted_claims


def _storage(amounts: dict[str, str | int | float]) -> Fraction:
    value = amounts.get("storage")
    if value is None:
        return Fraction(0)
    try:
        return parse_quantity(value)
    except ValueError:
        return Fraction(0)


def _claim_size(claim: PersistentVolumeClaim) -> Fraction:
    return _storage(claim.spec.resources.requests)


def matching_volume(
    claim: PersistentVolumeClaim,
    volumes: list[PersistentVolume] | tuple[PersistentVolume, ...],
    labels: dict[str, str],
    chosen: set[str],
) -> PersistentVolume | None:
    """The PV for ``claim`` at a node with ``labels`` (``FindMatchingVolume``, scheduler
    path): one pre-bound to the claim if any (None if its affinity misses the node),
    else the smallest available one that fits."""
    wanted = _claim_size(claim)
    wanted_mode = claim.spec.volume_mode or "Filesystem"
    try:
        selector = compile_selector(claim.spec.selector) if claim.spec.selector else None
    except SelectorError:
        return None
    wanted_class = claim.class_name
    best: PersistentVolume | None = None
    best_size = Fraction(0)
    for pv in volumes:
        name = pv.metadata.name
        if name in chosen:
            continue
        bound_here = pv.bound_to(claim)
        if pv.spec.claim_ref is not None and not bound_here:
            continue
        size = _storage(pv.spec.capacity)
        if size < wanted or (pv.spec.volume_mode or "Filesystem") != wanted_mode:
            continue
        if pv.metadata.deletion_timestamp is not None:
            continue
        fits = volume_fits_node(pv, labels)
        if bound_here:
            return pv if fits else None
        if pv.status.phase != VOLUME_AVAILABLE:
            continue
        if selector is not None and not selector.matches(pv.metadata.labels):
            continue
        if pv.class_name != wanted_class or not fits:
            continue
        if not set(claim.spec.access_modes) <= set(pv.spec.access_modes):
            continue
        if best is None or size < best_size:
            best, best_size = pv, size
    return best


def find_pod_volumes(
    claims: PodClaims, node: NodeInfo, store: VolumeView
) -> tuple[PodVolumes, tuple[str, ...]]:
    """What binding the pod's claims at ``node`` takes, and the reasons it cannot (in
    upstream's order); the claims are not yet assumed."""
    labels = node.node.metadata.labels
    out = PodVolumes()
    bound_ok = True
    for claim in claims.bound:
        pv = store.volume(claim.spec.volume_name)
        if pv is None:
            return out, (PV_NOT_EXIST,)
        if not volume_fits_node(pv, labels):
            bound_ok = False
            break
    unbound_ok = True
    to_provision: list[PersistentVolumeClaim] = []
    to_match: list[PersistentVolumeClaim] = []
    for claim in claims.delayed:
        selected = claim.metadata.annotations.get(ANN_SELECTED_NODE)
        if selected is None:
            to_match.append(claim)
        elif selected != node.name:
            unbound_ok = False  # provisioned (or being provisioned) for another node
            break
        else:
            to_provision.append(claim)
    if unbound_ok and to_match:
        chosen: set[str] = set()
        for claim in sorted(to_match, key=_claim_size):
            pv = matching_volume(
                claim, list(store.volumes_of_class(claim.class_name)), labels, chosen
            )
            if pv is None:
                to_provision.append(claim)
                continue
            chosen.add(pv.metadata.name)
            out.static.append((pv, claim))
    enough_space = True
    if unbound_ok and to_provision:
        for claim in to_provision:
            storage_class = store.storage_class(claim.class_name)
            if (
                storage_class is None
                or storage_class.provisioner in ("", NO_PROVISIONER)
                or not topology_allows(storage_class.allowed_topologies, labels)
            ):
                unbound_ok = False
                break
            if not has_capacity(
                claim, storage_class.metadata.name, storage_class.provisioner, labels, store
            ):
                enough_space = False
                break
            out.provision.append(claim)
    reasons: list[str] = []
    if not bound_ok:
        reasons.append(NODE_CONFLICT)
    if not unbound_ok:
        reasons.append(BIND_CONFLICT)
    if not enough_space:
        reasons.append(NOT_ENOUGH_SPACE)
    return out, tuple(reasons)


def has_capacity(
    claim: PersistentVolumeClaim,
    class_name: str,
    provisioner: str,
    labels: dict[str, str],
    store: VolumeView,
) -> bool:
    """Whether the provisioner can still make the claim's volume reachable from a node with
    ``labels`` (upstream's ``hasEnoughCapacity``): checked only for a CSI driver that opts
    in (CSIDriver ``storageCapacity: true``), against its CSIStorageCapacity objects for the
    class whose node topology selects the node (``maximumVolumeSize`` preferred over
    ``capacity``)."""
    if "storage" not in claim.spec.resources.requests:
        return True
    driver = store.csi_driver(provisioner)
    if driver is None or not driver.spec.storage_capacity:
        return True
    wanted = _claim_size(claim)
    for capacity in store.capacities():
        if capacity.storage_class_name != class_name or capacity.node_topology is None:
            continue
        limit = (
            capacity.maximum_volume_size
            if capacity.maximum_volume_size is not None
            else capacity.capacity
        )
        if limit is None or _storage({"storage": limit}) < wanted:
            continue
        try:
            if compile_selector(capacity.node_topology).matches(labels):
                return True
        except SelectorError:
            continue
    return False


@dataclass(slots=True)
class _NodeCheck:
    """The filter for one pod, holding its sorted claims (upstream's cycle state)."""

    store: VolumeView
    claims: PodClaims
    name: ClassVar[str] = "VolumeBinding"

    def filter(self, pod: PodInfo, node: NodeInfo) -> tuple[str, ...] | None:
        _, reasons = find_pod_volumes(self.claims, node, self.store)
        return reasons or None


class VolumeBinding:
    name: ClassVar[str] = "VolumeBinding"

    def __init__(self, store: VolumeView, gang_member: Callable[[str], bool] | None = None) -> None:
        self.store = store
        self.gang_member = gang_member or (lambda uid: False)
        """Whether a pod (by UID) belongs to a gang: the gang pass has no PreBind step."""

    def pre_filter(self, pod: PodInfo, cluster: ClusterView) -> _NodeCheck | Unresolvable | None:
        if pod.signature is not None:
            return None  # batchable pods have no claim volumes
        claims = pod_claims(pod.pod, self.store)
        if isinstance(claims, str):
            return Unresolvable(self.name, claims)
        if not claims.bound and not claims.delayed and not claims.immediate:
            return None
        if claims.immediate:
            return Unresolvable(self.name, UNBOUND_IMMEDIATE)
        if claims.delayed and self.gang_member(pod.uid):
            return Unresolvable(self.name, GANG_UNSUPPORTED)
        return _NodeCheck(self.store, claims)

    def reserve(self, pod: PodInfo, node: NodeInfo) -> PodVolumes | None:
        """Assume the bindings of the pod's unbound claims at ``node`` (chosen for it just
        now); None when there is nothing to bind (all bound, or no claims)."""
        if pod.signature is not None:
            return None
        claims = pod_claims(pod.pod, self.store)
        if isinstance(claims, str) or not claims.delayed:
            return None
        found, reasons = find_pod_volumes(claims, node, self.store)
        if reasons:  # cannot happen right after the filter passed; keep it safe
            log.warning("volumes no longer fit the chosen node", pod=pod.key, node=node.name)
            return None
        assumed = PodVolumes()
        for pv, claim in found.static:
            assumed_pv = pv
            if not pv.bound_to(claim) or not pv.spec.claim_ref or not pv.spec.claim_ref.uid:
                meta = claim.metadata
                annotations = {**pv.metadata.annotations}
                if not pv.bound_to(claim):
                    annotations.setdefault(ANN_BOUND_BY_CONTROLLER, "yes")
                assumed_pv = msgspec.structs.replace(
                    pv,
                    metadata=msgspec.structs.replace(pv.metadata, annotations=annotations),
                    spec=msgspec.structs.replace(
                        pv.spec,
                        claim_ref=ClaimRef(namespace=meta.namespace, name=meta.name, uid=meta.uid),
                    ),
                )
                self.store.assume_volume(assumed_pv)
            assumed.static.append((assumed_pv, claim))
        for claim in found.provision:
            annotated = msgspec.structs.replace(
                claim,
                metadata=msgspec.structs.replace(
                    claim.metadata,
                    annotations={**claim.metadata.annotations, ANN_SELECTED_NODE: node.name},
                ),
            )
            self.store.assume_claim(annotated)
            assumed.provision.append(annotated)
        return assumed
