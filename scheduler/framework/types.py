"""What plugins see: a pod's precomputed facts and a node's bookkeeping.

Both are built once and reused: ``PodInfo`` when a pod enters the scheduler
(its requests and signature never change, pod specs are immutable where it
matters), ``NodeInfo`` by the cluster cache, updated in place on watch events
and on our own assumptions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar, Protocol

from scheduler.model.objects import Node, Pod

ResourceList = dict[str, int]
"""Amounts in scheduler units (cpu in millicores, the rest in base units)."""


@dataclass(slots=True, eq=False)
class PodInfo:
    pod: Pod
    requests: ResourceList
    """Effective requests as kube-scheduler's NodeResourcesFit counts them
    (max of init containers incl. sidecars vs. containers + sidecars, plus overhead,
    or pod-level resources when set). Zero amounts are omitted."""
    non_zero_requests: ResourceList
    """cpu and memory with kube-scheduler's defaults for containers that request
    nothing (100m, 200Mi); used by scores only."""
    host_ports: frozenset[tuple[str, str, int]] = frozenset()
    """(host IP, protocol, port) of every container and init container with a hostPort."""
    signature: bytes | None = None
    """Hash of every field filters and scores read; None when the pod must not be batched."""
    node_affinity: Callable[[Node], bool] | None = None
    """nodeSelector and required node affinity compiled once per pod (NodeAffinity filter);
    None until built, by ``make_pod_info`` or lazily by the plugin."""
    node_preference: Callable[[Node], int] | None = None
    """Preferred node affinity compiled once per pod: the summed weight of the terms a
    node matches (NodeAffinity score); None until built."""

    @property
    def key(self) -> str:
        return self.pod.key

    @property
    def uid(self) -> str:
        return self.pod.metadata.uid


@dataclass(slots=True, eq=False)
class NodeInfo:
    node: Node
    allocatable: ResourceList
    """Parsed ``status.allocatable``, including ``pods``."""
    requested: ResourceList = field(default_factory=dict)
    non_zero_requested: ResourceList = field(default_factory=dict)
    pods: dict[str, PodInfo] = field(default_factory=dict)
    """uid -> pod, for every non-terminal pod on the node (assigned or assumed by us)."""
    used_ports: set[tuple[str, str, int]] = field(default_factory=set)
    generation: int = 0
    """Bumped on every change to the node or its pods; signature caches compare it."""

    @property
    def name(self) -> str:
        return self.node.metadata.name


class FilterPlugin(Protocol):
    """Decides whether a pod may run on a node."""

    name: ClassVar[str]

    def filter(self, pod: PodInfo, node: NodeInfo) -> tuple[str, ...] | None:
        """``None`` when the node passes, otherwise the reasons it does not, worded
        as kube-scheduler words them in "0/N nodes are available" messages,
        e.g. ``("Insufficient cpu",)``."""
        ...


class ScorePlugin(Protocol):
    """Ranks feasible nodes for a pod; higher is better."""

    name: ClassVar[str]
    weight: int
    scores_are_absolute: ClassVar[bool]
    """True when raw scores are 0..100 already, so a node's normalised score does not
    depend on the other nodes' (the signature cache then skips re-normalising them)."""

    def score(self, pod: PodInfo, node: NodeInfo) -> int:
        """A raw score for one node (before normalisation)."""
        ...

    def normalize(self, scores: list[int]) -> None:
        """Rewrites raw scores in place to the 0..100 range (may be a no-op)."""
        ...


MAX_NODE_SCORE = 100
