"""InterPodAffinity against kube-scheduler's semantics (cases after upstream's filtering and
scoring test tables, with our own data)."""

from __future__ import annotations

import random
from typing import Any

import pytest
from factories import make_pod, pre_filter_verdicts, zoned_cluster

from scheduler.cache.cluster_cache import ClusterCache
from scheduler.framework.cycle import Profile, pick_node
from scheduler.framework.diagnosis import unschedulable_message
from scheduler.framework.plugins import InterPodAffinity
from scheduler.framework.podinfo import InvalidPodError, make_pod_info
from scheduler.framework.types import PodInfo
from scheduler.gang.placement import place_gang

HOST = "kubernetes.io/hostname"
ZONE = "zone"
AFFINITY = "node(s) didn't match pod affinity rules"
ANTI = "node(s) didn't match pod anti-affinity rules"
EXISTING = "node(s) didn't satisfy existing pods anti-affinity rules"


def sel(**labels: str) -> dict[str, Any]:
    return {"matchLabels": labels}


def aff_term(key: str, selector: dict[str, Any] | None, **extra: Any) -> dict[str, Any]:
    term: dict[str, Any] = {"topologyKey": key, **extra}
    if selector is not None:
        term["labelSelector"] = selector
    return term


def affinity(
    required: list[dict[str, Any]] | None = None,
    anti: list[dict[str, Any]] | None = None,
    preferred: list[tuple[int, dict[str, Any]]] | None = None,
    preferred_anti: list[tuple[int, dict[str, Any]]] | None = None,
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    key = "DuringSchedulingIgnoredDuringExecution"
    for name, req, pref in (
        ("podAffinity", required, preferred),
        ("podAntiAffinity", anti, preferred_anti),
    ):
        part: dict[str, Any] = {}
        if req:
            part["required" + key] = req
        if pref:
            part["preferred" + key] = [{"weight": w, "podAffinityTerm": t} for w, t in pref]
        if part:
            out[name] = part
    return out


cluster = zoned_cluster


def verdicts(cache: ClusterCache, **kwargs: Any) -> dict[str, str | None]:
    """Node name -> None (fits) or the InterPodAffinity reason."""
    pod = make_pod_info(make_pod("incoming", cpu="100m", **kwargs))
    return pre_filter_verdicts(InterPodAffinity(), pod, cache)


def run(cache: ClusterCache, name: str, node: str, **kwargs: Any) -> PodInfo:
    info = make_pod_info(make_pod(name, cpu="100m", **kwargs))
    cache.set_assigned_pod(info, node)
    return info


# -- filter ---------------------------------------------------------------------------------


def test_nothing_to_check_is_skipped() -> None:
    cache = cluster(("n1", "a"))
    run(cache, "web", "n1", labels={"app": "web"})
    pod = make_pod_info(make_pod("plain", labels={"app": "web"}))
    assert InterPodAffinity().pre_filter(pod, cache) is None


def test_required_affinity_follows_matching_pods_domain() -> None:
    cache = cluster(("n1", "a"), ("n2", "a"), ("n3", "b"))
    run(cache, "db", "n1", labels={"app": "db"})
    result = verdicts(cache, affinity=affinity(required=[aff_term(ZONE, sel(app="db"))]))
    assert result == {"n1": None, "n2": None, "n3": AFFINITY}


def test_required_affinity_needs_the_topology_label() -> None:
    cache = cluster(("n1", "a"), ("n2", ""))
    run(cache, "db", "n1", labels={"app": "db"})
    assert verdicts(cache, affinity=affinity(required=[aff_term(ZONE, sel(app="db"))])) == {
        "n1": None,
        "n2": AFFINITY,
    }


def test_all_terms_must_match_the_same_pod() -> None:
    cache = cluster(("n1", "a"), ("n2", "a"))
    run(cache, "db", "n1", labels={"app": "db"})
    run(cache, "cache", "n2", labels={"tier": "cache"})
    terms = [aff_term(ZONE, sel(app="db")), aff_term(ZONE, sel(tier="cache"))]
    result = verdicts(cache, affinity=affinity(required=terms), labels={"app": "x"})
    assert result == {"n1": AFFINITY, "n2": AFFINITY}


def test_first_pod_of_a_self_affine_group_may_go_anywhere_with_the_topology() -> None:
    cache = cluster(("n1", "a"), ("n2", ""))
    required = affinity(required=[aff_term(ZONE, sel(app="web"))])
    assert verdicts(cache, affinity=required, labels={"app": "web"}) == {
        "n1": None,
        "n2": AFFINITY,
    }
    # Not when it does not match its own terms.
    assert verdicts(cache, affinity=required, labels={"app": "api"}) == {
        "n1": AFFINITY,
        "n2": AFFINITY,
    }


def test_affinity_looks_in_the_pods_own_namespace_by_default() -> None:
    cache = cluster(("n1", "a"), ("n2", "b"))
    run(cache, "db", "n1", namespace="other", labels={"app": "db"})
    run(cache, "db", "n2", namespace="default", labels={"app": "db"})
    result = verdicts(cache, affinity=affinity(required=[aff_term(ZONE, sel(app="db"))]))
    assert result == {"n1": AFFINITY, "n2": None}


def test_namespaces_and_namespace_selector() -> None:
    cache = cluster(
        ("n1", "a"),
        ("n2", "b"),
        ("n3", "c"),
        namespaces={"team-a": {"team": "a"}, "team-b": {"team": "b"}, "default": {}},
    )
    run(cache, "db", "n1", namespace="team-a", labels={"app": "db"})
    run(cache, "db", "n2", namespace="team-b", labels={"app": "db"})
    run(cache, "db", "n3", namespace="listed", labels={"app": "db"})
    by_selector = aff_term(ZONE, sel(app="db"), namespaceSelector=sel(team="a"))
    assert verdicts(cache, affinity=affinity(required=[by_selector])) == {
        "n1": None,
        "n2": AFFINITY,
        "n3": AFFINITY,
    }
    both = aff_term(ZONE, sel(app="db"), namespaceSelector=sel(team="b"), namespaces=["listed"])
    assert verdicts(cache, affinity=affinity(required=[both])) == {
        "n1": AFFINITY,
        "n2": None,
        "n3": None,
    }
    # An empty namespaceSelector selects every namespace.
    everywhere = aff_term(ZONE, sel(app="db"), namespaceSelector={})
    assert set(verdicts(cache, affinity=affinity(required=[everywhere])).values()) == {None}


def test_required_anti_affinity_by_host_and_by_zone() -> None:
    cache = cluster(("n1", "a"), ("n2", "a"), ("n3", "b"))
    run(cache, "web-0", "n1", labels={"app": "web"})
    by_host = affinity(anti=[aff_term(HOST, sel(app="web"))])
    assert verdicts(cache, affinity=by_host) == {"n1": ANTI, "n2": None, "n3": None}
    by_zone = affinity(anti=[aff_term(ZONE, sel(app="web"))])
    assert verdicts(cache, affinity=by_zone) == {"n1": ANTI, "n2": ANTI, "n3": None}


def test_existing_pods_anti_affinity_is_symmetric() -> None:
    cache = cluster(("n1", "a"), ("n2", "a"), ("n3", "b"))
    run(
        cache,
        "loner",
        "n1",
        labels={"app": "loner"},
        affinity=affinity(anti=[aff_term(ZONE, sel(app="noisy"))]),
    )
    assert verdicts(cache, labels={"app": "noisy"}) == {
        "n1": EXISTING,
        "n2": EXISTING,
        "n3": None,
    }
    assert set(verdicts(cache, labels={"app": "quiet"}).values()) == {None}
    # The existing pod's term covers its own namespace only.
    assert set(verdicts(cache, labels={"app": "noisy"}, namespace="elsewhere").values()) == {None}


def test_existing_anti_affinity_namespace_selector_reads_the_incoming_namespace() -> None:
    cache = cluster(("n1", "a"), ("n2", "b"), namespaces={"prod": {"env": "prod"}, "dev": {}})
    term = aff_term(HOST, sel(app="batch"), namespaceSelector=sel(env="prod"))
    run(cache, "guard", "n1", affinity=affinity(anti=[term]))
    assert verdicts(cache, namespace="prod", labels={"app": "batch"})["n1"] == EXISTING
    assert verdicts(cache, namespace="dev", labels={"app": "batch"})["n1"] is None


def test_match_label_keys_and_mismatch_label_keys() -> None:
    cache = cluster(("n1", "a"), ("n2", "b"))
    run(cache, "v1", "n1", labels={"app": "web", "version": "1"})
    run(cache, "v2", "n2", labels={"app": "web", "version": "2"})
    anti = affinity(anti=[aff_term(HOST, sel(app="web"), matchLabelKeys=["version"])])
    assert verdicts(cache, affinity=anti, labels={"app": "web", "version": "1"}) == {
        "n1": ANTI,
        "n2": None,
    }
    near_others = affinity(required=[aff_term(HOST, sel(app="web"), mismatchLabelKeys=["version"])])
    assert verdicts(cache, affinity=near_others, labels={"app": "web", "version": "1"}) == {
        "n1": AFFINITY,
        "n2": None,
    }


def test_match_expressions_and_absent_selector() -> None:
    cache = cluster(("n1", "a"), ("n2", "b"))
    run(cache, "gpu", "n1", labels={"kind": "train"})
    run(cache, "cpu", "n2", labels={"kind": "serve"})
    not_train = {"matchExpressions": [{"key": "kind", "operator": "NotIn", "values": ["train"]}]}
    assert verdicts(cache, affinity=affinity(anti=[aff_term(HOST, not_train)])) == {
        "n1": None,
        "n2": ANTI,
    }
    # No labelSelector: the term selects no pod.
    assert set(verdicts(cache, affinity=affinity(anti=[aff_term(HOST, None)])).values()) == {None}


def test_malformed_selector_is_an_invalid_pod() -> None:
    bad = {"matchExpressions": [{"key": "k", "operator": "Gt", "values": ["1"]}]}
    with pytest.raises(InvalidPodError, match=r"spec\.affinity"):
        make_pod_info(make_pod("bad", affinity=affinity(anti=[aff_term(HOST, bad)])))


# -- score ----------------------------------------------------------------------------------


def scores(cache: ClusterCache, **kwargs: Any) -> dict[str, int] | None:
    pod = make_pod_info(make_pod("incoming", cpu="100m", **kwargs))
    plugin = InterPodAffinity()
    nodes = cache.nodes()
    scorer = plugin.pre_score(pod, cache, nodes)
    if scorer is None:
        return None
    assert scorer.weight == 2
    raw = [scorer.score(pod, n) for n in nodes]
    scorer.normalize(raw)
    return {n.name: s for n, s in zip(nodes, raw, strict=True)}


def test_preferred_affinity_and_anti_affinity_scores() -> None:
    cache = cluster(("n1", "a"), ("n2", "a"), ("n3", "b"))
    run(cache, "db", "n1", labels={"app": "db"})
    run(cache, "web", "n3", labels={"app": "web"})
    near_db = affinity(preferred=[(5, aff_term(ZONE, sel(app="db")))])
    assert scores(cache, affinity=near_db) == {"n1": 100, "n2": 100, "n3": 0}
    mixed = affinity(
        preferred=[(8, aff_term(ZONE, sel(app="db")))],
        preferred_anti=[(4, aff_term(HOST, sel(app="db")))],
    )
    # n1: 8 - 4, n2: 8, n3: 0 -> min-max normalised.
    assert scores(cache, affinity=mixed) == {"n1": 50, "n2": 100, "n3": 0}


def test_existing_pods_terms_count_for_the_incoming_pod() -> None:
    cache = cluster(("n1", "a"), ("n2", "b"), ("n3", "c"))
    run(
        cache,
        "wants-web",
        "n1",
        affinity=affinity(required=[aff_term(ZONE, sel(app="web"))]),
    )
    run(
        cache,
        "likes-web",
        "n2",
        affinity=affinity(preferred=[(3, aff_term(ZONE, sel(app="web")))]),
    )
    run(
        cache,
        "avoids-web",
        "n3",
        affinity=affinity(preferred_anti=[(2, aff_term(ZONE, sel(app="web")))]),
    )
    # hardPodAffinityWeight 1 for n1, +3 for n2, -2 for n3.
    assert scores(cache, labels={"app": "web"}) == {"n1": 60, "n2": 100, "n3": 0}
    assert scores(cache, labels={"app": "db"}) is None


def test_no_terms_anywhere_is_skipped() -> None:
    cache = cluster(("n1", "a"))
    run(cache, "web", "n1", labels={"app": "web"})
    assert scores(cache, labels={"app": "web"}) is None


# -- in the cycle ---------------------------------------------------------------------------


def replica(i: int) -> PodInfo:
    return make_pod_info(
        make_pod(
            f"web-{i}",
            cpu="100m",
            labels={"app": "web"},
            affinity=affinity(anti=[aff_term(HOST, sel(app="web"))]),
        )
    )


def test_six_replicas_one_per_node_on_three_nodes() -> None:
    cache = cluster(("n1", "a"), ("n2", "a"), ("n3", "b"))
    profile = Profile.default(cluster=cache)
    rng = random.Random(0)
    placed, messages = [], []
    for i in range(6):
        pod = replica(i)
        node, fit = pick_node(profile, pod, cache.nodes(), rng)
        if node is None:
            messages.append(unschedulable_message(3, fit.reasons, fit.pre_filter_message))
            continue
        cache.assume(pod, node.name)
        placed.append(node.name)
    assert sorted(placed) == ["n1", "n2", "n3"]
    assert messages == [f"0/3 nodes are available: 3 {ANTI}."] * 3


def test_gang_members_see_each_others_tentative_placements() -> None:
    cache = cluster(("n1", "a"), ("n2", "a"), ("n3", "b"))
    profile = Profile.default(cluster=cache)
    attempt = place_gang(cache, profile, [replica(i) for i in range(3)], 3, random.Random(0))
    assert attempt.ok(3)
    assert sorted(node for _, node in attempt.placed) == ["n1", "n2", "n3"]
    # A fourth member has nowhere to go: all or nothing, nothing stays assumed.
    more = [replica(i) for i in range(10, 14)]
    attempt = place_gang(cache, profile, more, 4, random.Random(0))
    assert not attempt.ok(4)
    assert all(cache.node_of(p.uid) is None for p in more)


# -- requeue ---------------------------------------------------------------------------------


async def test_a_new_peer_wakes_pods_waiting_for_it() -> None:
    from scheduler.core.event_handlers import PodEvents
    from scheduler.queue.scheduling_queue import SchedulingQueue

    cache = cluster(("n1", "a"))
    queue = SchedulingQueue()
    events = PodEvents("workload-scheduler", cache, queue, lambda pod, msg: None, lambda uid: None)
    waiting = make_pod(
        "follower",
        schedulerName="workload-scheduler",
        affinity=affinity(required=[aff_term(ZONE, sel(app="db"))]),
    )
    events.apply("ADDED", waiting)
    qp = await queue.pop()
    queue.requeue_unschedulable(qp)
    assert queue.counts()["unschedulable"] == 1
    events.apply("ADDED", make_pod("web", labels={"app": "web"}, node_name="n1"))
    assert queue.counts()["unschedulable"] == 1  # not a pod its terms select
    events.apply("ADDED", make_pod("db", labels={"app": "db"}, node_name="n1"))
    assert queue.counts()["active"] == 1
