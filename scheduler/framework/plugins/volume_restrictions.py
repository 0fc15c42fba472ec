"""VolumeRestrictions: volumes a pod may not share with pods already placed, as upstream's
``volumerestrictions`` plugin decides.

* A ``ReadWriteOncePod`` claim in use by any pod (on any node, bound or assumed by us)::

      node has pod using PersistentVolumeClaim with the same name and ReadWriteOncePod access mode

  rejects every node (preemption may help: evicting the pod that uses it).
* The same inline disk on the node (``node(s) had no available disk``): a GCE PD unless
  every mount is read-only, an AWS EBS volume ID at all, an iSCSI IQN or an RBD image
  (overlapping monitors, same pool and image) unless every mount is read-only.

Every ``persistentVolumeClaim`` the pod names must exist (``persistentvolumeclaim "data"
not found``), as upstream's PreFilter checks before VolumeBinding's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Final

from scheduler.framework.types import ClusterView, NodeInfo, PodInfo, Unresolvable
from scheduler.framework.volumes import VolumeView, volume_source
from scheduler.model.objects import Pod
from scheduler.model.volumes import READ_WRITE_ONCE_POD

DISK_CONFLICT: Final = "node(s) had no available disk"
RWOP_CONFLICT: Final = (
    "node has pod using PersistentVolumeClaim with the same name and ReadWriteOncePod access mode"
)
DISK_KINDS: Final = ("gcePersistentDisk", "awsElasticBlockStore", "iscsi", "rbd")


def _read_only(source: Mapping[str, Any]) -> bool:
    return bool(source.get("readOnly", False))


def disks_conflict(volume: Mapping[str, Any], existing: Mapping[str, Any]) -> bool:
    """Whether two inline volumes are the same disk mounted in a way that may not be shared
    (upstream's ``isVolumeConflict``)."""
    for kind in DISK_KINDS:
        mine, theirs = volume_source(volume, kind), volume_source(existing, kind)
        if mine is None or theirs is None:
            continue
        both_read_only = _read_only(mine) and _read_only(theirs)
        if kind == "gcePersistentDisk":
            if mine.get("pdName") == theirs.get("pdName") and not both_read_only:
                return True
        elif kind == "awsElasticBlockStore":
            if mine.get("volumeID") == theirs.get("volumeID"):
                return True
        elif kind == "iscsi":
            if mine.get("iqn") == theirs.get("iqn") and not both_read_only:
                return True
        elif (
            set(mine.get("monitors", ())) & set(theirs.get("monitors", ()))
            and mine.get("pool", "rbd") == theirs.get("pool", "rbd")
            and mine.get("image") == theirs.get("image")
            and not both_read_only
        ):
            return True
    return False


def _claims_used(pod: Pod) -> set[str]:
    return {
        str(v["persistentVolumeClaim"].get("claimName", ""))
        for v in pod.spec.volumes
        if isinstance(v.get("persistentVolumeClaim"), dict)
    }


def _users(node: NodeInfo, namespace: str, claims: set[str]) -> int:
    count = 0
    for other in node.pods.values():
        if other.pod.metadata.namespace == namespace:
            count += len(_claims_used(other.pod) & claims)
    return count


@dataclass(slots=True)
class _Check:
    disks: Sequence[Mapping[str, Any]]
    """The pod's inline disks that may conflict."""
    claims: set[str]
    """The pod's ReadWriteOncePod claims."""
    users: int
    """Pods (times claims) using them anywhere when the cycle began."""
    users_by_node: dict[str, int]
    name: ClassVar[str] = "VolumeRestrictions"

    def filter(self, pod: PodInfo, node: NodeInfo) -> tuple[str, ...] | None:
        if self.disks:
            for existing in node.pods.values():
                for theirs in existing.pod.spec.volumes:
                    if any(disks_conflict(mine, theirs) for mine in self.disks):
                        return (DISK_CONFLICT,)
        if self.users:
            # Pods counted on this node are counted again as the node stands now, so a
            # preemption dry run that removed them sees the claim free (upstream's RemovePod).
            here = _users(node, pod.pod.metadata.namespace, self.claims)
            if self.users - self.users_by_node.get(node.name, 0) + here > 0:
                return (RWOP_CONFLICT,)
        return None


class VolumeRestrictions:
    name: ClassVar[str] = "VolumeRestrictions"

    def __init__(self, store: VolumeView) -> None:
        self.store = store

    def pre_filter(self, pod: PodInfo, cluster: ClusterView) -> _Check | Unresolvable | None:
        if pod.signature is not None:
            return None
        spec = pod.pod.spec
        disks = [v for v in spec.volumes if any(k in v for k in DISK_KINDS)]
        namespace = pod.pod.metadata.namespace
        rwop: set[str] = set()
        for name in sorted(_claims_used(pod.pod)):
            claim = self.store.claim(namespace, name)
            if claim is None:
                return Unresolvable(self.name, f'persistentvolumeclaim "{name}" not found')
            if READ_WRITE_ONCE_POD in claim.spec.access_modes:
                rwop.add(name)
        users_by_node: dict[str, int] = {}
        if rwop:
            for node in cluster.nodes():
                count = _users(node, namespace, rwop)
                if count:
                    users_by_node[node.name] = count
        users = sum(users_by_node.values())
        if not disks and not users:
            return None
        return _Check(disks, rwop, users, users_by_node)
