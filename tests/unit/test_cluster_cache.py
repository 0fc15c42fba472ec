"""Cluster cache: assumed pods count at once, are confirmed, forgotten or expire."""

from __future__ import annotations

import time

from factories import make_node, make_pod

from scheduler.cache.cluster_cache import ASSUMED_TTL_SECONDS, ClusterCache
from scheduler.framework.podinfo import make_pod_info


def test_assumed_pod_counts_until_forgotten() -> None:
    cache = ClusterCache()
    cache.set_node(make_node("n", cpu="2"))
    pod = make_pod_info(make_pod("p", cpu="1500m"))
    cache.assume(pod, "n")
    node = cache.node("n")
    assert node is not None and node.requested["cpu"] == 1500 and cache.is_assumed(pod.uid)
    cache.forget(pod.uid)
    assert "cpu" not in node.requested or node.requested["cpu"] == 0


def test_watch_confirms_an_assumption_without_counting_twice() -> None:
    cache = ClusterCache()
    cache.set_node(make_node("n", cpu="2"))
    pod = make_pod_info(make_pod("p", cpu="1"))
    cache.assume(pod, "n")
    cache.finish_binding(pod.uid)
    cache.set_assigned_pod(pod, "n")
    node = cache.node("n")
    assert node is not None and node.requested["cpu"] == 1000 and not cache.is_assumed(pod.uid)
    cache.forget(pod.uid)  # a confirmed pod is not dropped by a late forget
    assert node.requested["cpu"] == 1000


def test_unconfirmed_binding_expires() -> None:
    cache = ClusterCache()
    cache.set_node(make_node("n"))
    pod = make_pod_info(make_pod("p", cpu="1"))
    cache.assume(pod, "n")
    assert cache.expire_assumed() == []  # bind still in flight: never expires
    cache.finish_binding(pod.uid)
    assert cache.expire_assumed(time.monotonic() + ASSUMED_TTL_SECONDS + 1) == [pod.uid]
    assert cache.node_of(pod.uid) is None


def test_pod_seen_before_its_node_is_counted_when_the_node_arrives() -> None:
    cache = ClusterCache()
    pod = make_pod_info(make_pod("p", cpu="1"))
    cache.set_assigned_pod(pod, "late")
    assert cache.nodes() == []
    cache.set_node(make_node("late", cpu="4"))
    node = cache.node("late")
    assert node is not None and node.requested["cpu"] == 1000


def test_pod_landing_elsewhere_moves_its_usage() -> None:
    cache = ClusterCache()
    cache.set_node(make_node("a"))
    cache.set_node(make_node("b"))
    pod = make_pod_info(make_pod("p", cpu="1"))
    cache.assume(pod, "a")
    cache.set_assigned_pod(pod, "b")
    a, b = cache.node("a"), cache.node("b")
    assert a is not None and b is not None
    assert a.requested.get("cpu", 0) == 0 and b.requested["cpu"] == 1000


def test_heartbeat_updates_do_not_count_as_changes() -> None:
    cache = ClusterCache()
    node = make_node("n")
    assert cache.set_node(node) is True
    assert cache.set_node(make_node("n")) is False
    assert cache.set_node(make_node("n", cpu="8")) is True
