"""The ``helm`` CLI, built (once) from its pinned Go module (``hack/helm``).

The tests lint and render ``charts/workload-scheduler`` with the real helm.  The version is
the one ``hack/helm/go.mod`` requires; the binary is cached in
``<cache_root>/helm-<version>/helm`` (see :mod:`devcluster.gotool`).
"""

from __future__ import annotations

from pathlib import Path

from devcluster.build import Progress
from devcluster.gotool import GoTool, required_version

MODULE_DIR = Path("hack") / "helm"
"""The Go module that pins helm, relative to the repository root."""

_HELM_MODULE = "helm.sh/helm/v3"
_CLIENT_GO = "k8s.io/client-go"


def _ldflags(go_mod: str, version: str) -> list[str]:
    # As helm's Makefile does: the version `helm version` prints, and the Kubernetes version
    # charts see as .Capabilities.KubeVersion (derived from the client-go it is built with).
    flags = [f"-X {_HELM_MODULE}/internal/version.version={version}"]
    client_go = required_version(go_mod, _CLIENT_GO, MODULE_DIR)
    major, minor = client_go.removeprefix("v").split(".")[:2]
    kube_major = str(int(major) + 1)
    for package in ("pkg/lint/rules", "pkg/chartutil"):
        flags.append(f"-X {_HELM_MODULE}/{package}.k8sVersionMajor={kube_major}")
        flags.append(f"-X {_HELM_MODULE}/{package}.k8sVersionMinor={minor}")
    return flags


HELM = GoTool(
    name="helm",
    module_dir=MODULE_DIR,
    module=_HELM_MODULE,
    package=f"{_HELM_MODULE}/cmd/helm",
    ldflags=_ldflags,
)


def helm_version(repo_root: Path | None = None) -> str:
    """The helm version ``hack/helm/go.mod`` pins, e.g. ``v3.22.0``."""
    return HELM.version(repo_root)


def helm_path(repo_root: Path | None = None) -> Path:
    """Where the pinned helm lives once built (it may not exist yet)."""
    return HELM.path(repo_root)


def ensure_helm(progress: Progress | None = None, *, repo_root: Path | None = None) -> Path:
    """Return the path of the pinned ``helm`` executable, building it on the first call."""
    return HELM.ensure(progress, repo_root=repo_root)


def main() -> int:
    """``python -m devcluster.helm``: build (or find) helm and print its path."""
    return HELM.main()


if __name__ == "__main__":
    raise SystemExit(main())
