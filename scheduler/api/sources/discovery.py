"""Which pod-group APIs the cluster serves, found through API discovery at start-up."""

from __future__ import annotations

from dataclasses import dataclass

import msgspec

from scheduler.api.client import ApiClient, ApiError
from scheduler.gang.model import CRD_GROUP, CRD_VERSION

SCHEDULING_GROUP = "scheduling.k8s.io"
PODGROUP_VERSIONS = ("v1beta1", "v1alpha3", "v1alpha2")
"""Newest first: one adapter reads them all."""


class _Resource(msgspec.Struct):
    name: str


class _ResourceList(msgspec.Struct):
    resources: list[_Resource] = []


@dataclass(frozen=True, slots=True)
class ServedApis:
    native_workloads: bool = False
    """``scheduling.k8s.io/v1alpha1`` Workloads with ``spec.podGroups`` (Kubernetes 1.35)."""
    podgroup_version: str | None = None
    """Version serving standalone PodGroups (1.36+), e.g. ``v1beta1``."""
    crd_workloads: bool = False
    """Our ``workload-scheduler.io/v1alpha1`` Workload CRD is installed."""

    def describe(self) -> str:
        parts = []
        if self.native_workloads:
            parts.append(f"{SCHEDULING_GROUP}/v1alpha1 Workload")
        if self.podgroup_version:
            parts.append(f"{SCHEDULING_GROUP}/{self.podgroup_version} PodGroup")
        if self.crd_workloads:
            parts.append(f"{CRD_GROUP}/{CRD_VERSION} Workload (CRD)")
        return ", ".join(parts) or "none (gang pods will wait with a message)"


async def _resources(client: ApiClient, path: str) -> set[str]:
    try:
        body = await client.get(path)
    except ApiError as exc:
        if exc.status in (403, 404, 503):
            return set()
        raise
    return {r.name for r in msgspec.json.decode(body, type=_ResourceList).resources}


async def discover(client: ApiClient) -> ServedApis:
    native = "workloads" in await _resources(client, f"/apis/{SCHEDULING_GROUP}/v1alpha1")
    podgroup_version = None
    for version in PODGROUP_VERSIONS:
        if "podgroups" in await _resources(client, f"/apis/{SCHEDULING_GROUP}/{version}"):
            podgroup_version = version
            break
    crd = "workloads" in await _resources(client, f"/apis/{CRD_GROUP}/{CRD_VERSION}")
    return ServedApis(native, podgroup_version, crd)
