"""ImageLocality: prefer nodes that already hold the pod's container images (score only).

As upstream: for each container and init container whose image (``:latest`` added when
untagged) the node reports in ``status.images``, the image's size scaled by the share of
nodes that hold it (so an image everywhere does not pull pods to one node); the sum,
clamped to 23 MiB .. 1000 MiB per container, is mapped linearly onto 0..100. Weight 1.

The share of nodes comes from the cluster view; without one (unit tests of single nodes)
every image counts as held by every node.
"""

from __future__ import annotations

from typing import ClassVar, Final

from scheduler.framework.images import pod_images
from scheduler.framework.types import MAX_NODE_SCORE, ClusterView, NodeInfo, PodInfo

MB: Final = 1024 * 1024
MIN_THRESHOLD: Final = 23 * MB
MAX_CONTAINER_THRESHOLD: Final = 1000 * MB


def priority(total: int, containers: int) -> int:
    """Upstream's ``calculatePriority``."""
    high = MAX_CONTAINER_THRESHOLD * containers
    total = min(max(total, MIN_THRESHOLD), high)
    if high <= MIN_THRESHOLD:
        return 0
    return MAX_NODE_SCORE * (total - MIN_THRESHOLD) // (high - MIN_THRESHOLD)


class ImageLocality:
    name: ClassVar[str] = "ImageLocality"
    scores_are_absolute: ClassVar[bool] = True
    """Already 0..100: batching need not watch the highest raw score."""
    __slots__ = ("cluster", "weight")

    def __init__(self, weight: int = 1, cluster: ClusterView | None = None) -> None:
        self.weight = weight
        self.cluster = cluster

    def score(self, pod: PodInfo, node: NodeInfo) -> int:
        held = node.images
        if not held:
            return 0
        images = pod_images(pod.pod)
        total = 0
        for image in images:
            size = held.get(image)
            if size is not None:
                spread = self.cluster.image_spread(image) if self.cluster is not None else 1.0
                total += int(size * spread)
        return priority(total, len(images))

    def normalize(self, scores: list[int]) -> None:
        pass
