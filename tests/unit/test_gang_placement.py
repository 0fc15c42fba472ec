"""Gang placement with pruning, best-first domains and early stop, checked against a
brute-force trial of every domain (tests/unit/test_batching.py style)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from typing import Any

from factories import make_node, make_pod
from hypothesis import event, given, settings
from hypothesis import strategies as st

from scheduler.cache.cluster_cache import ClusterCache
from scheduler.framework.batching import SignatureCache
from scheduler.framework.cycle import Profile
from scheduler.framework.podinfo import make_pod_info
from scheduler.framework.types import PodInfo
from scheduler.gang import messages
from scheduler.gang.model import CRD_WORKLOAD, GroupKey, ObjectKey
from scheduler.gang.placement import (
    NODE_LEVEL_FILTERS,
    gang_steps,
    largest_first,
    place_gang,
    place_members,
    run_steps_async,
)

KEY = GroupKey(ObjectKey(CRD_WORKLOAD, "ns", "train"), "workers")
TAINT = {"key": "dedicated", "value": "x", "effect": "NoSchedule"}
TOLERATE = [{"key": "dedicated", "operator": "Exists"}]


class FirstChoice(random.Random):
    """Ties always go to the first candidate: trials become functions of the cache, so
    the brute force and the pass under test must agree node for node."""

    def shuffle(self, x: Any) -> None:  # type: ignore[override]
        return None

    def choice(self, seq: Sequence[Any]) -> Any:
        return seq[0]


# -- clusters and gangs ---------------------------------------------------------------------

node_strategy = st.fixed_dictionaries(
    {
        "cpu": st.sampled_from([1000, 2000, 4000]),
        "slots": st.sampled_from([1, 2, 3, 110]),
        "used": st.integers(0, 4),
        "tainted": st.booleans(),
        "ssd": st.booleans(),
    }
)
cluster_strategy = st.lists(st.lists(node_strategy, min_size=1, max_size=3), min_size=1, max_size=4)
member_strategy = st.fixed_dictionaries(
    {
        "cpu": st.sampled_from(["500m", "1", "1500m"]),
        "ssd": st.booleans(),
        "tolerate": st.booleans(),
    }
)


def build(racks: list[list[dict[str, Any]]]) -> ClusterCache:
    cache = ClusterCache()
    for r, nodes in enumerate(racks):
        for i, spec in enumerate(nodes):
            name = f"r{r}-n{i}"
            labels = {"rack": f"r{r}", **({"disk": "ssd"} if spec["ssd"] else {})}
            cache.set_node(
                make_node(
                    name,
                    cpu=f"{spec['cpu']}m",
                    pods=spec["slots"],
                    labels=labels,
                    taints=[TAINT] if spec["tainted"] else None,
                )
            )
            used = min(spec["used"] * 500, spec["cpu"])
            if used and spec["slots"] > 1:
                load = make_pod_info(make_pod(f"load-{name}", cpu=f"{used}m", node_name=name))
                cache.set_assigned_pod(load, name)
    return cache


def gang_of(members: list[dict[str, Any]]) -> list[PodInfo]:
    return [
        make_pod_info(
            make_pod(
                f"w{i}",
                cpu=m["cpu"],
                node_selector={"disk": "ssd"} if m["ssd"] else None,
                tolerations=TOLERATE if m["tolerate"] else None,
            )
        )
        for i, m in enumerate(members)
    ]


# -- the brute force ----------------------------------------------------------------------------


def usable(profile: Profile, pods: list[PodInfo], node: Any) -> bool:
    node_level = [p for p in profile.filters if p.name in NODE_LEVEL_FILTERS]
    return any(all(f.filter(pod, node) is None for f in node_level) for pod in pods)


def looseness(profile: Profile, pods: list[PodInfo], need: int, nodes: list[Any]) -> float:
    """Free capacity of the usable nodes in units of what the ``need`` smallest ask."""
    total = 0.0
    for resource in {r for p in pods for r in p.requests}:
        asked = sum(sorted(p.requests.get(resource, 0) for p in pods)[:need])
        if not asked:
            continue
        free = sum(
            max(0, n.allocatable.get(resource, 0) - n.requested.get(resource, 0))
            for n in nodes
            if usable(profile, pods, n)
        )
        total += free / asked
    return total


def brute_force(
    racks: list[list[dict[str, Any]]], pods: list[PodInfo], need: int, topology: bool
) -> dict[str | None, tuple[float, list[tuple[str, str]]]]:
    """Every domain tried in full on a fresh cluster: (looseness, placements if it holds
    the gang, else [] ) per domain, and the count each trial placed."""
    profile = Profile.default()
    out = {}
    names: list[str | None] = [f"r{r}" for r in range(len(racks))] if topology else [None]
    for name in names:
        cache = build(racks)
        nodes = [n for n in cache.nodes() if name is None or n.name.startswith(f"{name}-")]
        loose = looseness(profile, pods, need, nodes)
        trial = place_members(cache, profile, pods, nodes, 0, FirstChoice())
        placed = [(p.uid, node) for p, node in trial.placed]
        out[name] = (loose, placed)
    return out


@settings(max_examples=300, deadline=None)
@given(
    racks=cluster_strategy,
    members=st.lists(member_strategy, min_size=1, max_size=6),
    need_cut=st.integers(0, 5),
    topology=st.booleans(),
    batched=st.booleans(),
)
def test_pruned_best_first_pass_matches_brute_force(
    racks: list[list[dict[str, Any]]],
    members: list[dict[str, Any]],
    need_cut: int,
    topology: bool,
    batched: bool,
) -> None:
    pods = gang_of(members)
    need = max(1, len(pods) - need_cut)
    # The oracle: a full trial of every domain (need 0: every member tried, none kept).
    oracle = brute_force(racks, pods, need, topology)
    holding = sorted(
        (loose, name or "", name, placed)
        for name, (loose, placed) in oracle.items()
        if len(placed) >= need
    )
    cache = build(racks)
    before = {n.name: dict(n.requested) for n in cache.nodes()}
    attempt = place_gang(
        cache,
        Profile.default(),
        pods,
        need,
        FirstChoice(),
        topology_key="rack" if topology else None,
        batch=SignatureCache() if batched else None,
    )
    event(f"holds: {bool(holding)}, pruned: {attempt.domains_pruned > 0}")
    event(f"tried: {attempt.domains_tried}")
    if not holding:
        assert not attempt.ok(need)
        assert {n.name: dict(n.requested) for n in cache.nodes()} == before, "left reserved"
        assert len(attempt.shortfalls) == len(oracle)
        for s in attempt.shortfalls:
            full = len(oracle[s.domain][1])
            assert full <= s.at_most, "the capacity bound is not an upper bound"
            if s.fit is not None:
                assert s.fit <= full and s.tried <= len(pods)
                if s.tried < len(pods):  # stopped early: only when need is out of reach
                    assert s.fit + len(pods) - s.tried < need
        return
    loose, label, name, placed = holding[0]
    assert attempt.ok(need)
    assert attempt.domain == name
    # Best-first, stop at the first fit: no domain looser than the winner was tried.
    tighter = [n for n, (lo, _) in oracle.items() if (lo, n or "") <= (loose, label)]
    assert 1 <= attempt.domains_tried <= len(tighter)
    assert sorted((p.uid, node) for p, node in attempt.placed) == sorted(placed)
    for pod, node in attempt.placed:
        assert cache.node_of(pod.uid) == node


def test_only_the_tightest_domain_that_holds_the_gang_is_tried() -> None:
    """The issue's cluster, small: ten racks of four 8-cpu nodes, all but r7 40% full,
    a gang of 40 x 700m fits r7 only: nine racks pruned, one trial."""
    cache = ClusterCache()
    for r in range(10):
        for i in range(4):
            name = f"r{r}-n{i}"
            cache.set_node(make_node(name, cpu="8", memory="32Gi", labels={"rack": f"r{r}"}))
            if r != 7:
                cache.set_assigned_pod(
                    make_pod_info(make_pod(f"load-{name}", cpu="3200m", node_name=name)), name
                )
    pods = [make_pod_info(make_pod(f"w{i}", cpu="700m")) for i in range(40)]
    attempt = place_gang(cache, Profile.default(), pods, 40, random.Random(1), topology_key="rack")
    assert attempt.ok(40) and attempt.domain == "r7"
    assert (attempt.domains_pruned, attempt.domains_tried) == (9, 1)
    assert {node.split("-")[0] for _, node in attempt.placed} == {"r7"}

    bigger = [make_pod_info(make_pod(f"b{i}", cpu="900m")) for i in range(40)]
    for pod, _ in attempt.placed:
        cache.forget(pod.uid)
    failed = place_gang(cache, Profile.default(), bigger, 40, random.Random(1), topology_key="rack")
    assert not failed.ok(40) and (failed.domains_pruned, failed.domains_tried) == (10, 0)
    assert messages.cannot_place(KEY, bigger, 40, failed, "rack") == (
        "gang ns/train/workers needs 40 x {cpu: 900m} in one rack domain; none of 10 rack "
        "domains holds it: best rack r7: short by 4 cpu (at most 32 fit)"
    )


def test_domains_whose_nodes_fail_node_level_filters_are_not_tried() -> None:
    cache = ClusterCache()
    for r in range(3):
        for i in range(2):
            cache.set_node(
                make_node(
                    f"r{r}-n{i}",
                    labels={"rack": f"r{r}"},
                    taints=[TAINT] if r < 2 else None,
                )
            )
    pods = [make_pod_info(make_pod(f"w{i}", cpu="1")) for i in range(3)]
    attempt = place_gang(cache, Profile.default(), pods, 3, random.Random(0), topology_key="rack")
    assert attempt.ok(3) and attempt.domain == "r2" and attempt.domains_tried == 1
    many = [make_pod_info(make_pod(f"m{i}", cpu="1")) for i in range(9)]
    failed = place_gang(cache, Profile.default(), many, 9, random.Random(0), topology_key="rack")
    best = failed.best_shortfall()
    assert best is not None and best.domain == "r2" and best.short == {"cpu": 4000}
    tainted = [s for s in failed.shortfalls if s.domain != "r2"]
    assert all(s.usable == 0 and s.at_most == 0 and s.fit is None for s in tainted)
    assert messages.shortfall(tainted[0], 9) == "2 nodes had untolerated taint(s)"
    assert messages.cannot_place(KEY, many, 9, failed, "rack") == (
        "gang ns/train/workers needs 9 x {cpu: 1} in one rack domain; none of 3 rack domains "
        "holds it: best rack r2: short by 4 cpu (at most 5 fit)"
    )


def test_a_trial_stops_at_the_first_member_that_leaves_need_out_of_reach() -> None:
    cache = ClusterCache()
    for i in range(2):
        cache.set_node(make_node(f"n{i}", cpu="8"))
    # The capacity sums allow all six, but the big ones share a host port: one per node.
    # The third big one finds no node and the other three can no longer make six.
    big = [make_pod_info(make_pod(f"b{i}", cpu="3", host_ports=[80])) for i in range(3)]
    small = [make_pod_info(make_pod(f"s{i}", cpu="100m")) for i in range(3)]
    attempt = place_gang(cache, Profile.default(), big + small, 6, random.Random(0))
    assert not attempt.ok(6)
    assert attempt.tried == 3 and len(attempt.placed) == 2  # the third big one ends it
    assert messages.cannot_place(KEY, big + small, 6, attempt, None) == (
        "gang ns/train/workers needs 3 x {cpu: 3} + 3 x {cpu: 100m}; only 2 of the first 3 "
        "fit: 2 nodes didn't have free ports for the requested pod ports"
    )
    assert all(not n.pods for n in cache.nodes())


def test_largest_member_first_order_is_kept() -> None:
    pods = [make_pod_info(make_pod(f"w{i}", cpu=c)) for i, c in enumerate(["1", "3", "2"])]
    assert [p.key for p in largest_first(pods)] == ["default/w1", "default/w2", "default/w0"]


def test_async_pass_yields_to_the_loop_and_gives_the_same_answer() -> None:
    def cluster() -> ClusterCache:
        cache = ClusterCache()
        for r in range(5):
            for i in range(4):
                cache.set_node(make_node(f"r{r}-n{i}", cpu="8", labels={"rack": f"r{r}"}))
        return cache

    pods = [make_pod_info(make_pod(f"w{i}", cpu="1")) for i in range(30)]
    expected = place_gang(
        cluster(), Profile.default(), pods, 30, FirstChoice(), topology_key="rack"
    )
    ticks = iter(range(10**6))

    def clock() -> float:
        return next(ticks) * 0.001  # every step "takes" 1 ms

    async def run() -> tuple[Any, int]:
        seen = 0

        async def other() -> None:
            nonlocal seen
            while True:
                seen += 1
                await asyncio.sleep(0)

        task = asyncio.create_task(other())
        steps = gang_steps(
            cluster(), Profile.default(), pods, 30, FirstChoice(), topology_key="rack"
        )
        result = await run_steps_async(steps, 0.005, clock)
        task.cancel()
        return result, seen

    result, seen = asyncio.run(run())
    assert result.domain == expected.domain and len(result.placed) == len(expected.placed)
    assert seen >= 5, "the pass never let the other task run"
