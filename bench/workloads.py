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
    pod_group: str | None = None,
    priority_class: str | None = None,
    spread: Sequence[Mapping[str, Any]] | None = None,
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
    if pod_group:
        spec["schedulingGroup"] = {"podGroupName": pod_group}
    if priority_class:
        spec["priorityClassName"] = priority_class
    if spread:
        spec["topologySpreadConstraints"] = [dict(c) for c in spread]
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
    """``scheduling.k8s.io/v1alpha1`` Workload objects (1.37: ``v1beta1`` PodGroups),
    created before the pods."""
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


HOSTNAME = "kubernetes.io/hostname"
APP_REPLICAS = 4
"""Replicas of each anti-affinity app in ``mixed`` (one per node)."""
SPREAD_GROUP = 6
"""Pods of each zone-spread group in ``mixed`` (two per zone)."""
MIXED_KINDS = 12


def _anti_affinity(app: str) -> dict[str, Any]:
    """Required pod anti-affinity on the hostname among the pods labelled ``app``."""
    return {
        "podAntiAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": {"matchLabels": {"app": app}}, "topologyKey": HOSTNAME}
            ]
        }
    }


def _zone_spread(group: str) -> list[dict[str, Any]]:
    """maxSkew 1 over the zones, ``DoNotSchedule``, among the pods labelled ``spread``."""
    return [
        {
            "maxSkew": 1,
            "topologyKey": ZONE,
            "whenUnsatisfiable": "DoNotSchedule",
            "labelSelector": {"matchLabels": {"spread": group}},
        }
    ]


def mixed(count: int, node_count: int, *, gpu_every: int = 8) -> Workload:
    """``count`` pods of eight kinds in a fixed rotation (out of every 12):

    - 4 small (250m / 512Mi), no constraints
    - 2 medium (1 / 4Gi) with a zone ``nodeSelector``
    - 1 large (4 / 16Gi) with required node affinity ``zone NotIn [zone-c]``
    - 1 GPU (2 / 8Gi, 1 ``nvidia.com/gpu``) tolerating the GPU taint; turned into a small
      pod once the cluster's GPUs are half used, so every pod always fits
    - 1 tolerate-everything (500m / 1Gi, ``operator: Exists``), may land on GPU nodes
    - 1 rack-pinned (100m / 256Mi) with a rack ``nodeSelector``
    - 1 anti-affinity replica (500m / 1Gi): apps of ``APP_REPLICAS`` pods labelled
      ``app: aa-N``, required ``podAntiAffinity`` on ``kubernetes.io/hostname`` among them
    - 1 spread pod (250m / 512Mi): groups of ``SPREAD_GROUP`` pods labelled ``spread: sp-N``,
      ``topologySpreadConstraints`` maxSkew 1 over the zones, ``DoNotSchedule``
    """
    racks = max(1, (node_count + NODES_PER_RACK - 1) // NODES_PER_RACK)
    gpu_nodes = sum(1 for i in range(node_count) if is_gpu_node(i, gpu_every))
    gpus_left = gpu_nodes * 8 // 2
    tolerate_gpu = [{"key": GPU, "operator": "Exists", "effect": "NoSchedule"}]
    pods = []
    anti, spread = 0, 0
    for i in range(count):
        name = f"mixed-{i:06d}"
        kind = i % MIXED_KINDS
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
            rack = f"rack-{(i // MIXED_KINDS) % racks:03d}"
            p = pod(name, cpu="100m", memory="256Mi", node_selector={RACK: rack}, labels=labels)
        elif kind == 10:
            app = f"aa-{anti // APP_REPLICAS:05d}"
            anti += 1
            p = pod(
                name,
                cpu="500m",
                memory="1Gi",
                affinity=_anti_affinity(app),
                labels={**labels, "app": app},
            )
        elif kind == 11:
            group = f"sp-{spread // SPREAD_GROUP:05d}"
            spread += 1
            p = pod(
                name,
                cpu="250m",
                memory="512Mi",
                spread=_zone_spread(group),
                labels={**labels, "spread": group},
            )
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


def _selector(term: Mapping[str, Any]) -> dict[str, str]:
    selector = term.get("labelSelector") or {}
    if set(selector) - {"matchLabels"}:
        raise ValueError("only matchLabels selectors are used by the benchmark")
    return dict(selector.get("matchLabels") or {})


def _selects(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def anti_affinity_terms(manifest: Mapping[str, Any]) -> list[tuple[dict[str, str], str]]:
    """(matchLabels, topologyKey) of each required anti-affinity term of a pod."""
    anti = manifest["spec"].get("affinity", {}).get("podAntiAffinity", {})
    terms = anti.get("requiredDuringSchedulingIgnoredDuringExecution", [])
    return [(_selector(t), t["topologyKey"]) for t in terms]


def spread_constraints(manifest: Mapping[str, Any]) -> list[tuple[str, dict[str, str], int]]:
    """(topologyKey, matchLabels, maxSkew) of each ``DoNotSchedule`` spread constraint."""
    return [
        (c["topologyKey"], _selector(c), int(c["maxSkew"]))
        for c in manifest["spec"].get("topologySpreadConstraints", [])
        if c.get("whenUnsatisfiable", "DoNotSchedule") == "DoNotSchedule"
    ]


def _node_selected(manifest: Mapping[str, Any], node: _NodeRoom) -> bool:
    """nodeSelector and required node affinity only: the nodes whose domains a spread
    constraint counts (upstream's default ``nodeAffinityPolicy: Honor``,
    ``nodeTaintsPolicy: Ignore``)."""
    spec = manifest["spec"]
    if any(node.labels.get(k) != v for k, v in spec.get("nodeSelector", {}).items()):
        return False
    required = (
        spec.get("affinity", {})
        .get("nodeAffinity", {})
        .get("requiredDuringSchedulingIgnoredDuringExecution")
    )
    return not required or any(
        all(_matches(e, node.labels) for e in term.get("matchExpressions", []))
        for term in required["nodeSelectorTerms"]
    )


@dataclass
class _Placed:
    """The pods placed so far, by topology domain ((key, value) of a node's label): their
    labels, and a count per label for one-label selectors (the benchmark's)."""

    by_domain: dict[tuple[str, str], list[dict[str, str]]] = field(default_factory=dict)
    by_label: dict[tuple[str, str], dict[tuple[str, str], int]] = field(default_factory=dict)
    domains: dict[tuple[bytes, str], set[str]] = field(default_factory=dict)
    """Spread domains per (pod shape, topology key)."""

    def add(self, labels: Mapping[str, str], node: _NodeRoom) -> None:
        for domain in node.labels.items():
            self.by_domain.setdefault(domain, []).append(dict(labels))
            counts = self.by_label.setdefault(domain, {})
            for label in labels.items():
                counts[label] = counts.get(label, 0) + 1

    def count(self, key: str, value: str, selector: Mapping[str, str]) -> int:
        if len(selector) == 1:
            return self.by_label.get((key, value), {}).get(next(iter(selector.items())), 0)
        return sum(
            1 for labels in self.by_domain.get((key, value), ()) if _selects(selector, labels)
        )


def _pod_constraints_allow(
    manifest: Mapping[str, Any],
    shape: bytes,
    node: _NodeRoom,
    placed: _Placed,
    rooms: Sequence[_NodeRoom],
) -> bool:
    """Required anti-affinity and ``DoNotSchedule`` spread against what is placed.  The
    benchmark's anti-affinity selectors match only the pod's own replicas, which carry the
    same term, so the symmetric check (existing pods' terms) is the same check."""
    labels = manifest["metadata"].get("labels", {})
    for selector, key in anti_affinity_terms(manifest):
        if key in node.labels and placed.count(key, node.labels[key], selector):
            return False
    for key, selector, max_skew in spread_constraints(manifest):
        if key not in node.labels:
            return False
        domains = placed.domains.get((shape, key))
        if domains is None:
            domains = {
                r.labels[key] for r in rooms if key in r.labels and _node_selected(manifest, r)
            }
            placed.domains[(shape, key)] = domains
        self_match = 1 if _selects(selector, labels) else 0
        least = min(placed.count(key, d, selector) for d in domains)
        if placed.count(key, node.labels[key], selector) + self_match - least > max_skew:
            return False
    return True


def plan_bindings(
    pods: Sequence[Mapping[str, Any]], node_manifests: Sequence[Mapping[str, Any]]
) -> dict[str, str]:
    """Pod name -> node name: for each pod, the next node (round-robin, one cursor per pod
    shape) that it fits, counting what earlier pods took (resources, and the pods that
    required anti-affinity and spread constraints count).  Raises if a pod fits nowhere,
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
    placed = _Placed()
    for manifest in pods:
        spec = manifest["spec"]
        shape = orjson.dumps(
            [
                spec.get("nodeSelector"),
                spec.get("affinity"),
                spec.get("tolerations"),
                spec.get("topologySpreadConstraints"),
            ],
            option=orjson.OPT_SORT_KEYS,
        )
        start = cursors.get(shape, 0)
        need = _requests(manifest)
        constrained = bool(anti_affinity_terms(manifest) or spread_constraints(manifest))
        for step in range(len(rooms)):
            index = (start + step) % len(rooms)
            room = rooms[index]
            if fits(manifest, room) and (
                not constrained or _pod_constraints_allow(manifest, shape, room, placed, rooms)
            ):
                for r, amount in need.items():
                    room.free[r] -= amount
                plan[manifest["metadata"]["name"]] = room.name
                cursors[shape] = index + 1
                placed.add(manifest["metadata"].get("labels", {}), room)
                break
        else:
            raise UnplaceableError(f"pod {manifest['metadata']['name']} fits no node")
    return plan


def placement_violations(
    pods: Sequence[Mapping[str, Any]],
    placement: Mapping[str, str],
    node_manifests: Sequence[Mapping[str, Any]],
) -> dict[str, int]:
    """Checks a run's outcome (pod name -> node, for the pods that were bound):
    ``anti_affinity``: bound pods sharing a topology domain with a pod their required
    anti-affinity term selects; ``spread``: spread groups whose bound pods are skewed over
    the domains by more than ``maxSkew``.  Both must be 0 for a correct scheduler."""
    node_labels = {n["metadata"]["name"]: n["metadata"].get("labels", {}) for n in node_manifests}
    by_name = {p["metadata"]["name"]: p for p in pods}
    anti = 0
    groups: dict[tuple[str, tuple[tuple[str, str], ...], int], dict[str, int]] = {}
    domains: dict[str, set[str]] = {}
    for labels in node_labels.values():
        for key, value in labels.items():
            domains.setdefault(key, set()).add(value)
    in_domain: dict[tuple[str, str], list[tuple[str, Mapping[str, str]]]] = {}
    for name, node in placement.items():
        if name in by_name:
            pod_labels = by_name[name]["metadata"].get("labels", {})
            for key, value in node_labels.get(node, {}).items():
                in_domain.setdefault((key, value), []).append((name, pod_labels))
    for name, node in placement.items():
        manifest = by_name.get(name)
        if manifest is None:
            continue
        labels = node_labels.get(node, {})
        for selector, key in anti_affinity_terms(manifest):
            if key in labels and any(
                other != name and _selects(selector, other_labels)
                for other, other_labels in in_domain.get((key, labels[key]), ())
            ):
                anti += 1
        for key, selector, max_skew in spread_constraints(manifest):
            group = groups.setdefault((key, tuple(sorted(selector.items())), max_skew), {})
            zone = labels.get(key, "")
            group[zone] = group.get(zone, 0) + 1
    spread = 0
    for (key, _selector_items, max_skew), counts in groups.items():
        values = [counts.get(d, 0) for d in domains.get(key, set())]
        if values and max(values) - min(values) > max_skew:
            spread += 1
    return {"anti_affinity": anti, "spread": spread}


# -- 1.37 PodGroups: one big gang (issue 11), preemption (issue 13) --------------------------

PODGROUP_API = "scheduling.k8s.io/v1beta1"
"""The PodGroup API of the 1.37 control plane (also served as ``v1alpha3``)."""


def podgroup(
    name: str,
    min_count: int,
    *,
    topology_key: str | None = None,
    priority_class: str | None = None,
    disruption_mode: str | None = None,
) -> dict[str, Any]:
    """A standalone ``scheduling.k8s.io/v1beta1`` PodGroup (no Workload: ``workloadRef`` is
    optional) with a gang policy; ``topology_key`` becomes
    ``schedulingConstraints.topology[0].key``; ``disruption_mode`` is ``single`` or ``all``
    (the API's default is single); ``priority_class`` is resolved by admission into
    ``spec.priority``, which is the group's priority for kube-scheduler's preemption."""
    spec: dict[str, Any] = {"schedulingPolicy": {"gang": {"minCount": min_count}}}
    if topology_key:
        spec["schedulingConstraints"] = {"topology": [{"key": topology_key}]}
    if priority_class:
        spec["priorityClassName"] = priority_class
    if disruption_mode:
        spec["disruptionMode"] = {disruption_mode: {}}
    return {
        "apiVersion": PODGROUP_API,
        "kind": "PodGroup",
        "metadata": {"name": name},
        "spec": spec,
    }


def biggang(
    size: int, cpu: str, node_count: int, *, free_rack: int = 0, fill: float = 0.4
) -> tuple[Workload, list[dict[str, Any]]]:
    """One gang of ``size`` pods (``cpu`` each, 64Mi) that must land in one rack (a 1.37
    PodGroup with ``schedulingConstraints.topology`` key ``RACK``, read by both schedulers),
    and the pods that fill ``fill`` of every node's 32 cpu in every rack but ``free_rack``:
    pre-bound (``spec.nodeName``), created before the timed part.

    With the default nodes (32 cpu, 110 pods, racks of 20) and ``gpu_every=0``, 2,000 x
    300m fits the free rack only (600 of its 640 cpu); 2,000 x 400m fits no rack."""
    gang = "biggang"
    group = podgroup(gang, size, topology_key=RACK)
    labels = {"bench": "biggang"}
    pods = [
        pod(f"{gang}-{i:05d}", cpu=cpu, memory="64Mi", labels=labels, pod_group=gang)
        for i in range(size)
    ]
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


# -- preemption (issue 13) -----------------------------------------------------------------

LOW_PRIORITY = "bench-low"
HIGH_PRIORITY = "bench-high"
PRIORITY_CLASSES = {LOW_PRIORITY: 100, HIGH_PRIORITY: 1_000_000}


def priority_class(name: str, value: int) -> dict[str, Any]:
    return {
        "apiVersion": "scheduling.k8s.io/v1",
        "kind": "PriorityClass",
        "metadata": {"name": name},
        "value": value,
        "description": "workload-scheduler benchmark (preemption)",
    }


@dataclass
class PreemptionPlan:
    """The preemption workload: low-priority gangs that fill the cluster exactly (pre-bound,
    ``slots`` pods per node), then high-priority gangs, one after another."""

    low: Workload
    """Pre-bound members (``spec.nodeName`` set) and their PodGroups."""
    high: list[Workload]
    """One Workload per high-priority gang, in creation order (pods unbound)."""
    low_size: int
    high_size: int
    disruption_mode: str

    def minimum_victims(self) -> int:
        """Fewest pods any scheduler must evict to admit one high gang: each high member
        takes one low member's slot (same cpu); with ``all`` whole low gangs go."""
        if self.disruption_mode == "all":
            return -(-self.high_size // self.low_size) * self.low_size
        return self.high_size


def preemption(
    node_count: int,
    *,
    low_size: int = 4,
    high_size: int = 8,
    high_gangs: int = 10,
    slots: int = 4,
    disruption_mode: str = "all",
) -> PreemptionPlan:
    """``node_count`` nodes of 32 cpu, each holding ``slots`` low-priority pods of
    32/``slots`` cpu (pre-bound; gangs of ``low_size`` laid out node after node, so a gang
    spans one or two nodes), then ``high_gangs`` high-priority gangs of ``high_size`` pods of
    the same cpu: every one needs ``high_size`` slots freed, and nothing is free."""
    cpu = f"{32000 // slots}m"
    low_pods: list[dict[str, Any]] = []
    groups = []
    gang_of = {}
    total = node_count * slots
    for g in range(total // low_size):
        gang = f"low-{g:05d}"
        groups.append(
            podgroup(gang, low_size, priority_class=LOW_PRIORITY, disruption_mode=disruption_mode)
        )
        for m in range(low_size):
            index = g * low_size + m
            name = f"{gang}-{m}"
            member = pod(
                name,
                cpu=cpu,
                memory="1Gi",
                labels={"bench": "preemption-low", "gang": gang},
                pod_group=gang,
                priority_class=LOW_PRIORITY,
            )
            member["spec"]["nodeName"] = node_name(index // slots)
            low_pods.append(member)
            gang_of[name] = gang
    low = Workload("preemption-low", f"{len(groups)} low gangs of {low_size}", low_pods, groups)
    low.gang_of = gang_of
    high = []
    for g in range(high_gangs):
        gang = f"high-{g:05d}"
        members = [
            pod(
                f"{gang}-{m}",
                cpu=cpu,
                memory="1Gi",
                labels={"bench": "preemption-high", "gang": gang},
                pod_group=gang,
                priority_class=HIGH_PRIORITY,
            )
            for m in range(high_size)
        ]
        w = Workload(
            gang,
            f"1 gang of {high_size}",
            members,
            [
                podgroup(
                    gang, high_size, priority_class=HIGH_PRIORITY, disruption_mode=disruption_mode
                )
            ],
        )
        w.gang_of = {p["metadata"]["name"]: gang for p in members}
        high.append(w)
    return PreemptionPlan(low, high, low_size, high_size, disruption_mode)


def broken_gangs(gang_of: Mapping[str, str], evicted: Iterable[str]) -> int:
    """Gangs that lost some members but not all: left running below their minCount (the
    bench's gangs have minCount = size)."""
    lost: dict[str, int] = {}
    for name in evicted:
        gang = gang_of.get(name)
        if gang is not None:
            lost[gang] = lost.get(gang, 0) + 1
    size: dict[str, int] = {}
    for gang in gang_of.values():
        size[gang] = size.get(gang, 0) + 1
    return sum(1 for gang, n in lost.items() if n < size[gang])
