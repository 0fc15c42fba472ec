"""A real local control plane (etcd, kube-apiserver, optional kube-scheduler) for e2e tests
and the demo, built from pinned Go modules and run on 127.0.0.1 without Docker."""

from devcluster.build import (
    BINARIES,
    BuildError,
    GoNotFoundError,
    binaries_dir,
    cache_root,
    ensure_binaries,
)
from devcluster.controlplane import (
    ClusterInfo,
    ControlPlane,
    ControlPlaneError,
    KubeSchedulerOptions,
    ProcessInfo,
    down,
    load_cluster_info,
    running_control_plane,
    up,
)
from devcluster.releases import (
    DEFAULT_RELEASE,
    RELEASES,
    Release,
    UnknownReleaseError,
    get_release,
)

__all__ = [
    "BINARIES",
    "DEFAULT_RELEASE",
    "RELEASES",
    "BuildError",
    "ClusterInfo",
    "ControlPlane",
    "ControlPlaneError",
    "GoNotFoundError",
    "KubeSchedulerOptions",
    "ProcessInfo",
    "Release",
    "UnknownReleaseError",
    "binaries_dir",
    "cache_root",
    "down",
    "ensure_binaries",
    "get_release",
    "load_cluster_info",
    "running_control_plane",
    "up",
]
