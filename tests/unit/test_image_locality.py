"""ImageLocality against kube-scheduler's formula (after upstream's test table)."""

from __future__ import annotations

import msgspec
from factories import container, make_node, make_pod, pod_info

from scheduler.cache.cluster_cache import ClusterCache
from scheduler.framework.images import normalized_image_name
from scheduler.framework.plugins import ImageLocality
from scheduler.model.objects import Node

MB = 1024 * 1024


def node_with_images(name: str, images: dict[str, int]) -> Node:
    node = make_node(name)
    data = msgspec.to_builtins(node)
    data["status"]["images"] = [{"names": [n], "sizeBytes": s} for n, s in images.items()]
    return msgspec.convert(data, Node)


def pod_with(*images: str) -> object:
    return pod_info(containers=[{**container(f"c{i}"), "image": im} for i, im in enumerate(images)])


def test_image_names_get_latest_when_untagged() -> None:
    assert normalized_image_name("nginx") == "nginx:latest"
    assert normalized_image_name("nginx:1.25") == "nginx:1.25"
    assert normalized_image_name("registry:5000/team/app") == "registry:5000/team/app:latest"
    assert normalized_image_name("app@sha256:abc") == "app@sha256:abc"


def test_scores_scale_with_size_and_spread() -> None:
    cache = ClusterCache()
    cache.set_node(
        node_with_images("n1", {"gcr.io/40:latest": 40 * MB, "gcr.io/300:latest": 300 * MB})
    )
    cache.set_node(node_with_images("n2", {"gcr.io/250:latest": 250 * MB}))
    cache.set_node(node_with_images("n3", {"gcr.io/300:latest": 300 * MB}))
    plugin = ImageLocality(cluster=cache)
    n1, n2, n3 = cache.nodes()
    pod = pod_with("gcr.io/40", "gcr.io/300")
    # n1: 40 * 1/3 + 300 * 2/3 = 213.3 MB over 2 containers: (213.3 - 23) / (2000 - 23).
    assert plugin.score(pod, n1) == 100 * (int(40 * MB / 3) + int(300 * MB * 2 / 3) - 23 * MB) // (
        2000 * MB - 23 * MB
    )
    assert plugin.score(pod, n2) == 0
    assert plugin.score(pod, n3) == 100 * (200 * MB - 23 * MB) // (2000 * MB - 23 * MB)
    big = pod_with("gcr.io/250")
    assert plugin.score(big, n2) == 100 * (int(250 * MB / 3) - 23 * MB) // (1000 * MB - 23 * MB)


def test_small_images_score_nothing_and_huge_ones_are_capped() -> None:
    cache = ClusterCache()
    cache.set_node(node_with_images("n1", {"tiny:1": 10 * MB, "huge:1": 5000 * MB}))
    plugin = ImageLocality(cluster=cache)
    (n1,) = cache.nodes()
    assert plugin.score(pod_with("tiny:1"), n1) == 0
    assert plugin.score(pod_with("huge:1"), n1) == 100


def test_spread_follows_node_changes() -> None:
    cache = ClusterCache()
    cache.set_node(node_with_images("n1", {"app:1": 500 * MB}))
    cache.set_node(make_node("n2"))
    assert cache.image_spread("app:1") == 0.5
    before = cache.nodes()
    cache.set_node(node_with_images("n2", {"app:1": 500 * MB}))
    assert cache.image_spread("app:1") == 1.0
    assert cache.nodes() is not before  # signature caches evaluate every node again
    cache.delete_node("n1")
    assert cache.image_spread("app:1") == 1.0
    cache.set_node(make_node("n2"))
    assert cache.image_spread("app:1") == 0.0


def test_images_are_part_of_the_signature() -> None:
    assert pod_with("a:1").signature != pod_with("b:1").signature  # type: ignore[attr-defined]
    assert make_pod("x").spec.containers[0].image == "busybox"
