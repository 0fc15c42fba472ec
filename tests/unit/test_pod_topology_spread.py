"""PodTopologySpread against kube-scheduler's semantics (cases after upstream's filtering and
scoring test tables, with our own data)."""

from __future__ import annotations

import random
from typing import Any

import pytest
from factories import make_node, make_pod, pre_filter_verdicts, zoned_cluster

from scheduler.cache.cluster_cache import ClusterCache
from scheduler.config import ConfigError, Settings
from scheduler.framework.cycle import Profile, pick_node
from scheduler.framework.labels import compile_selector
from scheduler.framework.plugins import PodTopologySpread, SpreadDefaults
from scheduler.framework.plugins.pod_topology_spread import spread_defaults
from scheduler.framework.podinfo import InvalidPodError, make_pod_info
from scheduler.framework.types import PodInfo
from scheduler.model.objects import LabelSelector, OwnerReference, TopologySpreadConstraint

HOST = "kubernetes.io/hostname"
ZONE = "zone"
SPREAD = "node(s) didn't match pod topology spread constraints"
MISSING = SPREAD + " (missing required label)"
WEB_SELECTOR = LabelSelector(match_labels={"app": "web"})


def spread(
    key: str = ZONE,
    max_skew: int = 1,
    when: str = "DoNotSchedule",
    selector: dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    return {
        "maxSkew": max_skew,
        "topologyKey": key,
        "whenUnsatisfiable": when,
        "labelSelector": {"matchLabels": {"app": "web"}} if selector is None else selector,
        **extra,
    }


cluster = zoned_cluster


def verdicts(cache: ClusterCache, pod: PodInfo) -> dict[str, str | None]:
    return pre_filter_verdicts(PodTopologySpread(), pod, cache)


def run(cache: ClusterCache, node: str, n: int = 1, **kwargs: Any) -> None:
    kwargs.setdefault("labels", {"app": "web"})
    for _ in range(n):
        name = f"p{cache.pod_count}"
        cache.set_assigned_pod(make_pod_info(make_pod(name, cpu="10m", **kwargs)), node)


def incoming(*constraints: dict[str, Any], **kwargs: Any) -> PodInfo:
    kwargs.setdefault("labels", {"app": "web"})
    return make_pod_info(
        make_pod("incoming", cpu="10m", topologySpreadConstraints=list(constraints), **kwargs)
    )


# -- filter ---------------------------------------------------------------------------------


def test_no_hard_constraints_is_skipped() -> None:
    cache = cluster(("n1", "a"))
    assert PodTopologySpread().pre_filter(make_pod_info(make_pod("p")), cache) is None
    soft = incoming(spread(when="ScheduleAnyway"))
    assert PodTopologySpread().pre_filter(soft, cache) is None


def test_max_skew_by_zone() -> None:
    cache = cluster(("a1", "a"), ("a2", "a"), ("b1", "b"))
    run(cache, "a1")
    run(cache, "a2")
    assert verdicts(cache, incoming(spread())) == {"a1": SPREAD, "a2": SPREAD, "b1": None}
    assert set(verdicts(cache, incoming(spread(max_skew=3))).values()) == {None}


def test_node_without_the_topology_label() -> None:
    cache = cluster(("a1", "a"), ("bare", ""))
    assert verdicts(cache, incoming(spread())) == {"a1": None, "bare": MISSING}


def test_pod_not_matching_its_own_selector_adds_nothing() -> None:
    cache = cluster(("a1", "a"), ("b1", "b"))
    run(cache, "a1")
    pod = incoming(spread(), labels={"app": "other"})
    assert verdicts(cache, pod) == {"a1": None, "b1": None}


def test_min_domains_treats_the_global_minimum_as_zero() -> None:
    cache = cluster(("a1", "a"), ("b1", "b"))
    run(cache, "a1")
    run(cache, "b1")
    assert set(verdicts(cache, incoming(spread())).values()) == {None}
    assert set(verdicts(cache, incoming(spread(minDomains=3))).values()) == {SPREAD}


def test_node_affinity_policy() -> None:
    cache = cluster(("a1", "a"), ("b1", "b"), ("c1", "c"))
    run(cache, "a1")
    run(cache, "b1")
    not_c = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {"matchExpressions": [{"key": ZONE, "operator": "In", "values": ["a", "b"]}]}
                ]
            }
        }
    }
    honor = verdicts(cache, incoming(spread(), affinity=not_c))
    assert honor == {"a1": None, "b1": None, "c1": None}  # c is not counted: minimum 1
    ignore = verdicts(cache, incoming(spread(nodeAffinityPolicy="Ignore"), affinity=not_c))
    assert ignore == {"a1": SPREAD, "b1": SPREAD, "c1": None}


def test_node_taints_policy() -> None:
    cache = cluster(
        ("a1", "a"),
        ("b1", "b"),
        taints={"b1": [{"key": "dedicated", "value": "x", "effect": "NoSchedule"}]},
    )
    run(cache, "a1")
    assert verdicts(cache, incoming(spread()))["a1"] == SPREAD  # b (0 pods) counts
    honor = verdicts(cache, incoming(spread(nodeTaintsPolicy="Honor")))
    assert honor["a1"] is None
    tolerant = incoming(
        spread(nodeTaintsPolicy="Honor"),
        tolerations=[{"key": "dedicated", "operator": "Exists"}],
    )
    assert verdicts(cache, tolerant)["a1"] == SPREAD


def test_match_label_keys_namespace_and_terminating_pods() -> None:
    cache = cluster(("a1", "a"), ("b1", "b"))
    run(cache, "a1", labels={"app": "web", "rev": "1"})
    run(cache, "a1", labels={"app": "web"}, namespace="other")
    pod = incoming(spread(matchLabelKeys=["rev"]), labels={"app": "web", "rev": "2"})
    assert verdicts(cache, pod) == {"a1": None, "b1": None}
    same_rev = incoming(spread(matchLabelKeys=["rev"]), labels={"app": "web", "rev": "1"})
    assert verdicts(cache, same_rev) == {"a1": SPREAD, "b1": None}


def test_terminating_pods_are_not_counted() -> None:
    cache = cluster(("a1", "a"), ("b1", "b"))
    pod = make_pod("old", cpu="10m", labels={"app": "web"})
    pod.metadata.deletion_timestamp = "2026-01-01T00:00:00Z"
    cache.set_assigned_pod(make_pod_info(pod), "a1")
    assert verdicts(cache, incoming(spread())) == {"a1": None, "b1": None}


def test_every_constraint_must_hold() -> None:
    cache = cluster(("a1", "a"), ("a2", "a"), ("b1", "b"))
    run(cache, "a1")
    run(cache, "b1")
    pod = incoming(spread(), spread(key=HOST))
    assert verdicts(cache, pod) == {"a1": SPREAD, "a2": None, "b1": SPREAD}


def test_malformed_selector_is_an_invalid_pod() -> None:
    bad = {"matchExpressions": [{"key": "app", "operator": "Exists", "values": ["x"]}]}
    with pytest.raises(InvalidPodError, match="topologySpreadConstraints"):
        incoming(spread(selector=bad))


def test_four_pods_over_two_zones_go_two_and_two() -> None:
    cache = cluster(("a1", "a"), ("a2", "a"), ("b1", "b"))
    profile = Profile.default(cluster=cache)
    rng = random.Random(3)
    zones = []
    for i in range(4):
        pod = make_pod_info(
            make_pod(
                f"w{i}", cpu="10m", labels={"app": "web"}, topologySpreadConstraints=[spread()]
            )
        )
        node, _ = pick_node(profile, pod, cache.nodes(), rng)
        assert node is not None
        cache.assume(pod, node.name)
        zones.append(node.node.metadata.labels[ZONE])
    assert sorted(zones) == ["a", "a", "b", "b"]


# -- score ----------------------------------------------------------------------------------


def scores(cache: ClusterCache, pod: PodInfo) -> dict[str, int] | None:
    nodes = cache.nodes()
    scorer = PodTopologySpread().pre_score(pod, cache, nodes)
    if scorer is None:
        return None
    assert scorer.weight == 2
    raw = [scorer.score(pod, n) for n in nodes]
    scorer.normalize(raw)
    return {n.name: s for n, s in zip(nodes, raw, strict=True)}


def test_soft_zone_spread_prefers_the_emptier_zone() -> None:
    cache = cluster(("a1", "a"), ("b1", "b"))
    run(cache, "a1", 2)
    # a: 2 * ln(4) = 2.77 -> 3, b: 0; reversed and scaled.
    assert scores(cache, incoming(spread(when="ScheduleAnyway"))) == {"a1": 0, "b1": 100}


def test_soft_spread_max_skew_waters_down_differences() -> None:
    cache = cluster(("a1", "a"), ("b1", "b"))
    run(cache, "a1", 2)
    # a: 2.77 + 4 -> 7, b: 0 + 4 = 4: 100 * (7 + 4 - s) / 7.
    assert scores(cache, incoming(spread(when="ScheduleAnyway", max_skew=5))) == {
        "a1": 57,
        "b1": 100,
    }


def test_soft_hostname_spread_counts_per_node_and_ignores_unlabelled_nodes() -> None:
    cache = cluster(("n1", "a"), ("n2", "a"), ("n3", ""))
    run(cache, "n1", 3)
    run(cache, "n2", 1)
    pod = incoming(spread(key=HOST, when="ScheduleAnyway"), spread(when="ScheduleAnyway"))
    # n3 lacks the zone label: ignored, scored 0. Zone a (one domain): 4 * ln(3) each;
    # hostname (2 nodes): 3 * ln(4) and 1 * ln(4). n1: 8.55 -> 9, n2: 5.78 -> 6;
    # 100 * (9 + 6 - s) / 9.
    assert scores(cache, pod) == {"n1": 66, "n2": 100, "n3": 0}


def test_nothing_counted_scores_every_node_the_most() -> None:
    cache = cluster(("a1", "a"), ("b1", "b"))
    assert scores(cache, incoming(spread(when="ScheduleAnyway"))) == {"a1": 100, "b1": 100}
    assert scores(cache, incoming(spread())) is None


# -- default constraints --------------------------------------------------------------------


def owned_pod(name: str, owner_kind: str = "ReplicaSet", **kwargs: Any) -> PodInfo:
    pod = make_pod(name, cpu="10m", labels={"app": "web"}, **kwargs)
    pod.metadata.owner_references = [
        OwnerReference(api_version="apps/v1", kind=owner_kind, name="web-rs", controller=True)
    ]
    return make_pod_info(pod)


def test_system_defaults_spread_pods_of_a_replica_set_by_host_and_zone() -> None:
    cache = cluster(("a1", "a"), ("a2", "a"), ("bare", ""))
    for node in cache.nodes():  # the well-known zone label, as the defaults use it
        labels = dict(node.node.metadata.labels)
        if ZONE in labels:
            labels["topology.kubernetes.io/zone"] = labels.pop(ZONE)
        cache.set_node(make_node(node.name, labels=labels))
    cache.set_controller("ReplicaSet", "default", "web-rs", compile_selector(WEB_SELECTOR))
    cache.set_assigned_pod(owned_pod("web-0"), "a1")
    cache.set_assigned_pod(owned_pod("web-1"), "a1")
    pod = owned_pod("web-2")
    plugin = PodTopologySpread()
    assert plugin.pre_filter(pod, cache) is None  # soft only
    scorer = plugin.pre_score(pod, cache, cache.nodes())
    assert scorer is not None
    assert [(c.topology_key, c.max_skew) for c in scorer.constraints] == [
        (HOST, 3),
        ("topology.kubernetes.io/zone", 5),
    ]
    # The node without a zone still takes part (hostname spreading): not ignored.
    assert not scorer.ignored
    nodes = cache.nodes()
    raw = [scorer.score(pod, n) for n in nodes]
    scorer.normalize(raw)
    by_name = dict(zip([n.name for n in nodes], raw, strict=True))
    assert by_name["a1"] < by_name["a2"] and by_name["a1"] < by_name["bare"]


def test_defaults_need_a_service_or_a_controller() -> None:
    cache = cluster(("a1", "a"))
    bare = make_pod_info(make_pod("bare", labels={"app": "web"}))
    assert PodTopologySpread().pre_score(bare, cache, cache.nodes()) is None
    # An owner we do not know yet, or of another kind, adds nothing either.
    assert PodTopologySpread().pre_score(owned_pod("p"), cache, cache.nodes()) is None
    assert PodTopologySpread().pre_score(owned_pod("j", "Job"), cache, cache.nodes()) is None
    cache.set_service("default", "web", {"app": "web"})
    scorer = PodTopologySpread().pre_score(bare, cache, cache.nodes())
    assert scorer is not None
    assert scorer.constraints[0].selector.matches({"app": "web"})
    assert not scorer.constraints[0].selector.matches({"app": "db"})
    cache.delete_service("default", "web")
    assert PodTopologySpread().pre_score(bare, cache, cache.nodes()) is None


def test_list_defaulting() -> None:
    cache = cluster(("a1", "a"), ("b1", "b"))
    cache.set_service("default", "web", {"app": "web"})
    pod = make_pod_info(make_pod("p", labels={"app": "web"}))
    off = PodTopologySpread(defaults=SpreadDefaults("List", ()))
    assert off.pre_score(pod, cache, cache.nodes()) is None
    hard = TopologySpreadConstraint(
        max_skew=1, topology_key=ZONE, when_unsatisfiable="DoNotSchedule"
    )
    listed = PodTopologySpread(defaults=SpreadDefaults("List", (hard,)))
    run(cache, "a1")
    state = listed.pre_filter(pod, cache)
    assert state is not None
    assert state.filter(pod, cache.nodes()[0]) == (SPREAD,)
    # A pod's own constraints replace the defaults.
    own = incoming(spread(max_skew=5))
    assert listed.pre_filter(own, cache) is not None
    assert listed.pre_filter(own, cache).constraints[0].max_skew == 5  # type: ignore[union-attr]


def test_settings_describe_the_defaulting() -> None:
    def defaults(settings: Settings) -> SpreadDefaults:
        settings.validate()
        return spread_defaults(
            settings.topology_spread_defaulting, settings.topology_spread_default_constraints
        )

    assert defaults(Settings()) == SpreadDefaults()
    listed = defaults(
        Settings(
            topology_spread_defaulting="List",
            topology_spread_default_constraints=[
                {"maxSkew": 2, "topologyKey": ZONE, "whenUnsatisfiable": "ScheduleAnyway"}
            ],
        )
    )
    assert listed.in_use == (
        TopologySpreadConstraint(
            max_skew=2, topology_key=ZONE, when_unsatisfiable="ScheduleAnyway"
        ),
    )
    with pytest.raises(ConfigError, match="System or List"):
        Settings(topology_spread_defaulting="Off").validate()
    with pytest.raises(ConfigError, match="no labelSelector"):
        Settings(
            topology_spread_defaulting="List",
            topology_spread_default_constraints=[
                {**spread(when="ScheduleAnyway"), "labelSelector": {}}
            ],
        ).validate()
    bad = {"maxSkew": 0, "topologyKey": ZONE, "whenUnsatisfiable": "ScheduleAnyway"}
    with pytest.raises(ConfigError, match="maxSkew"):
        Settings(
            topology_spread_defaulting="List", topology_spread_default_constraints=[bad]
        ).validate()
    with pytest.raises(ConfigError, match="need topology_spread_defaulting: List"):
        Settings(topology_spread_default_constraints=[spread()]).validate()
