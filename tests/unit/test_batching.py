"""The signature cache never makes a worse decision than a full evaluation would.

A stale cached result (a node that filled up, or whose taints changed, still marked
feasible) shows up here as a placement on an infeasible node or a lower-scored one.
"""

from __future__ import annotations

import random
from typing import Any

from factories import make_node, make_pod
from hypothesis import given, settings
from hypothesis import strategies as st

from scheduler.cache.cluster_cache import ClusterCache
from scheduler.framework.batching import SignatureCache
from scheduler.framework.cycle import (
    NodeWalk,
    Profile,
    find_feasible,
    nodes_to_find,
    pick_node,
    score_nodes,
)
from scheduler.framework.podinfo import make_pod_info
from scheduler.framework.types import Unresolvable
from scheduler.gang.placement import place_gang

SHAPES = [
    {"cpu": "500m", "memory": "512Mi"},
    {"cpu": "1", "memory": "1Gi"},
    {
        "cpu": "2",
        "memory": "2Gi",
        "gpu": "1",
        "tolerations": [{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}],
    },
    {"cpu": "250m", "memory": "256Mi", "node_selector": {"zone": "a"}},
    {
        "cpu": "1",
        "memory": "512Mi",
        "affinity": {
            "nodeAffinity": {
                "preferredDuringSchedulingIgnoredDuringExecution": [
                    {
                        "weight": 10,
                        "preference": {
                            "matchExpressions": [{"key": "zone", "operator": "In", "values": ["b"]}]
                        },
                    }
                ]
            }
        },
    },
]

WEB = {"matchLabels": {"app": "web"}}
# Pods whose fit depends on other pods: batching must step aside for them, and for
# plain pods whose labels another pod's anti-affinity or affinity selects.
SHAPES += [
    {"cpu": "250m", "memory": "256Mi", "labels": {"app": "web"}},
    {
        "cpu": "250m",
        "memory": "256Mi",
        "labels": {"app": "web"},
        "affinity": {
            "podAntiAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [
                    {"labelSelector": WEB, "topologyKey": "kubernetes.io/hostname"}
                ]
            }
        },
    },
    {
        "cpu": "500m",
        "memory": "256Mi",
        "labels": {"app": "db"},
        "affinity": {
            "podAffinity": {
                "preferredDuringSchedulingIgnoredDuringExecution": [
                    {"weight": 50, "podAffinityTerm": {"labelSelector": WEB, "topologyKey": "zone"}}
                ]
            }
        },
    },
    {
        "cpu": "250m",
        "memory": "128Mi",
        "labels": {"app": "web"},
        "topologySpreadConstraints": [
            {
                "maxSkew": 1,
                "topologyKey": "zone",
                "whenUnsatisfiable": "DoNotSchedule",
                "labelSelector": WEB,
            },
            {
                "maxSkew": 1,
                "topologyKey": "kubernetes.io/hostname",
                "whenUnsatisfiable": "ScheduleAnyway",
                "labelSelector": WEB,
            },
        ],
    },
]

nodes_strategy = st.lists(
    st.tuples(
        st.sampled_from(["1", "2", "4", "8"]),
        st.sampled_from(["2Gi", "4Gi", "8Gi"]),
        st.sampled_from(["a", "b"]),
        st.booleans(),  # GPU node (tainted)
    ),
    min_size=1,
    max_size=8,
)
# Each step: schedule a pod of a shape, schedule a gang of a shape, delete a placed pod,
# or change a node (taint it, cordon it).
steps_strategy = st.lists(
    st.one_of(
        st.tuples(st.just("pod"), st.integers(0, len(SHAPES) - 1)),
        # Pods that constrain, or are constrained by, other pods: more often.
        st.tuples(st.just("pod"), st.integers(5, len(SHAPES) - 1)),
        st.tuples(st.just("gang"), st.integers(0, len(SHAPES) - 1), st.integers(2, 4)),
        st.tuples(st.just("delete"), st.integers(0, 1000)),
        st.tuples(st.just("cordon"), st.integers(0, 1000)),
    ),
    min_size=1,
    max_size=40,
)


def build_cluster(nodes: list[Any]) -> ClusterCache:
    cache = ClusterCache()
    for i, (cpu, memory, zone, gpu) in enumerate(nodes):
        cache.set_node(
            make_node(
                f"n{i}",
                cpu=cpu,
                memory=memory,
                pods=6,
                labels={"zone": zone, "kubernetes.io/hostname": f"n{i}"},
                allocatable={"nvidia.com/gpu": "2"} if gpu else None,
                taints=[{"key": "gpu", "value": "", "effect": "NoSchedule"}] if gpu else None,
            )
        )
    return cache


def full_evaluation(cache: ClusterCache, pod: Any) -> tuple[set[str], dict[str, int]]:
    """What the plugins say about every node, computed from scratch."""
    profile = Profile.default(cluster=cache)
    extra_filters = []
    for pre_filter in profile.pre_filters:
        verdict = pre_filter.pre_filter(pod, cache)
        assert not isinstance(verdict, Unresolvable)
        if verdict is not None:
            extra_filters.append(verdict)
    fit = find_feasible(profile, pod, cache.nodes(), None, [*profile.filters, *extra_filters])
    scores = [*profile.scores]
    for pre_score in profile.pre_scores:
        scorer = pre_score.pre_score(pod, cache, fit.feasible)
        if scorer is not None:
            scores.append(scorer)
    totals = score_nodes(profile, pod, fit.feasible, scores) if fit.feasible else []
    return {n.name for n in fit.feasible}, {
        n.name: t for n, t in zip(fit.feasible, totals, strict=True)
    }


def assert_not_overcommitted(cache: ClusterCache) -> None:
    for node in cache.nodes():
        for resource, used in node.requested.items():
            assert used <= node.allocatable.get(resource, 0), (node.name, resource)
        assert len(node.pods) <= node.allocatable.get("pods", 0)


@settings(max_examples=200, deadline=None)
@given(nodes=nodes_strategy, steps=steps_strategy, seed=st.integers(0, 2**16))
def test_every_cached_decision_is_a_best_feasible_node(
    nodes: list[Any], steps: list[Any], seed: int
) -> None:
    """With the cache on, each pod goes to a node that a full evaluation of the current
    cluster finds feasible and best-scored (ties may be broken differently), and a pod
    is unschedulable exactly when the full evaluation finds no node."""
    check_every_decision(nodes, steps, seed)


# Where other pods decide: nodes alike but for their zone (so inter-pod affinity and
# spread scores are not drowned by resource scores), only the shapes that carry or are
# selected by pod terms, and deletions that move domain counts back.
alike_nodes_strategy = st.lists(
    st.tuples(st.just("4"), st.just("8Gi"), st.sampled_from(["a", "b"]), st.just(False)),
    min_size=2,
    max_size=6,
)
pod_terms_steps_strategy = st.lists(
    st.one_of(
        st.tuples(st.just("pod"), st.integers(5, len(SHAPES) - 1)),
        st.tuples(st.just("gang"), st.integers(5, len(SHAPES) - 1), st.integers(2, 3)),
        st.tuples(st.just("delete"), st.integers(0, 1000)),
    ),
    min_size=2,
    max_size=30,
)


@settings(max_examples=200, deadline=None)
@given(nodes=alike_nodes_strategy, steps=pod_terms_steps_strategy, seed=st.integers(0, 2**16))
def test_cached_decisions_stay_exact_where_other_pods_decide(
    nodes: list[Any], steps: list[Any], seed: int
) -> None:
    """The same property where inter-pod affinity and topology spread decide: a pod added
    or removed changes those results by domain, and nothing cached may hide it."""
    check_every_decision(nodes, steps, seed)


def check_every_decision(nodes: list[Any], steps: list[Any], seed: int) -> None:
    cache = build_cluster(nodes)
    batch = SignatureCache()
    profile = Profile.default(cluster=cache)
    rng = random.Random(seed)
    placed: list[str] = []
    for n, step in enumerate(steps):
        if step[0] == "pod":
            pod = make_pod_info(make_pod(f"p{n}", **SHAPES[step[1]]))
            feasible, totals = full_evaluation(cache, pod)
            node, _ = pick_node(profile, pod, cache.nodes(), rng, batch)
            if node is None:
                assert not feasible
                continue
            assert node.name in feasible, "a stale result: the node does not fit"
            assert totals[node.name] == max(totals.values()), "not a best-scored node"
            cache.assume(pod, node.name)
            placed.append(pod.uid)
        elif step[0] == "gang":
            pods = [make_pod_info(make_pod(f"g{n}-{i}", **SHAPES[step[1]])) for i in range(step[2])]
            attempt = place_gang(cache, profile, pods, step[2], rng, batch=batch)
            if attempt.ok(step[2]):
                placed += [p.uid for p, _ in attempt.placed]
            else:
                assert all(cache.node_of(p.uid) is None for p in pods)
        elif step[0] == "delete" and placed:
            cache.forget(placed.pop(step[1] % len(placed)))
        elif step[0] == "cordon":
            info = cache.nodes()[step[1] % len(cache.nodes())]
            cache.set_node(
                make_node(
                    info.name,
                    allocatable=dict(info.node.status.allocatable),
                    labels=info.node.metadata.labels,
                    taints=[
                        {"key": t.key, "value": t.value, "effect": t.effect}
                        for t in info.node.spec.taints
                    ],
                    unschedulable=True,
                )
            )
        assert_not_overcommitted(cache)


def test_identical_pods_cost_one_pass_then_one_node_each() -> None:
    cache = ClusterCache()
    for i in range(50):
        cache.set_node(make_node(f"n{i}", cpu="4", memory="8Gi"))
    batch = SignatureCache()
    profile = Profile.default()
    rng = random.Random(1)
    for i in range(20):
        pod = make_pod_info(make_pod(f"w{i}", cpu="1", memory="1Gi"))
        node, _ = pick_node(profile, pod, cache.nodes(), rng, batch)
        assert node is not None
        cache.assume(pod, node.name)
    # 50 nodes evaluated for the first pod, then only the node that took the previous pod.
    assert batch.computed == 50 + 19
    assert batch.reused == 20 * 50 - batch.computed
    assert len({n.name for n in cache.nodes() if n.pods}) == 20  # spread, one per node


def test_unbatchable_pods_bypass_the_cache() -> None:
    cache = ClusterCache()
    cache.set_node(make_node("n0"))
    batch = SignatureCache()
    pod = make_pod_info(
        make_pod(
            "host-path",
            cpu="1",
            volumes=[{"name": "data", "hostPath": {"path": "/data"}}],
        )
    )
    assert pod.signature is None
    node, _ = pick_node(Profile.default(), pod, cache.nodes(), random.Random(0), batch)
    assert node is not None and batch.computed == 0


def test_large_clusters_are_sampled_like_kube_scheduler() -> None:
    assert [nodes_to_find(n) for n in (50, 100, 200, 1000, 5000, 20000)] == [
        50,
        100,
        100,
        420,
        500,
        1000,
    ]
    assert nodes_to_find(1000, percentage=100) == 1000


def test_sampling_rotates_over_all_nodes() -> None:
    cache = ClusterCache()
    for i in range(300):
        cache.set_node(make_node(f"n{i:03d}", cpu="64", memory="256Gi", pods=500))
    walk = NodeWalk(percentage=40)  # 120 of 300 nodes per cycle
    profile = Profile.default()
    rng = random.Random(0)
    used = set()
    for i in range(6):
        pod = make_pod_info(make_pod(f"p{i}", cpu="1"))
        node, fit = pick_node(profile, pod, cache.nodes(), rng, None, walk)
        assert node is not None and len(fit.feasible) == 120
        cache.assume(pod, node.name)
        used.add(node.name)
    assert walk.next_start == (6 * 120) % 300


def test_batchable_pods_step_aside_when_other_pods_constrain_them() -> None:
    """A plain pod has a signature, but an existing pod's anti-affinity (or affinity) that
    selects it makes its fit depend on other pods: no cached result may be used then."""
    cache = ClusterCache()
    for i in range(2):
        cache.set_node(make_node(f"n{i}", labels={"kubernetes.io/hostname": f"n{i}"}))
    profile = Profile.default(cluster=cache)
    batch = SignatureCache()
    rng = random.Random(0)
    web = SHAPES[5]
    first = make_pod_info(make_pod("web-0", **web))
    assert first.signature is not None
    assert pick_node(profile, first, cache.nodes(), rng, batch)[0] is not None  # cached now
    guard = make_pod_info(make_pod("guard", **SHAPES[6]))
    cache.assume(guard, "n0")
    # n1 is full for the next pod: the cached ranking would offer n0.
    cache.assume(make_pod_info(make_pod("filler", cpu="4")), "n1")
    second = make_pod_info(make_pod("web-1", **web))
    node, fit = pick_node(profile, second, cache.nodes(), rng, batch)
    assert node is None
    assert fit.reasons["n0"] == ("node(s) didn't satisfy existing pods anti-affinity rules",)
    # A pod of the same signature that it does not select is batched again, from the cache.
    other = make_pod_info(make_pod("db", **{**web, "labels": {"app": "db"}}))
    assert other.signature == second.signature
    computed = batch.computed
    node, _ = pick_node(profile, other, cache.nodes(), rng, batch)
    assert node is not None and node.name == "n0"
    assert batch.computed == computed + 2  # the two nodes that changed, through the cache


def test_batchable_pods_step_aside_when_other_pods_terms_score_them() -> None:
    cache = ClusterCache()
    for i, zone in enumerate("ab"):
        cache.set_node(make_node(f"n{i}", labels={"zone": zone, "kubernetes.io/hostname": f"n{i}"}))
    profile = Profile.default(cluster=cache)
    batch = SignatureCache()
    rng = random.Random(0)
    web = SHAPES[5]
    assert pick_node(profile, make_pod_info(make_pod("web-0", **web)), cache.nodes(), rng, batch)
    # A pod preferring web pods in its zone, on the node the cache ranks lower.
    cache.assume(make_pod_info(make_pod("db", **SHAPES[7])), "n1")
    _, totals = full_evaluation(cache, make_pod_info(make_pod("web-1", **web)))
    assert totals["n1"] > totals["n0"]
    node, _ = pick_node(profile, make_pod_info(make_pod("web-1", **web)), cache.nodes(), rng, batch)
    assert node is not None and node.name == "n1"
