"""Nodes and the pods that use them, kept in step by watch events and by us.

A pod we have chosen a node for is *assumed* on it at once, before the bind
request leaves, so the next scheduling decision already sees the capacity
taken. The watch later confirms it (the pod arrives with ``spec.nodeName``);
if the bind fails the assumption is forgotten. As upstream (whose assumed-pod
TTL is 0, kubernetes#106361), an assumption never expires: a bound pod keeps
its capacity until the watch confirms it, reports it deleted, or a relist no
longer lists it. An expiry would let a watch outage longer than the TTL free
capacity that bound pods still use, and over-commit their nodes.

There is no separate snapshot: a scheduling cycle runs without awaiting, so on
our single event loop nothing can change the cache in the middle of one.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass
from enum import Enum

import structlog

from scheduler.framework.labels import Selector
from scheduler.framework.nodeinfo import add_pod, make_node_info, remove_pod, update_node
from scheduler.framework.types import NodeInfo, PodInfo
from scheduler.model.objects import Node, ObjectMeta

log = structlog.get_logger(__name__)


class PlacementState(Enum):
    BINDING = "binding"
    """Assumed by us; the bind request is in flight."""
    BOUND = "bound"
    """Assumed by us; the bind succeeded, the watch has not confirmed it yet."""
    CONFIRMED = "confirmed"
    """The watch reported the pod on this node."""


@dataclass(slots=True)
class _Placement:
    node_name: str
    state: PlacementState

    @property
    def assumed(self) -> bool:
        return self.state is not PlacementState.CONFIRMED


class ClusterCache:
    def __init__(self) -> None:
        self._nodes: dict[str, NodeInfo] = {}
        self._present: dict[str, NodeInfo] = {}
        """Nodes that exist as API objects (the rest only hold pods we saw first)."""
        self._placements: dict[str, _Placement] = {}
        self._assumed = 0
        """Placements not yet confirmed by the watch (kept as they change: a metric reads it
        every second, and counting would walk every pod)."""
        self._node_list: list[NodeInfo] | None = None
        self._with_affinity: set[str] = set()
        self._with_anti_affinity: set[str] = set()
        """Names of nodes holding pods with inter-pod affinity (required anti-affinity)."""
        self._namespaces: dict[str, dict[str, str]] = {}
        self._services: dict[str, dict[str, dict[str, str]]] = {}
        """namespace -> Service name -> its pod selector (default topology spreading)."""
        self._controllers: dict[tuple[str, str, str], Selector] = {}
        """(kind, namespace, name) -> pod selector of a ReplicaSet, StatefulSet or RC."""
        self._image_nodes: dict[str, int] = {}
        """Image name -> how many present nodes hold it."""
        self.generation = 0
        """Bumped on every change, so callers can tell whether anything moved."""
        self._affinity_generation = 0
        """Bumped when a pod with inter-pod affinity terms comes or goes, or a node holding
        one changes (see ``affinity_generation``)."""

    # -- reading -------------------------------------------------------------

    def nodes(self) -> list[NodeInfo]:
        """Every node that exists, in a stable order (reused until nodes come or go)."""
        if self._node_list is None:
            self._node_list = sorted(self._present.values(), key=lambda n: n.name)
        return self._node_list

    def node(self, name: str) -> NodeInfo | None:
        return self._present.get(name)

    def nodes_with_affinity_pods(self) -> list[NodeInfo]:
        present = self._present
        return [present[n] for n in self._with_affinity if n in present]

    def nodes_with_required_anti_affinity_pods(self) -> list[NodeInfo]:
        present = self._present
        return [present[n] for n in self._with_anti_affinity if n in present]

    def affinity_generation(self) -> int:
        """Changes whenever ``nodes_with_affinity_pods`` or
        ``nodes_with_required_anti_affinity_pods`` (the nodes, their labels, their pods with
        affinity terms) may have changed."""
        return self._affinity_generation

    def namespace_labels(self, name: str) -> dict[str, str] | None:
        return self._namespaces.get(name)

    def namespaces(self) -> dict[str, dict[str, str]]:
        return self._namespaces

    def service_selectors(self, namespace: str) -> Collection[dict[str, str]]:
        return self._services.get(namespace, {}).values()

    def controller_selector(self, kind: str, namespace: str, name: str) -> Selector | None:
        return self._controllers.get((kind, namespace, name))

    def set_service(self, namespace: str, name: str, selector: dict[str, str] | None) -> None:
        services = self._services.setdefault(namespace, {})
        if selector:
            services[name] = selector
        else:
            services.pop(name, None)  # no selector: it selects no pods

    def delete_service(self, namespace: str, name: str) -> None:
        self._services.get(namespace, {}).pop(name, None)

    def set_controller(self, kind: str, namespace: str, name: str, selector: Selector) -> None:
        self._controllers[(kind, namespace, name)] = selector

    def delete_controller(self, kind: str, namespace: str, name: str) -> None:
        self._controllers.pop((kind, namespace, name), None)

    def image_spread(self, image: str) -> float:
        present = len(self._present)
        return self._image_nodes.get(image, 0) / present if present else 0.0

    def _count_images(self, names: Iterable[str], sign: int) -> None:
        counts = self._image_nodes
        for name in names:
            left = counts.get(name, 0) + sign
            if left > 0:
                counts[name] = left
            else:
                counts.pop(name, None)

    def node_of(self, uid: str) -> str | None:
        placement = self._placements.get(uid)
        return placement.node_name if placement else None

    def is_assumed(self, uid: str) -> bool:
        placement = self._placements.get(uid)
        return placement is not None and placement.assumed

    def placed_uids(self) -> Iterator[str]:
        """Every pod counted on a node, assumed or confirmed (for relists)."""
        return iter(list(self._placements))

    @property
    def pod_count(self) -> int:
        return len(self._placements)

    @property
    def assumed_count(self) -> int:
        return self._assumed

    # -- nodes ---------------------------------------------------------------

    def set_node(self, node: Node) -> bool:
        """Add or update a node; True when something scheduling reads has changed."""
        self.generation += 1
        name = node.metadata.name
        info = self._nodes.get(name)
        if name in self._with_affinity and (
            info is None
            or name not in self._present
            or info.node.metadata.labels != node.metadata.labels
        ):
            self._affinity_generation += 1  # labels are all affinity reads of a node
        if info is None:
            info = make_node_info(node)
            self._nodes[name] = info
        elif name in self._present:
            changed = _schedulable_view(info.node) != _schedulable_view(node)
            images = info.images
            update_node(info, node)
            if images != info.images:
                self._count_images(images, -1)
                self._count_images(info.images, 1)
                # Every node's ImageLocality score may move (an image's spread changed):
                # a new node list makes signature caches evaluate every node again.
                self._node_list = None
            return changed
        else:
            update_node(info, node)
        self._present[name] = info
        self._count_images(info.images, 1)
        self._node_list = None
        return True

    def delete_node(self, name: str) -> None:
        self.generation += 1
        if name in self._with_affinity:
            self._affinity_generation += 1
        info = self._present.pop(name, None)
        if info is None:
            return
        self._count_images(info.images, -1)
        self._node_list = None
        if not info.pods:
            del self._nodes[name]

    # -- namespaces ------------------------------------------------------------

    def set_namespace(self, name: str, labels: dict[str, str]) -> bool:
        """Add or update a namespace; True when its labels changed (inter-pod affinity's
        namespaceSelector reads them)."""
        if self._namespaces.get(name) == labels:
            return False
        self.generation += 1
        self._namespaces[name] = labels
        return True

    def delete_namespace(self, name: str) -> None:
        if self._namespaces.pop(name, None) is not None:
            self.generation += 1

    # -- pods ----------------------------------------------------------------

    def assume(self, pod: PodInfo, node_name: str) -> None:
        """Count ``pod`` on ``node_name`` before the bind is sent."""
        if pod.uid in self._placements:
            raise ValueError(f"pod {pod.key} is already placed on {self.node_of(pod.uid)}")
        self._add(pod, node_name, PlacementState.BINDING)

    def finish_binding(self, uid: str) -> None:
        """The bind succeeded: the pod stays counted until the watch confirms it."""
        placement = self._placements.get(uid)
        if placement is not None and placement.state is PlacementState.BINDING:
            placement.state = PlacementState.BOUND

    def forget(self, uid: str) -> None:
        """Drop an assumption (the bind failed); a confirmed pod is left alone."""
        placement = self._placements.get(uid)
        if placement is not None and placement.assumed:
            self._remove(uid)

    def set_assigned_pod(self, pod: PodInfo, node_name: str) -> None:
        """The watch reports ``pod`` on ``node_name``: confirm, move or add it."""
        placement = self._placements.get(pod.uid)
        if placement is not None:
            if placement.node_name == node_name and not placement.assumed:
                return
            if placement.node_name == node_name:
                placement.state = PlacementState.CONFIRMED
                self._assumed -= 1
                return
            log.warning(
                "pod landed elsewhere than assumed",
                pod=pod.key,
                assumed=placement.node_name,
                actual=node_name,
            )
            self._remove(pod.uid)
        self._add(pod, node_name, PlacementState.CONFIRMED)

    def remove_pod(self, uid: str) -> bool:
        """The pod is gone or finished; True when it held capacity here."""
        if uid not in self._placements:
            return False
        self._remove(uid)
        return True

    def _add(self, pod: PodInfo, node_name: str, state: PlacementState) -> None:
        self.generation += 1
        info = self._nodes.get(node_name)
        if info is None:
            # The pod's node has not been seen yet: hold its usage until it is.
            info = make_node_info(Node(metadata=ObjectMeta(name=node_name)))
            self._nodes[node_name] = info
        if pod.pod_affinity is not None or pod.uid in info.pods_with_affinity:
            self._affinity_generation += 1
        add_pod(info, pod)
        placement = self._placements[pod.uid] = _Placement(node_name, state)
        self._assumed += placement.assumed
        if info.pods_with_affinity:
            self._with_affinity.add(node_name)
        if info.pods_with_required_anti_affinity:
            self._with_anti_affinity.add(node_name)

    def _remove(self, uid: str) -> None:
        self.generation += 1
        placement = self._placements.pop(uid)
        self._assumed -= placement.assumed
        info = self._nodes.get(placement.node_name)
        if info is None:
            return
        if uid in info.pods_with_affinity:
            self._affinity_generation += 1
        remove_pod(info, uid)
        if not info.pods_with_affinity:
            self._with_affinity.discard(placement.node_name)
        if not info.pods_with_required_anti_affinity:
            self._with_anti_affinity.discard(placement.node_name)
        if not info.pods and placement.node_name not in self._present:
            del self._nodes[placement.node_name]


def _schedulable_view(node: Node) -> tuple[object, ...]:
    """What filters and scores read of a node; heartbeats that change nothing else are ignored."""
    return (
        node.metadata.labels,
        node.spec.unschedulable,
        node.spec.taints,
        node.status.allocatable,
        node.status.images,
    )
