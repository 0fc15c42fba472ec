"""The three ways a gang can be described, behind one small interface for the tests.

- ``v1alpha1``: native Workload (Kubernetes 1.35), pods carry ``spec.workloadRef``.
- ``v1beta1`` (or whichever PodGroup version the 1.37 cluster serves): Workload with
  ``podGroupTemplates`` plus one PodGroup per gang, pods carry ``spec.schedulingGroup``.
- ``crd``: our Workload CRD, pods carry our labels.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tests.e2e.k8s import pod_manifest

Request = Callable[..., dict[str, Any]]


def _policy(min_count: int | None) -> dict[str, Any]:
    return {"basic": {}} if min_count is None else {"gang": {"minCount": min_count}}


@dataclass
class GangMode:
    name: str
    request: Request
    podgroup_version: str = "v1beta1"

    def create_workload(
        self,
        ns: str,
        name: str,
        groups: dict[str, int | None],
        *,
        topology_key: str | None = None,
        replica_keys: dict[str, list[str]] | None = None,
        annotations: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        """groups: name -> minCount (None for basic). For the PodGroup API one PodGroup is
        made per group (and per replica key), named ``<workload>-<group>[-<key>]``.
        ``extra``: more fields for each group entry / PodGroup spec (e.g. disruptionMode)."""
        constraints = (
            {"schedulingConstraints": {"topology": [{"key": topology_key}]}} if topology_key else {}
        )
        constraints.update(extra or {})
        meta = {"name": name, "annotations": annotations or {}}
        if self.name == "v1alpha1":
            entries = [{"name": g, "policy": _policy(m)} for g, m in groups.items()]
            self.request(
                "POST",
                f"/apis/scheduling.k8s.io/v1alpha1/namespaces/{ns}/workloads",
                {
                    "apiVersion": "scheduling.k8s.io/v1alpha1",
                    "kind": "Workload",
                    "metadata": meta,
                    "spec": {"podGroups": entries},
                },
            )
            return
        if self.name == "crd":
            entries = [{"name": g, "policy": _policy(m), **constraints} for g, m in groups.items()]
            self.request(
                "POST",
                f"/apis/workload-scheduler.io/v1alpha1/namespaces/{ns}/workloads",
                {
                    "apiVersion": "workload-scheduler.io/v1alpha1",
                    "kind": "Workload",
                    "metadata": meta,
                    "spec": {"podGroups": entries},
                },
            )
            return
        api = f"scheduling.k8s.io/{self.podgroup_version}"
        templates = [
            {"name": g, "schedulingPolicy": _policy(m), **constraints} for g, m in groups.items()
        ]
        self.request(
            "POST",
            f"/apis/{api}/namespaces/{ns}/workloads",
            {
                "apiVersion": api,
                "kind": "Workload",
                "metadata": {"name": name},
                "spec": {"podGroupTemplates": templates},
            },
        )
        for group, min_count in groups.items():
            for key in (replica_keys or {}).get(group, [""]):
                self.request(
                    "POST",
                    f"/apis/{api}/namespaces/{ns}/podgroups",
                    {
                        "apiVersion": api,
                        "kind": "PodGroup",
                        "metadata": {
                            "name": self.podgroup_name(name, group, key),
                            "annotations": annotations or {},
                        },
                        "spec": {
                            "workloadRef": {"workloadName": name, "templateName": group},
                            "schedulingPolicy": _policy(min_count),
                            **constraints,
                        },
                    },
                )

    @staticmethod
    def podgroup_name(workload: str, group: str, key: str = "") -> str:
        return f"{workload}-{group}" + (f"-{key}" if key else "")

    def member(
        self, name: str, workload: str, group: str, replica_key: str = "", **pod: Any
    ) -> dict[str, Any]:
        manifest = pod_manifest(name, **pod)
        if self.name == "v1alpha1":
            ref = {"name": workload, "podGroup": group}
            if replica_key:
                ref["podGroupReplicaKey"] = replica_key
            manifest["spec"]["workloadRef"] = ref
        elif self.name == "crd":
            labels = manifest["metadata"]["labels"]
            labels["workload-scheduler.io/workload"] = workload
            labels["workload-scheduler.io/pod-group"] = group
            if replica_key:
                labels["workload-scheduler.io/replica-key"] = replica_key
        else:
            manifest["spec"]["schedulingGroup"] = {
                "podGroupName": self.podgroup_name(workload, group, replica_key)
            }
        return manifest

    def scheduled_status(self, ns: str, workload: str, group: str) -> str | None:
        """What the scheduler wrote to the object's status ("True"/"False"), None if nothing
        (v1alpha1 Workloads have no status)."""
        if self.name == "crd":
            obj = self.request(
                "GET", f"/apis/workload-scheduler.io/v1alpha1/namespaces/{ns}/workloads/{workload}"
            )
            for entry in obj.get("status", {}).get("groups", []):
                if entry["name"] == group:
                    return "True" if entry.get("scheduled") else "False"
            return None
        if self.name == "v1alpha1":
            return None
        obj = self.request(
            "GET",
            f"/apis/scheduling.k8s.io/{self.podgroup_version}/namespaces/"
            f"{ns}/podgroups/{self.podgroup_name(workload, group)}",
        )
        for cond in obj.get("status", {}).get("conditions", []):
            if cond["type"] in ("PodGroupInitiallyScheduled", "PodGroupScheduled"):
                return str(cond["status"])
        return None

    def create_pod(self, ns: str, manifest: dict[str, Any]) -> None:
        # Raw JSON: the client's models do not know workloadRef / schedulingGroup.
        self.request("POST", f"/api/v1/namespaces/{ns}/pods", manifest)
