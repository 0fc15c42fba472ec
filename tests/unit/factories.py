"""Plain-data builders for Pods and Nodes, shaped like the API's JSON."""

from __future__ import annotations

from typing import Any

import msgspec

from scheduler.cache.cluster_cache import ClusterCache
from scheduler.framework.nodeinfo import make_node_info
from scheduler.framework.podinfo import make_pod_info
from scheduler.framework.types import NodeInfo, PodInfo, PreFilterPlugin, Unresolvable
from scheduler.model.objects import Node, Pod


def container(
    name: str = "app",
    *,
    cpu: str | None = None,
    memory: str | None = None,
    gpu: str | None = None,
    requests: dict[str, str] | None = None,
    host_ports: list[int] | None = None,
    restart_policy: str | None = None,
) -> dict[str, Any]:
    wanted = dict(requests or {})
    for resource, amount in (("cpu", cpu), ("memory", memory), ("nvidia.com/gpu", gpu)):
        if amount is not None:
            wanted[resource] = amount
    result: dict[str, Any] = {"name": name, "image": "busybox"}
    if wanted:
        result["resources"] = {"requests": wanted}
    if host_ports:
        result["ports"] = [{"containerPort": p, "hostPort": p} for p in host_ports]
    if restart_policy is not None:
        result["restartPolicy"] = restart_policy
    return result


def make_pod(
    name: str = "pod",
    *,
    namespace: str = "default",
    cpu: str | None = None,
    memory: str | None = None,
    gpu: str | None = None,
    requests: dict[str, str] | None = None,
    containers: list[dict[str, Any]] | None = None,
    init_containers: list[dict[str, Any]] | None = None,
    overhead: dict[str, str] | None = None,
    pod_requests: dict[str, str] | None = None,
    node_selector: dict[str, str] | None = None,
    affinity: dict[str, Any] | None = None,
    tolerations: list[dict[str, Any]] | None = None,
    node_name: str = "",
    host_ports: list[int] | None = None,
    labels: dict[str, str] | None = None,
    priority: int = 0,
    **spec: Any,
) -> Pod:
    """A pod with one container ``app`` unless ``containers`` is given."""
    if containers is None:
        containers = [
            container(cpu=cpu, memory=memory, gpu=gpu, requests=requests, host_ports=host_ports)
        ]
    spec_data: dict[str, Any] = {"containers": containers, "priority": priority, **spec}
    if init_containers:
        spec_data["initContainers"] = init_containers
    if overhead:
        spec_data["overhead"] = overhead
    if pod_requests:
        spec_data["resources"] = {"requests": pod_requests}
    if node_selector:
        spec_data["nodeSelector"] = node_selector
    if affinity:
        spec_data["affinity"] = affinity
    if tolerations:
        spec_data["tolerations"] = tolerations
    if node_name:
        spec_data["nodeName"] = node_name
    data = {
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": f"uid-{namespace}-{name}",
            "labels": labels or {},
        },
        "spec": spec_data,
    }
    return msgspec.convert(data, Pod)


def make_node(
    name: str = "node",
    *,
    cpu: str = "4",
    memory: str = "16Gi",
    pods: int | str = 110,
    allocatable: dict[str, str] | None = None,
    labels: dict[str, str] | None = None,
    taints: list[dict[str, str]] | None = None,
    unschedulable: bool = False,
) -> Node:
    amounts = {"cpu": cpu, "memory": memory, "pods": str(pods), **(allocatable or {})}
    data = {
        "metadata": {"name": name, "labels": labels or {}},
        "spec": {"unschedulable": unschedulable, "taints": taints or []},
        "status": {"allocatable": amounts, "capacity": amounts},
    }
    return msgspec.convert(data, Node)


def pod_info(name: str = "pod", **kwargs: Any) -> PodInfo:
    return make_pod_info(make_pod(name, **kwargs))


def node_info(name: str = "node", **kwargs: Any) -> NodeInfo:
    return make_node_info(make_node(name, **kwargs))


def affinity(
    required: list[dict[str, Any]] | None = None,
    preferred: list[tuple[int, dict[str, Any]]] | None = None,
) -> dict[str, Any]:
    """``spec.affinity`` with node affinity from terms given as raw dicts."""
    node_affinity: dict[str, Any] = {}
    if required is not None:
        node_affinity["requiredDuringSchedulingIgnoredDuringExecution"] = {
            "nodeSelectorTerms": required
        }
    if preferred is not None:
        node_affinity["preferredDuringSchedulingIgnoredDuringExecution"] = [
            {"weight": w, "preference": term} for w, term in preferred
        ]
    return {"nodeAffinity": node_affinity}


def expr(key: str, operator: str, *values: str) -> dict[str, Any]:
    return {"key": key, "operator": operator, "values": list(values)}


def term(
    *expressions: dict[str, Any], fields: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    result: dict[str, Any] = {}
    if expressions:
        result["matchExpressions"] = list(expressions)
    if fields:
        result["matchFields"] = fields
    return result


def zoned_cluster(
    *nodes: tuple[str, str],
    namespaces: dict[str, dict[str, str]] | None = None,
    taints: dict[str, list[dict[str, str]]] | None = None,
    zone_key: str = "zone",
) -> ClusterCache:
    """A cache of nodes given as (name, zone; "" for none), each with its hostname label."""
    cache = ClusterCache()
    for name, zone in nodes:
        labels = {"kubernetes.io/hostname": name}
        if zone:
            labels[zone_key] = zone
        cache.set_node(make_node(name, labels=labels, taints=(taints or {}).get(name)))
    for name, labels in (namespaces or {}).items():
        cache.set_namespace(name, labels)
    return cache


def pre_filter_verdicts(
    plugin: PreFilterPlugin, pod: PodInfo, cache: ClusterCache
) -> dict[str, str | None]:
    """Node name -> None (fits) or the first reason of the filter ``plugin`` returns."""
    state = plugin.pre_filter(pod, cache)
    assert not isinstance(state, Unresolvable)
    out: dict[str, str | None] = {}
    for node in cache.nodes():
        reasons = state.filter(pod, node) if state is not None else None
        out[node.name] = reasons[0] if reasons else None
    return out
