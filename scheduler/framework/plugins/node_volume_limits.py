"""NodeVolumeLimits: a node attaches at most so many volumes of each CSI driver, as
upstream's ``nodevolumelimits`` (CSILimits) plugin decides::

    0/3 nodes are available: 3 node(s) exceed max volume count.

The limit is the node's CSINode ``spec.drivers[].allocatable.count`` (or the older
``attachable-volumes-csi-<driver>`` allocatable on the Node); a node that states none is
not limited. Counted are the distinct volumes (driver and handle) of the pods on the node
and the new pod's that are not there already: claims bound to a CSI PV, and unbound
claims through their StorageClass's provisioner (each claim its own volume). In-tree
volumes (inline or PVs of ``awsElasticBlockStore``, ``gcePersistentDisk``, ``azureDisk``,
``cinder``) count under their CSI driver when the CSINode lists the plugin as migrated
(``storage.alpha.kubernetes.io/migrated-plugins``), as upstream's translation does.
Inline ``csi`` volumes are not counted (upstream does not count them either).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Final

from scheduler.framework.types import ClusterView, NodeInfo, PodInfo
from scheduler.framework.volumes import VolumeView, claim_volumes, not_for_pod, volume_source
from scheduler.model.objects import Pod
from scheduler.model.volumes import CSINode

MAX_VOLUME_COUNT: Final = "node(s) exceed max volume count"
MIGRATED_PLUGINS: Final = "storage.alpha.kubernetes.io/migrated-plugins"
ALLOCATABLE_PREFIX: Final = "attachable-volumes-csi-"

IN_TREE: Final = {
    # volume source -> (in-tree plugin, CSI driver, the field that names the disk)
    "awsElasticBlockStore": ("kubernetes.io/aws-ebs", "ebs.csi.aws.com", "volumeID"),
    "gcePersistentDisk": ("kubernetes.io/gce-pd", "pd.csi.storage.gke.io", "pdName"),
    "azureDisk": ("kubernetes.io/azure-disk", "disk.csi.azure.com", "diskURI"),
    "cinder": ("kubernetes.io/cinder", "cinder.csi.openstack.org", "volumeID"),
}
_BY_PLUGIN: Final = {plugin: driver for plugin, driver, _ in IN_TREE.values()}


def _migrated(csi_node: CSINode | None) -> frozenset[str]:
    if csi_node is None:
        return frozenset()
    text = csi_node.metadata.annotations.get(MIGRATED_PLUGINS, "")
    return frozenset(p.strip() for p in text.split(",") if p.strip())


def _in_tree(source: Mapping[str, Any], migrated: frozenset[str]) -> tuple[str, str] | None:
    """(driver, handle) of an in-tree volume source migrated to CSI on the node."""
    for kind, (plugin, driver, field) in IN_TREE.items():
        inner = volume_source(source, kind)
        if inner is not None:
            if plugin not in migrated or not inner.get(field):
                return None
            return driver, str(inner[field])
    return None


def attachable(pod: Pod, store: VolumeView, migrated: frozenset[str], out: dict[str, str]) -> None:
    """Add the pod's attachable volumes to ``out``: unique name -> driver."""
    namespace = pod.metadata.namespace
    for volume in pod.spec.volumes:
        if "persistentVolumeClaim" in volume or "ephemeral" in volume:
            continue
        found = _in_tree(volume, migrated)
        if found is not None:
            out[f"{found[0]}/{found[1]}"] = found[0]
    for cv in claim_volumes(pod):
        claim = store.claim(namespace, cv.claim)
        if claim is None or (cv.ephemeral and not_for_pod(pod, claim) is not None):
            continue
        driver = handle = ""
        pv = store.volume(claim.spec.volume_name) if claim.spec.volume_name else None
        if pv is not None:
            csi = pv.spec.csi
            if csi is not None:
                driver, handle = csi.driver, csi.volume_handle
            else:
                found = _in_tree(pv.spec.in_tree_sources(), migrated)
                if found is not None:
                    driver, handle = found
        elif claim.class_name:
            storage_class = store.storage_class(claim.class_name)
            if storage_class is not None:
                provisioner = storage_class.provisioner
                if provisioner in _BY_PLUGIN:
                    driver = _BY_PLUGIN[provisioner] if provisioner in migrated else ""
                else:
                    driver = provisioner
                handle = f"claim:{namespace}/{cv.claim}"
        if driver and handle:
            out[f"{driver}/{handle}"] = driver


def limits(node: NodeInfo, csi_node: CSINode | None) -> dict[str, int]:
    found = {
        name[len(ALLOCATABLE_PREFIX) :]: amount
        for name, amount in node.allocatable.items()
        if name.startswith(ALLOCATABLE_PREFIX)
    }
    if csi_node is not None:
        found.update(csi_node.limits())
    return found


@dataclass(slots=True)
class _Check:
    store: VolumeView
    name: ClassVar[str] = "NodeVolumeLimits"

    def filter(self, pod: PodInfo, node: NodeInfo) -> tuple[str, ...] | None:
        csi_node = self.store.csi_node(node.name)
        node_limits = limits(node, csi_node)
        if not node_limits:
            return None
        migrated = _migrated(csi_node)
        new: dict[str, str] = {}
        attachable(pod.pod, self.store, migrated, new)
        if not new:
            return None
        attached: dict[str, str] = {}
        for other in node.pods.values():
            if other.pod.spec.volumes:
                attachable(other.pod, self.store, migrated, attached)
        counts: dict[str, int] = {}
        for unique, driver in attached.items():
            new.pop(unique, None)  # a volume shared with a pod there counts once
            counts[driver] = counts.get(driver, 0) + 1
        adding: dict[str, int] = {}
        for driver in new.values():
            adding[driver] = adding.get(driver, 0) + 1
        for driver, count in adding.items():
            limit = node_limits.get(driver)
            if limit is not None and counts.get(driver, 0) + count > limit:
                return (MAX_VOLUME_COUNT,)
        return None


class NodeVolumeLimits:
    name: ClassVar[str] = "NodeVolumeLimits"

    def __init__(self, store: VolumeView) -> None:
        self.store = store

    def pre_filter(self, pod: PodInfo, cluster: ClusterView) -> _Check | None:
        if pod.signature is not None:
            return None
        for volume in pod.pod.spec.volumes:
            if (
                "persistentVolumeClaim" in volume
                or "ephemeral" in volume
                or any(kind in volume for kind in IN_TREE)
            ):
                return _Check(self.store)
        return None
