"""The signature cache never changes a decision: placements with it equal those without.

A stale cached result (a node that filled up, or whose taints changed, still marked
feasible) would show up here as a different placement or an overcommitted node.
"""

from __future__ import annotations

import random
from typing import Any

from factories import make_node, make_pod
from hypothesis import given, settings
from hypothesis import strategies as st

from scheduler.cache.cluster_cache import ClusterCache
from scheduler.framework.batching import SignatureCache
from scheduler.framework.cycle import Profile, pick_node
from scheduler.framework.podinfo import make_pod_info
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
        st.tuples(st.just("gang"), st.integers(0, len(SHAPES) - 1), st.integers(2, 4)),
        st.tuples(st.just("delete"), st.integers(0, 1000)),
        st.tuples(st.just("cordon"), st.integers(0, 1000)),
    ),
    min_size=1,
    max_size=40,
)


def simulate(
    nodes: list[Any], steps: list[Any], batch: SignatureCache | None, seed: int
) -> tuple[list[tuple[str, str | None]], ClusterCache]:
    cache = ClusterCache()
    for i, (cpu, memory, zone, gpu) in enumerate(nodes):
        cache.set_node(
            make_node(
                f"n{i}",
                cpu=cpu,
                memory=memory,
                pods=6,
                labels={"zone": zone},
                allocatable={"nvidia.com/gpu": "2"} if gpu else None,
                taints=[{"key": "gpu", "value": "", "effect": "NoSchedule"}] if gpu else None,
            )
        )
    profile = Profile.default()
    rng = random.Random(seed)
    placed: list[str] = []
    log: list[tuple[str, str | None]] = []
    for n, step in enumerate(steps):
        if step[0] == "pod":
            pod = make_pod_info(make_pod(f"p{n}", **SHAPES[step[1]]))
            node, _ = pick_node(profile, pod, cache.nodes(), rng, batch)
            if node is not None:
                cache.assume(pod, node.name)
                placed.append(pod.uid)
            log.append((pod.key, node.name if node else None))
        elif step[0] == "gang":
            pods = [make_pod_info(make_pod(f"g{n}-{i}", **SHAPES[step[1]])) for i in range(step[2])]
            attempt = place_gang(cache, profile, pods, step[2], rng, batch=batch)
            placed += [p.uid for p, _ in attempt.placed]
            log += sorted((p.key, node) for p, node in attempt.placed)
            log.append((f"gang g{n}", str(attempt.ok(step[2]))))
        elif step[0] == "delete" and placed:
            uid = placed.pop(step[1] % len(placed))
            cache.forget(uid)
            log.append((f"delete {uid}", None))
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
            log.append((f"cordon {info.name}", None))
    return log, cache


def assert_not_overcommitted(cache: ClusterCache) -> None:
    for node in cache.nodes():
        for resource, used in node.requested.items():
            assert used <= node.allocatable.get(resource, 0), (node.name, resource)
        assert len(node.pods) <= node.allocatable.get("pods", 0)


@settings(max_examples=150, deadline=None)
@given(nodes=nodes_strategy, steps=steps_strategy, seed=st.integers(0, 2**16))
def test_placements_are_the_same_with_and_without_the_cache(
    nodes: list[Any], steps: list[Any], seed: int
) -> None:
    without, plain = simulate(nodes, steps, None, seed)
    batch = SignatureCache()
    with_cache, cached = simulate(nodes, steps, batch, seed)
    assert with_cache == without
    assert_not_overcommitted(plain)
    assert_not_overcommitted(cached)


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


def test_unbatchable_pods_bypass_the_cache() -> None:
    cache = ClusterCache()
    cache.set_node(make_node("n0"))
    batch = SignatureCache()
    pod = make_pod_info(
        make_pod(
            "spread",
            cpu="1",
            topologySpreadConstraints=[
                {"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule"}
            ],
        )
    )
    assert pod.signature is None
    node, _ = pick_node(Profile.default(), pod, cache.nodes(), random.Random(0), batch)
    assert node is not None and batch.computed == 0
