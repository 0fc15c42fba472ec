"""Inter-pod anti-affinity and topology spread side by side with the real kube-scheduler
v1.35 on the same control plane (issue 12's table): same counts bound and Pending, same
"0/N nodes are available" text, and every node we chose accepted by kube-scheduler."""

from __future__ import annotations

import copy
from collections import Counter
from typing import Any

from tests.e2e.k8s import pod_manifest
from tests.e2e.scheduler_process import SchedulerProcess
from tests.e2e.test_compare_kube_scheduler import run_round, settle_round

HOST = "kubernetes.io/hostname"
ZONE = "topology.kubernetes.io/zone"


def replicas() -> list[dict[str, Any]]:
    """6 replicas, one per node at most, for 3 nodes."""
    anti = {
        "podAntiAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": {"matchLabels": {"app": "anti"}}, "topologyKey": HOST}
            ]
        }
    }
    return [
        pod_manifest(
            f"anti-{i}", labels={"app": "anti"}, node_selector={"parity": "anti"}, affinity=anti
        )
        for i in range(6)
    ]


def spread_pods() -> list[dict[str, Any]]:
    """4 pods, maxSkew 1 over 2 zones (2 nodes in one zone, 1 in the other)."""
    constraint = {
        "maxSkew": 1,
        "topologyKey": ZONE,
        "whenUnsatisfiable": "DoNotSchedule",
        "labelSelector": {"matchLabels": {"app": "spread"}},
    }
    return [
        pod_manifest(
            f"spread-{i}",
            labels={"app": "spread"},
            node_selector={"parity": "spread"},
            extra_spec={"topologySpreadConstraints": [constraint]},
        )
        for i in range(4)
    ]


def messages_round(core: Any, pods: list[dict[str, Any]], scheduler: str) -> dict[str, Any]:
    """name -> ("bound", node) or ("pending", the PodScheduled=False message up to the end of
    the filters' part: kube-scheduler appends its post-filters', "no new claims to
    deallocate, preemption: ...", which we do not run)."""
    out: dict[str, Any] = {}
    for name, pod in settle_round(core, pods, scheduler).items():
        if pod.spec.node_name:
            out[name] = ("bound", pod.spec.node_name)
            continue
        (condition,) = [c for c in pod.status.conditions if c.type == "PodScheduled"]
        out[name] = ("pending", condition.message.split(". ", 1)[0].rstrip(".") + ".")
    return out


def test_anti_affinity_and_spread_match_kube_scheduler(
    core_api: Any, node_factory: Any, workload_scheduler: SchedulerProcess
) -> None:
    for name in ("par-h1", "par-h2", "par-h3"):
        node_factory(name, cpu="4", memory="8Gi", labels={"parity": "anti"})
    node_factory("par-a1", cpu="4", memory="8Gi", labels={"parity": "spread", ZONE: "a"})
    node_factory("par-a2", cpu="4", memory="8Gi", labels={"parity": "spread", ZONE: "a"})
    node_factory("par-b1", cpu="4", memory="8Gi", labels={"parity": "spread", ZONE: "b"})
    zone_of = {"par-a1": "a", "par-a2": "a", "par-b1": "b"}
    pods = replicas() + spread_pods()
    ours = messages_round(core_api, pods, "workload-scheduler")
    theirs = messages_round(core_api, pods, "default-scheduler")
    for result in (ours, theirs):
        anti = [v for n, v in result.items() if n.startswith("anti-")]
        assert Counter(state for state, _ in anti) == {"bound": 3, "pending": 3}
        assert len({node for state, node in anti if state == "bound"}) == 3
        spread = [v for n, v in result.items() if n.startswith("spread-")]
        assert Counter(zone_of[node] for state, node in spread if state == "bound") == {
            "a": 2,
            "b": 2,
        }
    # The same words for the Pending replicas (node counts included).
    assert {v for v in ours.values() if v[0] == "pending"} == {
        v for v in theirs.values() if v[0] == "pending"
    }
    assert any(
        "didn't match pod anti-affinity rules" in m for s, m in ours.values() if s == "pending"
    )

    # Every node we chose, offered to kube-scheduler as the only choice: it must accept.
    placed = {n: node for n, (state, node) in ours.items() if state == "bound"}
    twins = []
    for manifest in pods:
        node = placed.get(manifest["metadata"]["name"])
        if node is None:
            continue
        twin = copy.deepcopy(manifest)
        twin["spec"].setdefault("affinity", {})["nodeAffinity"] = {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node]}]}
                ]
            }
        }
        twins.append(twin)
    pinned = run_round(core_api, twins, "default-scheduler")
    rejected = {n: placed[n] for n, node in pinned.items() if node != placed[n]}
    assert not rejected, f"kube-scheduler refused our placements: {rejected}"
