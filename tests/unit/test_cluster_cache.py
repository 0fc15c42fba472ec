"""Cluster cache: assumed pods count at once, are confirmed or forgotten, never expire."""

from __future__ import annotations

from factories import make_node, make_pod

from scheduler.cache.cluster_cache import ClusterCache
from scheduler.core.event_handlers import PodEvents
from scheduler.framework.podinfo import make_pod_info
from scheduler.queue.scheduling_queue import SchedulingQueue


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


def test_bound_but_unconfirmed_pod_keeps_its_capacity() -> None:
    """No expiry (upstream's assumed-pod TTL is 0): a watch outage of any length must not
    free capacity that a bound pod still uses."""
    cache = ClusterCache()
    cache.set_node(make_node("n", cpu="2"))
    pod = make_pod_info(make_pod("p", cpu="1500m"))
    cache.assume(pod, "n")
    cache.finish_binding(pod.uid)
    node = cache.node("n")
    assert node is not None and node.requested["cpu"] == 1500 and cache.is_assumed(pod.uid)
    assert list(cache.placed_uids()) == [pod.uid]


def test_relist_drops_an_unconfirmed_pod_deleted_while_not_watching() -> None:
    """The pod was bound, then deleted during a watch outage: the relist does not list it,
    so its assumption lets go of the node (nothing else would, with no expiry)."""
    cache = ClusterCache()
    queue = SchedulingQueue()
    events = PodEvents("workload-scheduler", cache, queue, lambda pod, msg: None, lambda uid: None)
    gone = make_pod_info(make_pod("gone", cpu="1"))
    kept = make_pod("kept", cpu="1", node_name="n")
    cache.assume(gone, "n")
    cache.finish_binding(gone.uid)
    events.replace([kept])
    assert cache.node_of(gone.uid) is None
    assert cache.node_of(kept.metadata.uid) == "n"


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


def test_relist_drops_vanished_gang_members_of_any_scheduler() -> None:
    """A member pod of another scheduler (never in our queue) deleted during a watch gap
    must not keep counting towards its gang's quorum."""
    from scheduler.gang.registry import GangRegistry

    gangs = GangRegistry()
    events = PodEvents(
        "workload-scheduler",
        ClusterCache(),
        SchedulingQueue(),
        lambda pod, msg: None,
        lambda uid: None,
        gangs,
    )
    labels = {"workload-scheduler.io/workload": "w", "workload-scheduler.io/pod-group": "g"}
    theirs = make_pod("theirs", labels=labels, schedulerName="someone-else")
    events.apply("ADDED", theirs)
    assert gangs.pod_uids() == [theirs.metadata.uid]
    events.replace([])
    assert gangs.pod_uids() == []


def test_terminating_members_are_no_members() -> None:
    """A bound member being deleted (deletionTimestamp set) no longer counts towards its
    gang, but its capacity stays counted until it is gone."""
    from scheduler.gang.registry import GangRegistry

    gangs = GangRegistry()
    cache = ClusterCache()
    events = PodEvents(
        "workload-scheduler",
        cache,
        SchedulingQueue(),
        lambda pod, msg: None,
        lambda uid: None,
        gangs,
    )
    labels = {"workload-scheduler.io/workload": "w", "workload-scheduler.io/pod-group": "g"}
    pod = make_pod("old", labels=labels, node_name="n", cpu="1")
    events.apply("ADDED", pod)
    assert gangs.pod_uids() == [pod.metadata.uid]
    pod.metadata.deletion_timestamp = "2026-12-01T00:00:00Z"
    events.apply("MODIFIED", pod)
    assert gangs.pod_uids() == []
    assert cache.node_of(pod.metadata.uid) == "n"


def test_assumed_count_follows_every_transition() -> None:
    """The count is kept as placements change (a metric reads it every second)."""
    cache = ClusterCache()
    for name in ("a", "b"):
        cache.set_node(make_node(name, cpu="8"))
    pods = [make_pod_info(make_pod(f"p{i}", cpu="1")) for i in range(5)]

    def counted() -> int:
        return sum(cache.is_assumed(p.uid) for p in pods)

    steps = [
        lambda: cache.assume(pods[0], "a"),
        lambda: cache.assume(pods[1], "a"),
        lambda: cache.assume(pods[2], "b"),
        lambda: cache.finish_binding(pods[0].uid),
        lambda: cache.set_assigned_pod(pods[0], "a"),  # confirmed
        lambda: cache.set_assigned_pod(pods[0], "a"),  # again: no change
        lambda: cache.set_assigned_pod(pods[1], "b"),  # landed elsewhere: confirmed there
        lambda: cache.forget(pods[2].uid),
        lambda: cache.set_assigned_pod(pods[3], "b"),  # someone else's pod
        lambda: cache.assume(pods[4], "b"),
        lambda: cache.remove_pod(pods[4].uid),  # deleted while assumed
        lambda: cache.remove_pod(pods[0].uid),
        lambda: cache.forget(pods[1].uid),  # confirmed: left alone
    ]
    for step in steps:
        step()
        assert cache.assumed_count == counted()
    assert cache.assumed_count == 0 and cache.pod_count == 2
