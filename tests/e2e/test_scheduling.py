"""Ordinary pods on a real API server: feasibility, reporting, capacity, isolation."""

from __future__ import annotations

import random
from typing import Any

from kubernetes.client.rest import ApiException

from scheduler.model.quantity import to_int
from tests.e2e.k8s import (
    failed_scheduling_message,
    placements,
    pod_manifest,
    pods_by_name,
    wait_until,
)
from tests.e2e.scheduler_process import SchedulerProcess

GPU_TAINT = {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}
TOLERATE_GPU = [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]


def bound(core: Any, ns: str, names: list[str]) -> dict[str, str]:
    current = placements(core, ns)
    return {n: current[n] for n in names if current.get(n)}  # type: ignore[misc]


def test_pods_land_only_on_feasible_nodes(
    core_api: Any, namespace: str, node_factory: Any, workload_scheduler: SchedulerProcess
) -> None:
    node_factory("plain-a", cpu="4", memory="8Gi", labels={"zone": "a", "disk": "ssd"})
    node_factory("plain-b", cpu="4", memory="8Gi", labels={"zone": "b"})
    node_factory(
        "gpu-a",
        cpu="8",
        memory="32Gi",
        extra={"nvidia.com/gpu": "2"},
        labels={"zone": "a"},
        taints=[GPU_TAINT],
    )
    node_factory("cordoned", cpu="64", memory="256Gi", labels={"zone": "a"}, unschedulable=True)
    zone_b = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["b"]}]}
                ]
            }
        }
    }
    expected = {
        "ssd": ({"plain-a"}, pod_manifest("ssd", node_selector={"disk": "ssd"})),
        "zone-b": ({"plain-b"}, pod_manifest("zone-b", affinity=zone_b)),
        "gpu": ({"gpu-a"}, pod_manifest("gpu", gpu="1", tolerations=TOLERATE_GPU)),
        "big": ({"gpu-a"}, pod_manifest("big", cpu="6", tolerations=TOLERATE_GPU)),
        "any": ({"plain-a", "plain-b"}, pod_manifest("any")),
    }
    for _, manifest in expected.values():
        core_api.create_namespaced_pod(namespace, manifest)
    result = wait_until(
        lambda: (
            len(bound(core_api, namespace, list(expected))) == len(expected)
            and bound(core_api, namespace, list(expected))
        ),
        what="all pods bound",
    )
    for name, (allowed, _) in expected.items():
        assert result[name] in allowed, f"{name} landed on {result[name]}, allowed {allowed}"


def test_pods_of_other_schedulers_are_left_alone(
    core_api: Any, namespace: str, node_factory: Any, workload_scheduler: SchedulerProcess
) -> None:
    node_factory("n1")
    core_api.create_namespaced_pod(namespace, pod_manifest("theirs", scheduler="someone-else"))
    core_api.create_namespaced_pod(namespace, pod_manifest("ours"))
    wait_until(lambda: bound(core_api, namespace, ["ours"]), what="our pod bound")
    pod = core_api.read_namespaced_pod("theirs", namespace)
    assert pod.spec.node_name is None
    assert not [c for c in (pod.status.conditions or []) if c.type == "PodScheduled"]


def test_unplaceable_pod_is_told_why_then_bound_when_a_node_fits(
    core_api: Any, namespace: str, node_factory: Any, workload_scheduler: SchedulerProcess
) -> None:
    node_factory("small-1", cpu="2", memory="4Gi")
    node_factory("small-2", cpu="2", memory="4Gi")
    node_factory("tainted", cpu="16", memory="64Gi", taints=[GPU_TAINT])
    core_api.create_namespaced_pod(namespace, pod_manifest("wide", cpu="8", memory="1Gi"))
    message = wait_until(
        lambda: failed_scheduling_message(core_api, namespace, "wide"),
        what="a FailedScheduling event",
    )
    assert message == (
        "0/3 nodes are available: 1 node(s) had untolerated taint(s), "
        "2 Insufficient cpu. no new claims to deallocate, preemption: 0/3 nodes are available: "
        "3 Preemption is not helpful for scheduling."
    )
    condition = next(
        c
        for c in core_api.read_namespaced_pod("wide", namespace).status.conditions
        if c.type == "PodScheduled"
    )
    assert (condition.status, condition.reason) == ("False", "Unschedulable")
    node_factory("large", cpu="16", memory="64Gi")
    wait_until(
        lambda: bound(core_api, namespace, ["wide"]).get("wide") == "large",
        timeout=20,
        what="the pod bound to the new node",
    )


def test_freed_capacity_is_reused(
    core_api: Any, namespace: str, node_factory: Any, workload_scheduler: SchedulerProcess
) -> None:
    node_factory("only", cpu="2", memory="4Gi")
    core_api.create_namespaced_pod(namespace, pod_manifest("first", cpu="1500m"))
    wait_until(lambda: bound(core_api, namespace, ["first"]), what="first bound")
    core_api.create_namespaced_pod(namespace, pod_manifest("second", cpu="1500m"))
    wait_until(
        lambda: failed_scheduling_message(core_api, namespace, "second"),
        what="second reported unschedulable",
    )
    # The first pod finishes (no kubelet here: we write its phase ourselves).
    core_api.patch_namespaced_pod_status("first", namespace, {"status": {"phase": "Succeeded"}})
    wait_until(lambda: bound(core_api, namespace, ["second"]), timeout=20, what="second bound")


def test_no_node_is_overcommitted_with_500_pods_on_20_nodes(
    core_api: Any, namespace: str, node_factory: Any, workload_scheduler: SchedulerProcess
) -> None:
    rng = random.Random(7)
    sizes = [("2", "4Gi"), ("4", "8Gi"), ("8", "16Gi"), ("16", "64Gi")]
    nodes = {}
    for i in range(20):
        cpu, mem = sizes[i % len(sizes)]
        gpus = {"nvidia.com/gpu": "4"} if i % 5 == 0 else {}
        node_factory(f"mixed-{i:02d}", cpu=cpu, memory=mem, pods=30, extra=gpus)
        nodes[f"mixed-{i:02d}"] = (int(cpu) * 1000, _gi(mem), 30, 4 if gpus else 0)
    names = []
    for i in range(500):
        cpu_m = rng.choice([100, 250, 500, 1000])
        mem_mi = rng.choice([128, 256, 512, 1024])
        gpu = "1" if rng.random() < 0.05 else None
        name = f"p{i:03d}"
        core_api.create_namespaced_pod(
            namespace, pod_manifest(name, cpu=f"{cpu_m}m", memory=f"{mem_mi}Mi", gpu=gpu)
        )
        names.append(name)

    def settled() -> dict[str, Any] | None:
        pods = pods_by_name(core_api, namespace)
        pending = [
            p
            for p in pods.values()
            if not p.spec.node_name
            and not any(
                c.type == "PodScheduled" and c.status == "False" for c in p.status.conditions or []
            )
        ]
        return None if pending else pods

    pods = wait_until(settled, timeout=120, interval=1, what="every pod bound or reported")
    used: dict[str, list[int]] = {n: [0, 0, 0, 0] for n in nodes}
    for pod in pods.values():
        if not pod.spec.node_name:
            continue
        req = pod.spec.containers[0].resources.requests
        u = used[pod.spec.node_name]
        u[0] += to_int("cpu", req["cpu"])
        u[1] += to_int("memory", req["memory"])
        u[2] += 1
        u[3] += to_int("nvidia.com/gpu", req.get("nvidia.com/gpu", "0"))
    for name, limits in nodes.items():
        assert all(x <= cap for x, cap in zip(used[name], limits, strict=True)), (name, used[name])
    assert sum(u[2] for u in used.values()) > 250  # most pods found a place


def test_binding_a_pod_already_assigned_is_refused_by_the_api_server(
    core_api: Any, namespace: str, node_factory: Any, workload_scheduler: SchedulerProcess
) -> None:
    """The guarantee we lean on: a second binding of a pod fails (409), never moves it."""
    node_factory("one")
    node_factory("two")
    core_api.create_namespaced_pod(
        namespace, pod_manifest("p", node_selector={"kubernetes.io/hostname": "one"})
    )
    wait_until(lambda: bound(core_api, namespace, ["p"]), what="bound")
    body = {
        "apiVersion": "v1",
        "kind": "Binding",
        "metadata": {"name": "p"},
        "target": {"apiVersion": "v1", "kind": "Node", "name": "two"},
    }
    try:
        core_api.create_namespaced_binding(namespace, body, _preload_content=False)
        raise AssertionError("second binding accepted")
    except ApiException as exc:
        assert exc.status == 409
    assert core_api.read_namespaced_pod("p", namespace).spec.node_name == "one"


def _gi(text: str) -> int:
    return int(text.rstrip("Gi")) * 2**30


def test_metrics_and_health_endpoints(
    core_api: Any, namespace: str, node_factory: Any, workload_scheduler: SchedulerProcess
) -> None:
    node_factory("metered")
    core_api.create_namespaced_pod(namespace, pod_manifest("counted"))
    wait_until(lambda: bound(core_api, namespace, ["counted"]), what="bound")
    text = wait_until(
        lambda: (m := workload_scheduler.metrics()) and "scheduler_pod_scheduling_sli" in m and m,
        what="metrics",
    )
    for name in (
        'scheduler_schedule_attempts_total{profile="workload-scheduler",result="scheduled"}',
        'scheduler_pending_pods{queue="active"}',
        'scheduler_pending_pods{queue="gated"}',
        "scheduler_scheduling_attempt_duration_seconds_bucket",
        "scheduler_pod_scheduling_sli_duration_seconds_bucket",
        'scheduler_framework_extension_point_duration_seconds_count{extension_point="Bind"',
        'scheduler_queue_incoming_pods_total{event="PodAdd",queue="active"}',
        'workload_scheduler_signature_cache_node_results_total{result="miss"}',
        "workload_scheduler_gangs_waiting",
    ):
        assert name in text, name
    import urllib.request

    for path in ("/healthz", "/readyz"):
        with urllib.request.urlopen(workload_scheduler.base_url + path, timeout=5) as r:
            assert r.status == 200
