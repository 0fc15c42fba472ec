"""What InterPodAffinity and PodTopologySpread keep between pods (selector guards, the
existing pods' anti-affinity index, the nodes whose pods score others) gives the same
answers as computing everything afresh, and follows the cache as pods and nodes change."""

from __future__ import annotations

from typing import Any

from factories import make_node, make_pod, pre_filter_verdicts, zoned_cluster
from test_inter_pod_affinity import EXISTING, HOST, ZONE, aff_term, affinity, sel

from scheduler.cache.cluster_cache import ClusterCache
from scheduler.framework.labels import EVERYTHING, NOTHING, Requirement, Selector
from scheduler.framework.plugins import InterPodAffinity
from scheduler.framework.plugins.inter_pod_affinity import (
    ExistingAntiAffinityIndex,
    existing_anti_affinity_counts,
)
from scheduler.framework.podinfo import make_pod_info
from scheduler.framework.types import PodInfo


def _run(cache: ClusterCache, name: str, node: str, **kwargs: Any) -> PodInfo:
    info = make_pod_info(make_pod(name, cpu="100m", **kwargs))
    cache.set_assigned_pod(info, node)
    return info


def _incoming(**kwargs: Any) -> PodInfo:
    return make_pod_info(make_pod("incoming", cpu="100m", **kwargs))


def test_selector_guard_is_the_first_in_requirement() -> None:
    requirements = (
        Requirement("tier", "NotIn", frozenset({"db"})),
        Requirement("app", "In", frozenset({"web", "api"})),
    )
    selector = Selector(requirements)
    assert (selector.guard_key, selector.guard_values) == ("app", frozenset({"web", "api"}))
    assert not selector.may_match({})
    assert not selector.may_match({"app": "db"})
    assert selector.may_match({"app": "api", "tier": "db"})  # may: matches() decides
    assert not selector.matches({"app": "api", "tier": "db"})
    # Not part of the value: equal requirements are equal selectors.
    assert selector == Selector(requirements)
    assert hash(selector) == hash(Selector(requirements))
    only_not_in = Selector((Requirement("tier", "NotIn", frozenset({"db"})),))
    assert only_not_in.guard_key is None
    assert only_not_in.may_match({})
    assert EVERYTHING.guard_key is None
    assert NOTHING.guard_key is None
    assert Selector(requirements).add([]).guard_key == "app"


def test_index_counts_what_a_pass_over_the_nodes_counts() -> None:
    cache = zoned_cluster(
        ("n1", "a"), ("n2", "a"), ("n3", "b"), namespaces={"prod": {"env": "prod"}, "dev": {}}
    )
    terms = [
        aff_term(HOST, sel(app="web")),
        aff_term(
            ZONE, {"matchExpressions": [{"key": "app", "operator": "In", "values": ["web", "db"]}]}
        ),
        aff_term(ZONE, {"matchExpressions": [{"key": "batch", "operator": "Exists"}]}),
        aff_term(
            HOST, {"matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["web"]}]}
        ),
        aff_term(HOST, sel(app="db"), namespaceSelector=sel(env="prod")),
        aff_term(HOST, {}),
    ]
    for i, term in enumerate(terms):
        _run(cache, f"guard-{i}", f"n{i % 3 + 1}", affinity=affinity(anti=[term]))
    _run(cache, "plain", "n2", labels={"app": "web"})
    guarded = cache.nodes_with_required_anti_affinity_pods()
    index = ExistingAntiAffinityIndex(guarded)
    for namespace in ("default", "prod", "dev"):
        for labels in ({}, {"app": "web"}, {"app": "db"}, {"app": "api", "batch": "1"}):
            pod = make_pod("incoming", namespace=namespace, labels=labels)
            namespace_labels = cache.namespace_labels(namespace)
            expected = existing_anti_affinity_counts(pod, namespace_labels, guarded)
            assert index.counts(pod, namespace_labels) == expected, (namespace, labels)


def test_affinity_generation_moves_with_affinity_pods_and_their_nodes_labels() -> None:
    cache = zoned_cluster(("n1", "a"), ("n2", "b"))
    start = cache.affinity_generation()
    plain = _run(cache, "plain", "n1", labels={"app": "web"})
    cache.remove_pod(plain.uid)
    assert cache.affinity_generation() == start
    guard = _run(cache, "guard", "n1", affinity=affinity(anti=[aff_term(HOST, sel(app="x"))]))
    after_add = cache.affinity_generation()
    assert after_add != start
    # A heartbeat of the node (same labels) keeps it; new labels move it.
    labels = {"kubernetes.io/hostname": "n1", ZONE: "a"}
    cache.set_node(make_node("n1", labels=labels))
    assert cache.affinity_generation() == after_add
    cache.set_node(make_node("n1", labels={**labels, ZONE: "c"}))
    relabelled = cache.affinity_generation()
    assert relabelled != after_add
    cache.set_node(make_node("n2", labels={"kubernetes.io/hostname": "n2", ZONE: "c"}))
    assert cache.affinity_generation() == relabelled  # no affinity pods on n2
    cache.remove_pod(guard.uid)
    assert cache.affinity_generation() != relabelled


def test_one_plugin_follows_existing_anti_affinity_as_the_cache_changes() -> None:
    cache = zoned_cluster(("n1", "a"), ("n2", "a"), ("n3", "b"))
    plugin = InterPodAffinity()  # one instance throughout, as in the scheduler
    noisy = _incoming(labels={"app": "noisy"})
    assert set(pre_filter_verdicts(plugin, noisy, cache).values()) == {None}
    loner = _run(
        cache,
        "loner",
        "n1",
        labels={"app": "loner"},
        affinity=affinity(anti=[aff_term(ZONE, sel(app="noisy"))]),
    )
    assert pre_filter_verdicts(plugin, noisy, cache) == {
        "n1": EXISTING,
        "n2": EXISTING,
        "n3": None,
    }
    quiet = _incoming(labels={"app": "quiet"})
    assert set(pre_filter_verdicts(plugin, quiet, cache).values()) == {None}
    # n2 moves to zone b: the domain of the loner's term is now n1 alone.
    cache.set_node(make_node("n2", labels={"kubernetes.io/hostname": "n2", ZONE: "b"}))
    cache.set_node(make_node("n1", labels={"kubernetes.io/hostname": "n1", ZONE: "c"}))
    assert pre_filter_verdicts(plugin, noisy, cache) == {"n1": EXISTING, "n2": None, "n3": None}
    cache.remove_pod(loner.uid)
    assert set(pre_filter_verdicts(plugin, noisy, cache).values()) == {None}


def test_required_anti_affinity_alone_scores_no_one() -> None:
    cache = zoned_cluster(("n1", "a"), ("n2", "b"))
    plugin = InterPodAffinity()
    _run(
        cache,
        "replica",
        "n1",
        labels={"app": "web"},
        affinity=affinity(anti=[aff_term(HOST, sel(app="web"))]),
    )
    web = _incoming(labels={"app": "web"})
    assert plugin.pre_score(web, cache, cache.nodes()) is None
    _run(cache, "wants-web", "n2", affinity=affinity(required=[aff_term(ZONE, sel(app="web"))]))
    scorer = plugin.pre_score(web, cache, cache.nodes())
    assert scorer is not None
    assert [scorer.score(web, n) for n in cache.nodes()] == [0, 1]  # hardPodAffinityWeight
