"""Side by side with the real kube-scheduler v1.35 on the same control plane.

The same pods go to each scheduler in turn: the same ones must be unschedulable, and every
node we picked must be one kube-scheduler's filters accept (checked by pinning a twin of
each pod to our node and letting kube-scheduler place it).
"""

from __future__ import annotations

import copy
from typing import Any

from tests.e2e.conftest import delete_namespace, new_namespace
from tests.e2e.k8s import pod_manifest, pods_by_name, wait_until
from tests.e2e.scheduler_process import SchedulerProcess

TAINT = {"key": "dedicated", "value": "infra", "effect": "NoSchedule"}
NO_EXEC = {"key": "maintenance", "value": "", "effect": "NoExecute"}


def scenario() -> list[dict[str, Any]]:
    zone_in = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["b", "c"]}]}
                ]
            }
        }
    }
    gt = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {"matchExpressions": [{"key": "cores", "operator": "Gt", "values": ["6"]}]}
                ]
            }
        }
    }
    not_a = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {
                        "matchExpressions": [
                            {"key": "zone", "operator": "NotIn", "values": ["a"]},
                            {"key": "disk", "operator": "Exists"},
                        ]
                    }
                ]
            }
        }
    }
    tolerate_infra = [
        {"key": "dedicated", "operator": "Equal", "value": "infra", "effect": "NoSchedule"}
    ]
    tolerate_all = [{"operator": "Exists"}]
    pods = [
        pod_manifest("plain-1"),
        pod_manifest("plain-2", cpu="1", memory="1Gi"),
        pod_manifest("sel-ssd", node_selector={"disk": "ssd"}),
        pod_manifest("sel-none", node_selector={"disk": "tape"}),
        pod_manifest("aff-bc", affinity=zone_in),
        pod_manifest("aff-gt", affinity=gt),
        pod_manifest("aff-not-a", affinity=not_a),
        pod_manifest("gpu-1", gpu="1", tolerations=tolerate_infra),
        pod_manifest("gpu-untolerated", gpu="1"),
        pod_manifest("gpu-too-many", gpu="9", tolerations=tolerate_all),
        pod_manifest("tolerate-all", cpu="3", tolerations=tolerate_all),
        pod_manifest("huge-cpu", cpu="100"),
        pod_manifest("huge-mem", memory="1Ti"),
        pod_manifest(
            "sidecar",
            extra_spec={
                "initContainers": [
                    {
                        "name": "proxy",
                        "image": "x",
                        "restartPolicy": "Always",
                        "resources": {"requests": {"cpu": "500m"}},
                    },
                    {"name": "init", "image": "x", "resources": {"requests": {"cpu": "7"}}},
                ]
            },
        ),
        pod_manifest(
            "init-too-big",
            extra_spec={
                "initContainers": [
                    {"name": "init", "image": "x", "resources": {"requests": {"cpu": "20"}}}
                ]
            },
        ),
        pod_manifest(
            "node-name-ok",
            affinity={
                "nodeAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": {
                        "nodeSelectorTerms": [
                            {
                                "matchFields": [
                                    {"key": "metadata.name", "operator": "In", "values": ["cmp-c1"]}
                                ]
                            }
                        ]
                    }
                }
            },
        ),
    ]
    # Nodes here declare no ephemeral-storage: both schedulers must refuse this one.
    scratch = pod_manifest("scratch")
    scratch["spec"]["containers"][0]["resources"]["requests"]["ephemeral-storage"] = "1Gi"
    return [*pods, scratch]


def settled(core: Any, ns: str, count: int) -> dict[str, Any] | None:
    pods = pods_by_name(core, ns)
    if len(pods) < count:
        return None
    for pod in pods.values():
        if pod.spec.node_name:
            continue
        if not any(
            c.type == "PodScheduled" and c.status == "False" for c in pod.status.conditions or []
        ):
            return None
    return pods


def settle_round(core: Any, pods: list[dict[str, Any]], scheduler: str) -> dict[str, Any]:
    """The pods, created in a fresh namespace for ``scheduler``, once each is bound or
    marked unschedulable (the namespace is deleted afterwards)."""
    ns = new_namespace(core)
    try:
        for original in pods:
            manifest = copy.deepcopy(original)
            manifest["spec"]["schedulerName"] = scheduler
            core.create_namespaced_pod(ns, manifest)
        result: dict[str, Any] = wait_until(
            lambda: settled(core, ns, len(pods)), timeout=60, what=f"{scheduler} settled"
        )
        return result
    finally:
        delete_namespace(core, ns)


def run_round(core: Any, pods: list[dict[str, Any]], scheduler: str) -> dict[str, str | None]:
    return {name: pod.spec.node_name for name, pod in settle_round(core, pods, scheduler).items()}


def test_same_unschedulable_set_and_every_placement_accepted_by_kube_scheduler(
    core_api: Any, node_factory: Any, workload_scheduler: SchedulerProcess
) -> None:
    node_factory("cmp-a1", cpu="4", memory="8Gi", labels={"zone": "a", "disk": "ssd", "cores": "4"})
    node_factory(
        "cmp-b1", cpu="8", memory="16Gi", labels={"zone": "b", "disk": "hdd", "cores": "8"}
    )
    node_factory("cmp-c1", cpu="8", memory="32Gi", labels={"zone": "c", "cores": "8"})
    node_factory(
        "cmp-gpu",
        cpu="16",
        memory="64Gi",
        extra={"nvidia.com/gpu": "4"},
        labels={"zone": "a", "cores": "16"},
        taints=[TAINT],
    )
    node_factory("cmp-maint", cpu="64", memory="256Gi", labels={"zone": "b"}, taints=[NO_EXEC])
    pods = scenario()
    ours = run_round(core_api, pods, "workload-scheduler")
    theirs = run_round(core_api, pods, "default-scheduler")
    assert {n for n, node in ours.items() if not node} == {
        n for n, node in theirs.items() if not node
    }
    assert {n for n, node in ours.items() if not node} >= {
        "sel-none",
        "gpu-untolerated",
        "gpu-too-many",
        "huge-cpu",
        "huge-mem",
        "init-too-big",
    }

    # Every node we chose, offered to kube-scheduler as the only choice: it must accept.
    twins = []
    for manifest in pods:
        node = ours[manifest["metadata"]["name"]]
        if not node:
            continue
        twin = copy.deepcopy(manifest)
        affinity = twin["spec"].setdefault("affinity", {})
        required = affinity.setdefault("nodeAffinity", {}).setdefault(
            "requiredDuringSchedulingIgnoredDuringExecution", {"nodeSelectorTerms": [{}]}
        )
        for term in required["nodeSelectorTerms"]:
            term["matchFields"] = [{"key": "metadata.name", "operator": "In", "values": [node]}]
        twins.append(twin)
    pinned = run_round(core_api, twins, "default-scheduler")
    rejected = {n: ours[n] for n, node in pinned.items() if node != ours[n]}
    assert not rejected, f"kube-scheduler refused our placements: {rejected}"
