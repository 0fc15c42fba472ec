"""The default filter and score plugins, in kube-scheduler's order and weights."""

from __future__ import annotations

from scheduler.framework.plugins.balanced_allocation import NodeResourcesBalancedAllocation
from scheduler.framework.plugins.node_affinity import NodeAffinity
from scheduler.framework.plugins.node_name import NodeName
from scheduler.framework.plugins.node_ports import NodePorts
from scheduler.framework.plugins.node_resources_fit import NodeResourcesFit, Strategy
from scheduler.framework.plugins.node_unschedulable import NodeUnschedulable
from scheduler.framework.plugins.scheduling_gates import SchedulingGates
from scheduler.framework.plugins.taint_toleration import TaintToleration
from scheduler.framework.types import FilterPlugin, PreEnqueuePlugin, ScorePlugin

__all__ = [
    "NodeAffinity",
    "NodeName",
    "NodePorts",
    "NodeResourcesBalancedAllocation",
    "NodeResourcesFit",
    "NodeUnschedulable",
    "SchedulingGates",
    "Strategy",
    "TaintToleration",
    "default_filters",
    "default_pre_enqueue",
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


def default_scores(strategy: Strategy = "LeastAllocated") -> list[ScorePlugin]:
    return [
        TaintToleration(weight=3),
        NodeAffinity(weight=2),
        NodeResourcesFit(strategy, weight=1),
        NodeResourcesBalancedAllocation(weight=1),
    ]
