"""Nodes as API objects: capacity the scheduler can count, and by default a kwok "kubelet".

A Node made by :func:`node_manifest` carries kwok's annotation unless ``kwok=False``: kwok
then keeps it ``Ready`` (conditions, a Lease), and runs the pods bound to it (see
:mod:`devcluster.kwok`).  Without the annotation it is a bare object with the
``status`` written here and nothing else; the benchmark's thousands of nodes are made that
way, so that no heartbeat competes with the schedulers for the CPU.

A Node is created with its ``status`` in one request, as a kubelet registers itself: the API
server keeps a Node's status on create (unlike a pod's).  A second status write would race
with kwok, which takes the node over as soon as it sees its ``status.allocatable``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from devcluster.kwok import MANAGED_ANNOTATION, MANAGED_VALUE
from scheduler.api.client import MERGE_PATCH, ApiClient, ApiError, gather_limited

GPU_RESOURCE = "nvidia.com/gpu"
TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
# A qualified name (optional DNS prefix and "/"), as the API server validates label keys.
_KEY = re.compile(r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")


def node_manifest(
    name: str,
    *,
    cpu: str = "4",
    memory: str = "16Gi",
    pods: int = 110,
    extra: Mapping[str, str] | None = None,
    labels: Mapping[str, str] | None = None,
    taints: Sequence[Mapping[str, str]] | None = None,
    unschedulable: bool = False,
    kwok: bool = True,
) -> dict[str, Any]:
    """A Node with ``status.allocatable`` set, ready to be created as it is.

    ``kwok=True`` (the default) adds ``kwok.x-k8s.io/node: fake``, so that kwok manages it;
    its shape (capacity, allocatable) stays the one given here.
    """
    resources = {"cpu": cpu, "memory": memory, "pods": str(pods), **(extra or {})}
    metadata: dict[str, Any] = {
        "name": name,
        "labels": {"kubernetes.io/hostname": name, **(labels or {})},
    }
    if kwok:
        metadata["annotations"] = {MANAGED_ANNOTATION: MANAGED_VALUE}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": metadata,
        "spec": {"taints": [dict(t) for t in taints or []], "unschedulable": unschedulable},
        "status": {
            "capacity": resources,
            "allocatable": resources,
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "KubeletReady",
                    "message": "fake node for scheduling",
                }
            ],
        },
    }


def is_kwok_managed(node: Mapping[str, Any]) -> bool:
    """Whether kwok manages this Node (it carries kwok's annotation)."""
    annotations = node.get("metadata", {}).get("annotations") or {}
    return bool(annotations.get(MANAGED_ANNOTATION) == MANAGED_VALUE)


# -- node shapes from the command line ----------------------------------------------------


class ShapeError(ValueError):
    """A label, taint or resource given on the command line is malformed."""


@dataclass(frozen=True)
class NodeShape:
    """What ``dev-cluster nodes add`` makes: ``count`` alike nodes."""

    cpu: str = "4"
    memory: str = "16Gi"
    pods: int = 110
    gpus: int = 0
    resources: Mapping[str, str] = field(default_factory=dict)
    """Further extended resources, e.g. ``{"example.com/fpga": "2"}``."""
    labels: Mapping[str, str] = field(default_factory=dict)
    taints: Sequence[Mapping[str, str]] = ()

    def manifest(self, name: str) -> dict[str, Any]:
        extra = dict(self.resources)
        if self.gpus:
            extra[GPU_RESOURCE] = str(self.gpus)
        return node_manifest(
            name,
            cpu=self.cpu,
            memory=self.memory,
            pods=self.pods,
            extra=extra,
            labels=self.labels,
            taints=self.taints,
        )


def parse_label(text: str) -> tuple[str, str]:
    """``"topology.kubernetes.io/zone=a"`` -> ``("topology.kubernetes.io/zone", "a")``."""
    key, sep, value = text.partition("=")
    if not sep:
        raise ShapeError(f"label {text!r}: expected KEY=VALUE")
    _check_key("label", text, key)
    return key, value


def parse_taint(text: str) -> dict[str, str]:
    """``"nvidia.com/gpu=present:NoSchedule"`` (or ``"dedicated:NoExecute"``) -> a taint."""
    spec, sep, effect = text.rpartition(":")
    if not sep or effect not in TAINT_EFFECTS:
        raise ShapeError(
            f"taint {text!r}: expected KEY[=VALUE]:EFFECT with EFFECT one of "
            f"{', '.join(TAINT_EFFECTS)}"
        )
    key, _, value = spec.partition("=")
    _check_key("taint", text, key)
    taint = {"key": key, "effect": effect}
    if value:
        taint["value"] = value
    return taint


def parse_resource(text: str) -> tuple[str, str]:
    """``"example.com/fpga=2"`` -> ``("example.com/fpga", "2")``."""
    key, sep, quantity = text.partition("=")
    if not sep or not quantity:
        raise ShapeError(f"resource {text!r}: expected NAME=QUANTITY")
    _check_key("resource", text, key)
    return key, quantity


def _check_key(what: str, text: str, key: str) -> None:
    if not _KEY.match(key):
        raise ShapeError(f"{what} {text!r}: {key!r} is not a valid key")


def next_names(prefix: str, existing: Iterable[str], count: int) -> list[str]:
    """``count`` names ``<prefix>-<n>`` numbered after the highest ``n`` already used."""
    pattern = re.compile(rf"^{re.escape(prefix)}-(\d+)$")
    used = [int(m.group(1)) for name in existing if (m := pattern.match(name))]
    start = max(used, default=0) + 1
    return [f"{prefix}-{n:03d}" for n in range(start, start + count)]


# -- talking to the API server --------------------------------------------------------------


async def create_node(client: ApiClient, manifest: Mapping[str, Any]) -> None:
    """Create the Node with its status; if it exists already, rewrite its shape (capacity
    and allocatable) instead."""
    name = manifest["metadata"]["name"]
    try:
        await client.post("/api/v1/nodes", dict(manifest))
    except ApiError as exc:
        if exc.status != 409:
            raise
        status = manifest["status"]
        shape = {"capacity": status["capacity"], "allocatable": status["allocatable"]}
        await client.patch(f"/api/v1/nodes/{name}/status", {"status": shape}, MERGE_PATCH)


async def create_nodes(
    client: ApiClient, manifests: Sequence[Mapping[str, Any]], concurrency: int = 16
) -> None:
    """:func:`create_node` for each, ``concurrency`` at a time; the first failure is raised
    once all have been tried."""
    results = await gather_limited(concurrency, *(create_node(client, m) for m in manifests))
    for result in results:
        if isinstance(result, BaseException):
            raise result


async def list_nodes(client: ApiClient) -> list[dict[str, Any]]:
    """Every Node, as raw JSON."""
    items: list[dict[str, Any]] = orjson.loads(await client.get("/api/v1/nodes"))["items"]
    return items
