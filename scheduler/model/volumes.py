"""Storage objects as small msgspec structs: PersistentVolumeClaims, PersistentVolumes,
StorageClasses and CSINodes, with only what the volume plugins read.

Decoded straight from the watch's raw JSON, as the other objects in ``objects.py``.
The PV's volume source is kept only as the CSI driver and handle (NodeVolumeLimits);
everything else about where the data lives stays out.
"""

from __future__ import annotations

from typing import Any, Final

import msgspec

from scheduler.model.objects import LabelSelector, NodeSelector, ObjectMeta

ANN_SELECTED_NODE: Final = "volume.kubernetes.io/selected-node"
"""Set by the scheduler on a claim to be provisioned for the chosen node."""
ANN_BIND_COMPLETED: Final = "pv.kubernetes.io/bind-completed"
"""Set by the PV controller once a claim's binding is complete."""
ANN_BOUND_BY_CONTROLLER: Final = "pv.kubernetes.io/bound-by-controller"
ANN_BETA_STORAGE_CLASS: Final = "volume.beta.kubernetes.io/storage-class"
NO_PROVISIONER: Final = "kubernetes.io/no-provisioner"
"""A StorageClass provisioner that means: static volumes only."""
WAIT_FOR_FIRST_CONSUMER: Final = "WaitForFirstConsumer"
READ_WRITE_ONCE_POD: Final = "ReadWriteOncePod"
CLAIM_LOST: Final = "Lost"
VOLUME_AVAILABLE: Final = "Available"


class _Obj(msgspec.Struct, rename="camel", omit_defaults=True, kw_only=True):
    pass


class ClaimResources(_Obj):
    requests: dict[str, str | int | float] = {}


class ClaimSpec(_Obj):
    access_modes: list[str] = []
    resources: ClaimResources = msgspec.field(default_factory=ClaimResources)
    selector: LabelSelector | None = None
    storage_class_name: str | None = None
    """None: not set (the beta annotation, or no class); "" asks for no class."""
    volume_mode: str | None = None
    volume_name: str = ""


class ClaimStatus(_Obj):
    phase: str = ""


class PersistentVolumeClaim(_Obj):
    metadata: ObjectMeta = msgspec.field(default_factory=ObjectMeta)
    spec: ClaimSpec = msgspec.field(default_factory=ClaimSpec)
    status: ClaimStatus = msgspec.field(default_factory=ClaimStatus)

    @property
    def key(self) -> str:
        return f"{self.metadata.namespace}/{self.metadata.name}"

    @property
    def class_name(self) -> str:
        """The claim's StorageClass (upstream's ``GetPersistentVolumeClaimClass``): the beta
        annotation wins over the field; "" for none."""
        ann = self.metadata.annotations.get(ANN_BETA_STORAGE_CLASS)
        if ann is not None:
            return ann
        return self.spec.storage_class_name or ""

    @property
    def fully_bound(self) -> bool:
        """Bound to a volume and the PV controller's binding finished (``isPVCFullyBound``)."""
        return bool(self.spec.volume_name) and ANN_BIND_COMPLETED in self.metadata.annotations


class ClaimRef(_Obj):
    namespace: str = ""
    name: str = ""
    uid: str = ""


class VolumeNodeAffinity(_Obj):
    required: NodeSelector | None = None


class CSISource(_Obj):
    driver: str = ""
    volume_handle: str = ""


class VolumeSpec(_Obj):
    capacity: dict[str, str | int | float] = {}
    access_modes: list[str] = []
    claim_ref: ClaimRef | None = None
    storage_class_name: str = ""
    node_affinity: VolumeNodeAffinity | None = None
    volume_mode: str | None = None
    csi: CSISource | None = None
    # In-tree sources NodeVolumeLimits counts under their CSI driver once migrated.
    aws_elastic_block_store: dict[str, Any] | None = None
    gce_persistent_disk: dict[str, Any] | None = None
    azure_disk: dict[str, Any] | None = None
    cinder: dict[str, Any] | None = None

    def in_tree_sources(self) -> dict[str, dict[str, Any]]:
        """The in-tree volume sources set, by their API name."""
        found = {
            "awsElasticBlockStore": self.aws_elastic_block_store,
            "gcePersistentDisk": self.gce_persistent_disk,
            "azureDisk": self.azure_disk,
            "cinder": self.cinder,
        }
        return {k: v for k, v in found.items() if v is not None}


class VolumeStatus(_Obj):
    phase: str = ""


class PersistentVolume(_Obj):
    metadata: ObjectMeta = msgspec.field(default_factory=ObjectMeta)
    spec: VolumeSpec = msgspec.field(default_factory=VolumeSpec)
    status: VolumeStatus = msgspec.field(default_factory=VolumeStatus)

    @property
    def class_name(self) -> str:
        """``GetPersistentVolumeClass``: the beta annotation wins over the field."""
        ann = self.metadata.annotations.get(ANN_BETA_STORAGE_CLASS)
        return ann if ann is not None else self.spec.storage_class_name

    def bound_to(self, claim: PersistentVolumeClaim) -> bool:
        """Pre-bound or bound to ``claim`` (``IsVolumeBoundToClaim``): name and namespace
        equal, and the UID too when the reference carries one."""
        ref = self.spec.claim_ref
        meta = claim.metadata
        if ref is None or ref.name != meta.name or ref.namespace != meta.namespace:
            return False
        return not ref.uid or ref.uid == meta.uid


class TopologyRequirement(_Obj):
    key: str = ""
    values: list[str] = []


class TopologyTerm(_Obj):
    match_label_expressions: list[TopologyRequirement] = []


class StorageClass(_Obj):
    metadata: ObjectMeta = msgspec.field(default_factory=ObjectMeta)
    provisioner: str = ""
    volume_binding_mode: str = "Immediate"
    allowed_topologies: list[TopologyTerm] = []


class DriverAllocatable(_Obj):
    count: int | None = None


class CSINodeDriver(_Obj):
    name: str = ""
    allocatable: DriverAllocatable | None = None


class CSINodeSpec(_Obj):
    drivers: list[CSINodeDriver] = []


class CSINode(_Obj):
    metadata: ObjectMeta = msgspec.field(default_factory=ObjectMeta)
    spec: CSINodeSpec = msgspec.field(default_factory=CSINodeSpec)

    def limits(self) -> dict[str, int]:
        """Driver name -> how many of its volumes the node can attach (those that say)."""
        return {
            d.name: d.allocatable.count
            for d in self.spec.drivers
            if d.allocatable is not None and d.allocatable.count is not None
        }


class CSIDriverSpec(_Obj):
    storage_capacity: bool | None = None


class CSIDriver(_Obj):
    metadata: ObjectMeta = msgspec.field(default_factory=ObjectMeta)
    spec: CSIDriverSpec = msgspec.field(default_factory=CSIDriverSpec)


class CSIStorageCapacity(_Obj):
    """What a CSI driver says it can still provision for a class, in a node topology."""

    metadata: ObjectMeta = msgspec.field(default_factory=ObjectMeta)
    storage_class_name: str = ""
    node_topology: LabelSelector | None = None
    capacity: str | int | float | None = None
    maximum_volume_size: str | int | float | None = None

    @property
    def key(self) -> str:
        return f"{self.metadata.namespace}/{self.metadata.name}"
