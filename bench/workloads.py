"""What the benchmark schedules: the nodes, and each workload as pod manifests (+ Workloads).

Every function here is pure: it returns manifests, it does not talk to a cluster.  The same
manifests go to every scheduler; only ``spec.schedulerName`` differs (:meth:`Workload.
serialized`).  :func:`plan_bindings` precomputes where the "ceiling" binder puts each pod:
round-robin over the nodes the pod fits (selectors, required node affinity, taints,
resources), so the ceiling binds as fast as the API server allows, with no decisions to make.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from devcluster.nodes import node_manifest
from scheduler.model.quantity import to_int

ZONE = "topology.kubernetes.io/zone"
RACK = "bench.workload-scheduler.io/rack"
GPU = "nvidia.com/gpu"
GPU_TAINT = {"key": GPU, "value": "present", "effect": "NoSchedule"}
ZONES = ("zone-a", "zone-b", "zone-c")
NODES_PER_RACK = 20
WORKLOAD_API = "scheduling.k8s.io/v1alpha1"
POD_GROUP = "workers"
PAUSE_IMAGE = "registry.k8s.io/pause:3.10"


# -- nodes ----------------------------------------------------------------------------------


def node_name(index: int) -> str:
    return f"bench-node-{index:05d}"


def rack_of(name: str) -> str:
    """``rack-002`` for ``bench-node-00047`` (the ``RACK`` label ``nodes`` gives it)."""
    return f"rack-{int(name.rsplit('-', 1)[-1]) // NODES_PER_RACK:03d}"


def is_gpu_node(index: int, gpu_every: int) -> bool:
    return gpu_every > 0 and index % gpu_every == gpu_every - 1


def nodes(count: int, *, gpu_every: int = 8, start: int = 0) -> list[dict[str, Any]]:
    """``count`` nodes of 32 cpu / 128Gi / 110 pods, spread over three zones and racks of
    20; every ``gpu_every``-th also has 8 ``nvidia.com/gpu`` and the taint
    ``nvidia.com/gpu=present:NoSchedule``.  ``start`` continues a numbering (adding nodes)."""
    out = []
    for i in range(start, start + count):
        gpu = is_gpu_node(i, gpu_every)
        out.append(
            node_manifest(
                node_name(i),
                cpu="32",
                memory="128Gi",
                pods=110,
                extra={GPU: "8"} if gpu else None,
                labels={
                    ZONE: ZONES[i % len(ZONES)],
                    RACK: f"rack-{i // NODES_PER_RACK:03d}",
                    **({"accelerator": "nvidia"} if gpu else {}),
                },
                taints=[dict(GPU_TAINT)] if gpu else None,
                # Bare API objects: kwok's Lease renewals for thousands of nodes would
                # compete with the schedulers for the CPU (docs/benchmarks.md).
                kwok=False,
            )
        )
    return out


# -- pods -----------------------------------------------------------------------------------


def pod(
    name: str,
    *,
    cpu: str,
    memory: str,
    gpu: int = 0,
    node_selector: Mapping[str, str] | None = None,
    tolerations: Sequence[Mapping[str, Any]] | None = None,
    affinity: Mapping[str, Any] | None = None,
    labels: Mapping[str, str] | None = None,
    workload_ref: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    requests: dict[str, str] = {"cpu": cpu, "memory": memory}
    limits: dict[str, str] = {}
    if gpu:
        requests[GPU] = limits[GPU] = str(gpu)
    spec: dict[str, Any] = {
        "schedulerName": "",  # set per scheduler by Workload.serialized
        "terminationGracePeriodSeconds": 0,
        "containers": [
            {
                "name": "main",
                "image": PAUSE_IMAGE,
                "resources": {"requests": requests, **({"limits": limits} if limits else {})},
            }
        ],
    }
    if node_selector:
        spec["nodeSelector"] = dict(node_selector)
    if tolerations:
        spec["tolerations"] = [dict(t) for t in tolerations]
    if affinity:
        spec["affinity"] = dict(affinity)
    if workload_ref:
        spec["workloadRef"] = dict(workload_ref)
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": dict(labels or {})},
        "spec": spec,
    }


@dataclass
class Workload:
    """One benchmark workload: pods (and Workload objects) plus what the report needs."""

    name: str
    size: str
    """Human description of the size, for the report (``"1000 pods"``)."""
    pods: list[dict[str, Any]]
    groups: list[dict[str, Any]] = field(default_factory=list)
    """``scheduling.k8s.io/v1alpha1`` Workload objects, created before the pods."""
    gang_of: dict[str, str] = field(default_factory=dict)
    """Pod name -> gang (Workload name) for gang members."""

    @property
    def pod_names(self) -> list[str]:
        return [p["metadata"]["name"] for p in self.pods]

    def serialized(self, scheduler_name: str) -> list[tuple[str, bytes]]:
        """(name, JSON body) per pod with ``spec.schedulerName`` set, encoded ahead of time so
        encoding costs nothing inside the measured interval."""
        out = []
        for manifest in self.pods:
            manifest["spec"]["schedulerName"] = scheduler_name
            out.append((manifest["metadata"]["name"], orjson.dumps(manifest)))
        for manifest in self.pods:
            manifest["spec"]["schedulerName"] = ""
        return out


def plain(count: int) -> Workload:
    """``count`` identical small pods: the scheduler's raw per-pod cost."""
    pods = [
        pod(f"plain-{i:06d}", cpu="100m", memory="128Mi", labels={"bench": "plain"})
        for i in range(count)
    ]
    return Workload("plain", f"{count} pods", pods)


def gangs(count: int, size: int = 8) -> Workload:
    """``count`` gangs of ``size``: one Workload each with a gang pod group (minCount
    ``size``); the members carry ``spec.workloadRef`` and are created gang after gang."""
    pods = []
    groups = []
    gang_of = {}
    for g in range(count):
        gang = f"gang-{g:05d}"
        groups.append(
            {
                "apiVersion": WORKLOAD_API,
                "kind": "Workload",
                "metadata": {"name": gang},
                "spec": {
                    "podGroups": [{"name": POD_GROUP, "policy": {"gang": {"minCount": size}}}]
                },
            }
        )
        for m in range(size):
            name = f"{gang}-{m}"
            pods.append(
                pod(
                    name,
                    cpu="1",
                    memory="2Gi",
                    labels={"bench": "gangs", "gang": gang},
                    workload_ref={"name": gang, "podGroup": POD_GROUP},
                )
            )
            gang_of[name] = gang
    return Workload("gangs", f"{count} gangs of {size}", pods, groups, gang_of)


def _required(*expressions: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchExpressions": [dict(e) for e in expressions]}]
            }
        }
    }


def mixed(count: int, node_count: int, *, gpu_every: int = 8) -> Workload:
    """``count`` pods of six kinds in a fixed rotation (out of every 10):

    - 4 small (250m / 512Mi), no constraints
    - 2 medium (1 / 4Gi) with a zone ``nodeSelector``
    - 1 large (4 / 16Gi) with required node affinity ``zone NotIn [zone-c]``
    - 1 GPU (2 / 8Gi, 1 ``nvidia.com/gpu``) tolerating the GPU taint; turned into a small
      pod once the cluster's GPUs are half used, so every pod always fits
    - 1 tolerate-everything (500m / 1Gi, ``operator: Exists``), may land on GPU nodes
    - 1 rack-pinned (100m / 256Mi) with a rack ``nodeSelector``
    """
    racks = max(1, (node_count + NODES_PER_RACK - 1) // NODES_PER_RACK)
    gpu_nodes = sum(1 for i in range(node_count) if is_gpu_node(i, gpu_every))
    gpus_left = gpu_nodes * 8 // 2
    tolerate_gpu = [{"key": GPU, "operator": "Exists", "effect": "NoSchedule"}]
    pods = []
    for i in range(count):
        name = f"mixed-{i:06d}"
        kind = i % 10
        labels = {"bench": "mixed"}
        if kind in (0, 1, 2, 3):
            p = pod(name, cpu="250m", memory="512Mi", labels=labels)
        elif kind in (4, 5):
            zone = ZONES[i % len(ZONES)]
            p = pod(name, cpu="1", memory="4Gi", node_selector={ZONE: zone}, labels=labels)
        elif kind == 6:
            p = pod(
                name,
                cpu="4",
                memory="16Gi",
                affinity=_required({"key": ZONE, "operator": "NotIn", "values": ["zone-c"]}),
                labels=labels,
            )
        elif kind == 7 and gpus_left > 0:
            gpus_left -= 1
            p = pod(name, cpu="2", memory="8Gi", gpu=1, tolerations=tolerate_gpu, labels=labels)
        elif kind == 8:
            p = pod(
                name, cpu="500m", memory="1Gi", tolerations=[{"operator": "Exists"}], labels=labels
            )
        elif kind == 9:
            rack = f"rack-{(i // 10) % racks:03d}"
            p = pod(name, cpu="100m", memory="256Mi", node_selector={RACK: rack}, labels=labels)
        else:
            p = pod(name, cpu="250m", memory="512Mi", labels=labels)
        pods.append(p)
    return Workload("mixed", f"{count} pods", pods)


def scale(count: int, node_count: int) -> Workload:
    """The scale point: ``count`` plain pods over ``node_count`` nodes (memory and per-pod
    cost with a large cluster in the cache)."""
    w = plain(count)
    for p in w.pods:
        p["metadata"]["name"] = p["metadata"]["name"].replace("plain-", "scale-")
        p["metadata"]["labels"]["bench"] = "scale"
    return Workload("scale", f"{count} pods on {node_count} nodes", w.pods)


# -- the ceiling's plan -----------------------------------------------------------------


@dataclass
class _NodeRoom:
    name: str
    labels: dict[str, str]
    taints: list[dict[str, Any]]
    free: dict[str, int]


def _tolerates(tolerations: Iterable[Mapping[str, Any]], taint: Mapping[str, Any]) -> bool:
    for t in tolerations:
        if t.get("effect") and t["effect"] != taint.get("effect"):
            continue
        op = t.get("operator", "Equal")
        if not t.get("key"):
            if op == "Exists":
                return True
            continue
        if t["key"] != taint.get("key"):
            continue
        if op == "Exists" or t.get("value", "") == taint.get("value", ""):
            return True
    return False


def _matches(expression: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    key, op, values = expression["key"], expression["operator"], expression.get("values", [])
    if op == "In":
        return labels.get(key) in values
    if op == "NotIn":
        return labels.get(key) not in values
    if op == "Exists":
        return key in labels
    if op == "DoesNotExist":
        return key not in labels
    raise ValueError(f"operator {op} is not used by the benchmark")


def _requests(manifest: Mapping[str, Any]) -> dict[str, int]:
    total: dict[str, int] = {"pods": 1}
    for container in manifest["spec"]["containers"]:
        for resource, amount in container.get("resources", {}).get("requests", {}).items():
            total[resource] = total.get(resource, 0) + to_int(resource, amount)
    return total


def fits(manifest: Mapping[str, Any], node: _NodeRoom) -> bool:
    spec = manifest["spec"]
    for key, value in spec.get("nodeSelector", {}).items():
        if node.labels.get(key) != value:
            return False
    required = (
        spec.get("affinity", {})
        .get("nodeAffinity", {})
        .get("requiredDuringSchedulingIgnoredDuringExecution")
    )
    if required and not any(
        all(_matches(e, node.labels) for e in term.get("matchExpressions", []))
        for term in required["nodeSelectorTerms"]
    ):
        return False
    tolerations = spec.get("tolerations", [])
    for taint in node.taints:
        if taint.get("effect") in ("NoSchedule", "NoExecute") and not _tolerates(
            tolerations, taint
        ):
            return False
    return all(node.free.get(r, 0) >= amount for r, amount in _requests(manifest).items())


class UnplaceableError(ValueError):
    pass


def plan_bindings(
    pods: Sequence[Mapping[str, Any]], node_manifests: Sequence[Mapping[str, Any]]
) -> dict[str, str]:
    """Pod name -> node name: for each pod, the next node (round-robin, one cursor per pod
    shape) that it fits, counting what earlier pods took.  Raises if a pod fits nowhere,
    which also checks that a workload fits the cluster before any scheduler is timed."""
    rooms = [
        _NodeRoom(
            n["metadata"]["name"],
            dict(n["metadata"].get("labels", {})),
            list(n["spec"].get("taints", [])),
            {r: to_int(r, q) for r, q in n["status"]["allocatable"].items()},
        )
        for n in node_manifests
    ]
    if not rooms:
        raise UnplaceableError("no nodes")
    cursors: dict[bytes, int] = {}
    plan = {}
    for manifest in pods:
        spec = manifest["spec"]
        shape = orjson.dumps(
            [spec.get("nodeSelector"), spec.get("affinity"), spec.get("tolerations")],
            option=orjson.OPT_SORT_KEYS,
        )
        start = cursors.get(shape, 0)
        need = _requests(manifest)
        for step in range(len(rooms)):
            index = (start + step) % len(rooms)
            room = rooms[index]
            if fits(manifest, room):
                for r, amount in need.items():
                    room.free[r] -= amount
                plan[manifest["metadata"]["name"]] = room.name
                cursors[shape] = index + 1
                break
        else:
            raise UnplaceableError(f"pod {manifest['metadata']['name']} fits no node")
    return plan


# -- one big gang (issue 11) ---------------------------------------------------------------

CRD_WORKLOAD_API = "workload-scheduler.io/v1alpha1"


def biggang(
    size: int, cpu: str, node_count: int, *, free_rack: int = 0, fill: float = 0.4
) -> tuple[Workload, list[dict[str, Any]]]:
    """One gang of ``size`` pods (``cpu`` each, 64Mi) that must land in one rack
    (``schedulingConstraints.topology`` key ``RACK``), and the pods that fill ``fill`` of
    every node's 32 cpu in every rack but ``free_rack``: pre-bound (``spec.nodeName``),
    created before the timed part. The gang is described by our Workload CRD: the 1.35
    ``v1alpha1`` Workload has no topology constraint.

    With the default nodes (32 cpu, 110 pods, racks of 20) and ``gpu_every=0``, 2,000 x
    300m fits the free rack only (600 of its 640 cpu); 2,000 x 400m fits no rack."""
    gang = "biggang"
    group = {
        "apiVersion": CRD_WORKLOAD_API,
        "kind": "Workload",
        "metadata": {"name": gang},
        "spec": {
            "podGroups": [
                {
                    "name": POD_GROUP,
                    "policy": {"gang": {"minCount": size}},
                    "schedulingConstraints": {"topology": [{"key": RACK}]},
                }
            ]
        },
    }
    labels = {
        "bench": "biggang",
        "workload-scheduler.io/workload": gang,
        "workload-scheduler.io/pod-group": POD_GROUP,
    }
    pods = [pod(f"{gang}-{i:05d}", cpu=cpu, memory="64Mi", labels=labels) for i in range(size)]
    fillers = []
    fill_cpu = f"{int(32000 * fill)}m"
    for i in range(node_count):
        if i // NODES_PER_RACK == free_rack:
            continue
        filler = pod(f"fill-{i:05d}", cpu=fill_cpu, memory="1Gi", labels={"bench": "fill"})
        filler["spec"]["nodeName"] = node_name(i)
        fillers.append(filler)
    workload = Workload("biggang", f"1 gang of {size} x {cpu}", pods, [group])
    workload.gang_of = {p["metadata"]["name"]: gang for p in pods}
    return workload, fillers
