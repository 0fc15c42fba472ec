"""Building and updating a node's bookkeeping (``NodeInfo``) as pods come and go."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

from scheduler.framework.types import NodeInfo, PodInfo, ResourceList
from scheduler.model.objects import Node
from scheduler.model.quantity import QuantityError, to_int

# One counter for all nodes, so a node deleted and re-created never repeats a
# generation that a cache may still hold for its predecessor.
_generations: Iterator[int] = itertools.count(1)


def _allocatable(node: Node) -> ResourceList:
    allocatable: ResourceList = {}
    for resource, text in node.status.allocatable.items():
        try:
            allocatable[resource] = to_int(resource, text)
        except QuantityError:
            # One bad amount must not take the node away: the resource counts as 0.
            continue
    return allocatable


def node_images(node: Node) -> dict[str, int]:
    """Every name of every image the node reports, with the image's size."""
    return {name: image.size_bytes for image in node.status.images for name in image.names}


def make_node_info(node: Node) -> NodeInfo:
    """A node with no pods yet; a malformed allocatable amount counts as 0."""
    return NodeInfo(
        node=node,
        allocatable=_allocatable(node),
        generation=next(_generations),
        images=node_images(node),
    )


def update_node(node_info: NodeInfo, node: Node) -> None:
    """A new version of the node object: allocatable and images re-read, pods kept."""
    node_info.node = node
    node_info.allocatable = _allocatable(node)
    node_info.images = node_images(node)
    node_info.generation = next(_generations)


def _add_amounts(total: ResourceList, amounts: ResourceList) -> None:
    for resource, amount in amounts.items():
        # Zero amounts (an explicit "0" in non-zero requests) would leave entries that
        # removal drops, so an emptied node would differ from a fresh one.
        if amount:
            total[resource] = total.get(resource, 0) + amount


def _subtract_amounts(total: ResourceList, amounts: ResourceList) -> None:
    for resource, amount in amounts.items():
        left = total.get(resource, 0) - amount
        # Dropping spent entries keeps an emptied node equal to a fresh one.
        if left:
            total[resource] = left
        else:
            total.pop(resource, None)


def add_pod(node_info: NodeInfo, pod_info: PodInfo) -> None:
    """Counts ``pod_info`` on the node; a pod already there (same uid) is replaced."""
    if pod_info.uid in node_info.pods:
        remove_pod(node_info, pod_info.uid)
    node_info.pods[pod_info.uid] = pod_info
    _add_amounts(node_info.requested, pod_info.requests)
    _add_amounts(node_info.non_zero_requested, pod_info.non_zero_requests)
    node_info.used_ports.update(pod_info.host_ports)
    terms = pod_info.pod_affinity
    if terms is not None:
        node_info.pods_with_affinity[pod_info.uid] = pod_info
        if terms.required_anti_affinity:
            node_info.pods_with_required_anti_affinity[pod_info.uid] = pod_info
    node_info.generation = next(_generations)


def remove_pod(node_info: NodeInfo, uid: str) -> bool:
    """Forgets the pod; False when it was not on the node."""
    pod_info = node_info.pods.pop(uid, None)
    if pod_info is None:
        return False
    _subtract_amounts(node_info.requested, pod_info.requests)
    _subtract_amounts(node_info.non_zero_requested, pod_info.non_zero_requests)
    if pod_info.pod_affinity is not None:
        node_info.pods_with_affinity.pop(uid, None)
        node_info.pods_with_required_anti_affinity.pop(uid, None)
    if pod_info.host_ports:
        # Rebuilt rather than subtracted: another pod (bound by someone else) may
        # hold the same port, and it stays in use.
        used: set[tuple[str, str, int]] = set()
        for other in node_info.pods.values():
            used.update(other.host_ports)
        node_info.used_ports = used
    node_info.generation = next(_generations)
    return True
