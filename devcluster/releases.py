"""Kubernetes releases the dev control plane can run.

Adding a release is a data change: pin its Go module under ``hack/controlplane/k8s-<minor>/``
and add one entry to :data:`RELEASES`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

DEFAULT_RELEASE = "1.35"


class UnknownReleaseError(LookupError):
    """No entry in :data:`RELEASES` matches the requested release."""


@dataclass(frozen=True)
class Release:
    """One pinned control-plane release and what it needs to serve the Workload API."""

    kubernetes: str
    """Kubernetes version the Go module pins, e.g. ``v1.35.4``."""
    etcd: str
    """etcd server version the Go module pins (informational; go.mod is authoritative)."""
    module_dir: str
    """Go module that builds the binaries, relative to the repository root."""
    feature_gates: Mapping[str, bool] = field(default_factory=dict)
    """Gates for kube-apiserver and kube-scheduler (the Workload API is alpha)."""
    runtime_config: Mapping[str, str] = field(default_factory=dict)
    """``--runtime-config`` entries for kube-apiserver (alpha API groups are off by default)."""

    @property
    def minor(self) -> str:
        """``"1.35"`` for ``v1.35.4``."""
        major, minor, _patch = self.kubernetes.removeprefix("v").split(".", 2)
        return f"{major}.{minor}"

    def feature_gates_flag(self, extra: Mapping[str, bool] | None = None) -> str:
        """The ``--feature-gates`` value, with ``extra`` overriding the release's gates."""
        gates = {**self.feature_gates, **(extra or {})}
        return ",".join(f"{name}={str(on).lower()}" for name, on in sorted(gates.items()))

    def runtime_config_flag(self) -> str:
        """The ``--runtime-config`` value."""
        return ",".join(f"{key}={value}" for key, value in sorted(self.runtime_config.items()))


RELEASES: dict[str, Release] = {
    "1.35": Release(
        kubernetes="v1.35.4",
        etcd="v3.6.5",
        module_dir="hack/controlplane/k8s-1.35",
        # GangScheduling depends on GenericWorkload (pkg/features/kube_features.go).
        feature_gates={"GenericWorkload": True, "GangScheduling": True},
        runtime_config={"scheduling.k8s.io/v1alpha1": "true"},
    ),
    # The PodGroup shape: Workload templates, standalone PodGroups, pods'
    # spec.schedulingGroup. GangScheduling was folded into GenericWorkload in 1.37;
    # TopologyAwareWorkloadScheduling enables schedulingConstraints.topology;
    # WorkloadWithJob lets a Job say .spec.scheduling (its controller then makes the
    # Workload and PodGroup, and gives every Job's pods a spec.schedulingGroup).
    "1.37": Release(
        kubernetes="v1.37.2",
        etcd="v3.7.0",
        module_dir="hack/controlplane/k8s-1.37",
        feature_gates={
            "GenericWorkload": True,
            "TopologyAwareWorkloadScheduling": True,
            "WorkloadWithJob": True,
        },
        runtime_config={"scheduling.k8s.io/v1beta1": "true", "scheduling.k8s.io/v1alpha3": "true"},
    ),
}


def get_release(name: str | Release = DEFAULT_RELEASE) -> Release:
    """Look a release up by minor (``"1.35"``) or full version (``"v1.35.4"``)."""
    if isinstance(name, Release):
        return name
    if name in RELEASES:
        return RELEASES[name]
    for release in RELEASES.values():
        if name in (release.kubernetes, release.kubernetes.removeprefix("v")):
            return release
    known = ", ".join(sorted(RELEASES))
    raise UnknownReleaseError(f"unknown Kubernetes release {name!r}; known releases: {known}")
