"""What plugins see: a pod's precomputed facts and a node's bookkeeping.

Both are built once and reused: ``PodInfo`` when a pod enters the scheduler
(its requests and signature never change, pod specs are immutable where it
matters), ``NodeInfo`` by the cluster cache, updated in place on watch events
and on our own assumptions.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Protocol

from scheduler.framework.labels import Selector
from scheduler.framework.pod_affinity import PodAffinityTerms
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
    pod_affinity: PodAffinityTerms | None = None
    """Inter-pod affinity and anti-affinity terms compiled once; None when it has none."""

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
    pods_with_affinity: dict[str, PodInfo] = field(default_factory=dict)
    """The pods above that have inter-pod affinity or anti-affinity terms."""
    pods_with_required_anti_affinity: dict[str, PodInfo] = field(default_factory=dict)
    images: dict[str, int] = field(default_factory=dict)
    """Image name -> size in bytes, from ``status.images`` (ImageLocality)."""
    generation: int = 0
    """Bumped on every change to the node or its pods; signature caches compare it."""

    @property
    def name(self) -> str:
        return self.node.metadata.name


class PreEnqueuePlugin(Protocol):
    """Decides whether a pod may enter the active queue at all (it waits gated if not)."""

    name: ClassVar[str]

    def pre_enqueue(self, pod: PodInfo) -> str | None:
        """``None`` when the pod may be tried, otherwise why it waits, as its users read
        it, e.g. ``waiting for scheduling gates: example.com/quota``."""
        ...


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


class ClusterView(Protocol):
    """What plugins may read of the whole cluster beyond the node at hand (upstream's
    snapshot lister and namespace lister). ``ClusterCache`` is one."""

    def nodes(self) -> Sequence[NodeInfo]:
        """Every node, in a stable order."""
        ...

    def nodes_with_affinity_pods(self) -> Sequence[NodeInfo]:
        """Nodes running a pod with inter-pod affinity terms (``HavePodsWithAffinityList``)."""
        ...

    def nodes_with_required_anti_affinity_pods(self) -> Sequence[NodeInfo]:
        """Nodes running a pod with required anti-affinity terms."""
        ...

    def affinity_generation(self) -> int | None:
        """A number that changes whenever ``nodes_with_affinity_pods`` or
        ``nodes_with_required_anti_affinity_pods`` (the nodes, their labels, those pods)
        may have, so that what is derived from them can be kept; None when the view cannot
        tell (derive it afresh each time)."""
        ...

    def namespace_labels(self, name: str) -> Mapping[str, str] | None:
        """A namespace's labels; None when the namespace is not known."""
        ...

    def namespaces(self) -> Mapping[str, Mapping[str, str]]:
        """Every known namespace: name -> labels."""
        ...

    def service_selectors(self, namespace: str) -> Collection[Mapping[str, str]]:
        """The pod selectors of the namespace's Services (those that have one)."""
        ...

    def controller_selector(self, kind: str, namespace: str, name: str) -> Selector | None:
        """The pod selector of a ReplicaSet, StatefulSet or ReplicationController (``kind``);
        None when it is not known."""
        ...

    def image_spread(self, image: str) -> float:
        """The share of nodes that hold ``image`` (upstream's ImageStateSummary.NumNodes over
        the number of nodes)."""
        ...


@dataclass(frozen=True, slots=True)
class Unresolvable:
    """A pre-filter's verdict for every node at once: the pod cannot go anywhere, and
    checking nodes one by one would not change that (upstream's
    ``UnschedulableAndUnresolvable`` from PreFilter)."""

    plugin: str
    message: str


class PreFilterPlugin(Protocol):
    """Looks at a pod once per scheduling attempt, before any node is filtered.

    ``pre_filter`` returns ``None`` when the plugin has nothing to check for this pod
    (upstream's ``Skip``), an ``Unresolvable`` to reject the pod for every node, or a
    ``FilterPlugin`` holding the state it computed (upstream's CycleState entry) that
    then runs on each node after the profile's own filters.
    """

    name: ClassVar[str]

    def pre_filter(
        self, pod: PodInfo, cluster: ClusterView
    ) -> FilterPlugin | Unresolvable | None: ...


class PreScorePlugin(Protocol):
    """Computes, once per attempt, what scoring the feasible nodes needs.

    ``pre_score`` returns ``None`` when the plugin does not score this pod (upstream's
    ``Skip``), otherwise a ``ScorePlugin`` bound to the computed state.
    """

    name: ClassVar[str]
    weight: int

    def pre_score(
        self, pod: PodInfo, cluster: ClusterView, feasible: Sequence[NodeInfo]
    ) -> ScorePlugin | None: ...


MAX_NODE_SCORE = 100
