"""UnsupportedFeatures: refuse, out loud, a pod whose placement depends on something this
scheduler does not implement yet.

Placing such a pod as if the constraint were not there would break it silently, so the
pod is rejected for every node at once (a pre-filter verdict, as upstream's
``UnschedulableAndUnresolvable``), with a message that says why::

    0/3 nodes are available: workload-scheduler does not support resource claims (DRA) yet.

    0/3 nodes are available: workload-scheduler does not support pod field
    spec.affinity.nodeAffinity.foo yet.

What remains: resource claims (DRA) and pod fields we do not know. Volumes are placed by
the volume plugins (VolumeRestrictions, NodeVolumeLimits, VolumeBinding, VolumeZone) when
the scheduler watches the storage objects (``volumes_supported``); a profile built without
them (unit tests, tools) still refuses pods with claim and attachable inline volumes.

The pod stays Pending and is retried on the usual cluster events; nothing but a new
version of the scheduler changes the verdict. kube-scheduler has no such plugin: it
implements all of these.
"""

from __future__ import annotations

from typing import ClassVar, Final

from scheduler.framework.types import ClusterView, PodInfo, Unresolvable
from scheduler.model.objects import Pod

INLINE_VOLUMES_WITH_CONSTRAINTS: Final = (
    "awsElasticBlockStore",
    "azureDisk",
    "cinder",
    "csi",
    "gcePersistentDisk",
    "iscsi",
    "rbd",
)
"""Inline volume kinds that upstream's VolumeRestrictions (conflicting disks) or
NodeVolumeLimits (attach limits) check."""


def unsupported_features(pod: Pod, volumes_supported: bool = False) -> list[str]:
    """The placement features ``pod`` uses that we do not implement, named for users."""
    spec = pod.spec
    found: list[str] = []
    volumes = [] if volumes_supported else spec.volumes
    if any("persistentVolumeClaim" in volume for volume in volumes):
        found.append("PersistentVolumeClaim volumes")
    if any("ephemeral" in volume for volume in volumes):
        found.append("ephemeral volumes")
    for kind in INLINE_VOLUMES_WITH_CONSTRAINTS:
        if any(kind in volume for volume in volumes):
            found.append(f"inline {kind} volumes")
    if spec.resource_claims:
        found.append("resource claims (DRA)")
    return found


def unknown_fields(pod: Pod) -> list[str]:
    """A field of the pod we do not know where placement may read it, named for users
    (``pod field spec.affinity.nodeAffinity.foo``): a newer Kubernetes may have added a
    constraint we would otherwise ignore (``scheduler.model.pod_fields``)."""
    return [f"pod field {pod.unknown_field}"] if pod.unknown_field else []


def refusal(features: list[str]) -> str:
    """``workload-scheduler does not support resource claims (DRA) yet``"""
    return f"workload-scheduler does not support {', '.join(features)} yet"


class UnsupportedFeatures:
    name: ClassVar[str] = "UnsupportedFeatures"
    __slots__ = ("volumes_supported",)

    def __init__(self, volumes_supported: bool = False) -> None:
        self.volumes_supported = volumes_supported

    def pre_filter(self, pod: PodInfo, cluster: ClusterView) -> Unresolvable | None:
        unknown = unknown_fields(pod.pod)
        if unknown:
            return Unresolvable(self.name, refusal([*unknown, *unsupported_features(pod.pod)]))
        if pod.signature is not None:
            # A batchable pod (signature.batchable) uses none of these: the common case
            # costs nothing.
            return None
        features = unsupported_features(pod.pod, self.volumes_supported)
        if not features:
            return None
        return Unresolvable(self.name, refusal(features))
