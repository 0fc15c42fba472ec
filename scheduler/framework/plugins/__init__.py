"""The default plugins (pre-enqueue, pre-filter, filter, pre-score, score), in
kube-scheduler's order and weights."""

from __future__ import annotations

from collections.abc import Callable

from scheduler.framework.plugins.balanced_allocation import NodeResourcesBalancedAllocation
from scheduler.framework.plugins.image_locality import ImageLocality
from scheduler.framework.plugins.inter_pod_affinity import InterPodAffinity
from scheduler.framework.plugins.node_affinity import NodeAffinity
from scheduler.framework.plugins.node_name import NodeName
from scheduler.framework.plugins.node_ports import NodePorts
from scheduler.framework.plugins.node_resources_fit import NodeResourcesFit, Strategy
from scheduler.framework.plugins.node_unschedulable import NodeUnschedulable
from scheduler.framework.plugins.node_volume_limits import NodeVolumeLimits
from scheduler.framework.plugins.pod_topology_spread import PodTopologySpread, SpreadDefaults
from scheduler.framework.plugins.scheduling_gates import SchedulingGates
from scheduler.framework.plugins.taint_toleration import TaintToleration
from scheduler.framework.plugins.unsupported import UnsupportedFeatures
from scheduler.framework.plugins.volume_binding import VolumeBinding
from scheduler.framework.plugins.volume_restrictions import VolumeRestrictions
from scheduler.framework.plugins.volume_zone import VolumeZone
from scheduler.framework.types import (
    ClusterView,
    FilterPlugin,
    PreEnqueuePlugin,
    PreFilterPlugin,
    PreScorePlugin,
    ScorePlugin,
)
from scheduler.framework.volumes import VolumeView

__all__ = [
    "ImageLocality",
    "InterPodAffinity",
    "NodeAffinity",
    "NodeName",
    "NodePorts",
    "NodeResourcesBalancedAllocation",
    "NodeResourcesFit",
    "NodeUnschedulable",
    "NodeVolumeLimits",
    "PodTopologySpread",
    "SchedulingGates",
    "SpreadDefaults",
    "Strategy",
    "TaintToleration",
    "UnsupportedFeatures",
    "VolumeBinding",
    "VolumeRestrictions",
    "VolumeZone",
    "default_filters",
    "default_pre_enqueue",
    "default_pre_filters",
    "default_pre_scores",
    "default_scores",
]


def default_pre_enqueue() -> list[PreEnqueuePlugin]:
    return [SchedulingGates()]


def default_filters() -> list[FilterPlugin]:
    # Cheapest and most selective first, as upstream orders them; a node is dropped
    # at the first plugin that rejects it.
    return [
        NodeUnschedulable(),
        NodeName(),
        TaintToleration(),
        NodeAffinity(),
        NodePorts(),
        NodeResourcesFit(),
    ]


def default_scores(
    strategy: Strategy = "LeastAllocated", cluster: ClusterView | None = None
) -> list[ScorePlugin]:
    # PodTopologySpread (2) and InterPodAffinity (2) score through pre-scores.
    return [
        TaintToleration(weight=3),
        NodeAffinity(weight=2),
        NodeResourcesFit(strategy, weight=1),
        NodeResourcesBalancedAllocation(weight=1),
        ImageLocality(weight=1, cluster=cluster),
    ]


def default_pre_filters(
    spread: SpreadDefaults | None = None,
    volumes: VolumeView | None = None,
    gang_member: Callable[[str], bool] | None = None,
) -> list[PreFilterPlugin]:
    # The refusal first: nothing else need run for a pod we will not place. The filters
    # the others return run after the per-node ones, in upstream's order. Without a
    # volume view (unit tests, tools) the volume plugins are left out.
    storage: list[PreFilterPlugin] = []
    if volumes is not None:
        storage = [
            VolumeRestrictions(volumes),
            NodeVolumeLimits(volumes),
            VolumeBinding(volumes, gang_member),
            VolumeZone(volumes),
        ]
    return [
        UnsupportedFeatures(volumes is not None),
        *storage,
        PodTopologySpread(defaults=spread),
        InterPodAffinity(),
    ]


def default_pre_scores(spread: SpreadDefaults | None = None) -> list[PreScorePlugin]:
    return [PodTopologySpread(weight=2, defaults=spread), InterPodAffinity(weight=2)]
