"""Build (once) and cache the ``helm`` CLI from its pinned Go module (``hack/helm``).

The tests lint and render ``charts/workload-scheduler`` with the real helm, and, like the
control plane, it comes from source through the Go module proxy (no release downloads).  The
version is the one ``hack/helm/go.mod`` requires; the binary is cached in
``<cache_root>/helm-<version>/helm``.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

from devcluster.build import (
    BuildError,
    Progress,
    build_lock,
    cache_root,
    find_go,
    find_repo_root,
    run_go_build,
    silent,
)

MODULE_DIR = Path("hack") / "helm"
"""The Go module that pins helm, relative to the repository root."""

_PACKAGE = "helm.sh/helm/v3/cmd/helm"
_HELM_MODULE = "helm.sh/helm/v3"
_CLIENT_GO = "k8s.io/client-go"


def helm_version(repo_root: Path | None = None) -> str:
    """The helm version ``hack/helm/go.mod`` pins, e.g. ``v3.22.0``."""
    return _required_version(_read_go_mod(repo_root), _HELM_MODULE)


def helm_path(repo_root: Path | None = None) -> Path:
    """Where the pinned helm lives once built (it may not exist yet)."""
    return cache_root() / f"helm-{helm_version(repo_root)}" / "helm"


def ensure_helm(progress: Progress | None = None, *, repo_root: Path | None = None) -> Path:
    """Return the path of the pinned ``helm`` executable, building it on the first call.

    Later calls return at once.  A file lock makes concurrent callers wait for one build, and
    the binary is moved into place with an atomic rename, so a crash never leaves a
    half-written ``helm`` that looks usable.
    """
    root = repo_root or find_repo_root()
    target = helm_path(root)
    if os.access(target, os.X_OK):
        return target
    report = progress or silent
    target.parent.parent.mkdir(parents=True, exist_ok=True)
    with build_lock(target.parent.parent / f"{target.parent.name}.lock", report):
        if not os.access(target, os.X_OK):
            _build(root, target, report)
    return target


def _read_go_mod(repo_root: Path | None) -> str:
    go_mod = (repo_root or find_repo_root()) / MODULE_DIR / "go.mod"
    try:
        return go_mod.read_text()
    except OSError as exc:
        raise BuildError(f"cannot read the helm Go module {go_mod}: {exc}") from exc


def _required_version(go_mod: str, module: str) -> str:
    match = re.search(rf"^\s*(?:require\s+)?{re.escape(module)}\s+(v\S+)", go_mod, re.MULTILINE)
    if not match:
        raise BuildError(f"{MODULE_DIR}/go.mod does not require {module}")
    return match.group(1)


def _ldflags(go_mod: str, version: str) -> str:
    # As helm's Makefile does: the version `helm version` prints, and the Kubernetes version
    # charts see as .Capabilities.KubeVersion (derived from the client-go it is built with).
    flags = ["-s -w", f"-X {_HELM_MODULE}/internal/version.version={version}"]
    client_go = _required_version(go_mod, _CLIENT_GO)
    major, minor = client_go.removeprefix("v").split(".")[:2]
    kube_major = str(int(major) + 1)
    for package in ("pkg/lint/rules", "pkg/chartutil"):
        flags.append(f"-X {_HELM_MODULE}/{package}.k8sVersionMajor={kube_major}")
        flags.append(f"-X {_HELM_MODULE}/{package}.k8sVersionMinor={minor}")
    return " ".join(flags)


def _build(repo_root: Path, target: Path, report: Progress) -> None:
    module_dir = repo_root / MODULE_DIR
    go_mod = _read_go_mod(repo_root)
    version = _required_version(go_mod, _HELM_MODULE)
    go = find_go()
    report(
        f"building helm {version} from {module_dir}; this takes a few minutes on "
        f"{os.cpu_count()} cores and is done once, the binary is cached in {target}"
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".helm.build-", dir=target.parent))
    try:
        built = staging / "helm"
        command = [
            str(go), "build", "-v", "-trimpath", "-ldflags", _ldflags(go_mod, version),
            "-o", str(built), _PACKAGE,
        ]  # fmt: skip
        _run(command, module_dir, version, report)
        built.chmod(0o755)
        built.rename(target)  # same directory, so atomic
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _run(command: list[str], module_dir: Path, version: str, report: Progress) -> None:
    # The module has no vendor directory and go.sum is committed: -mod=mod lets go resolve
    # what go.sum already pins even when GOFLAGS elsewhere says -mod=readonly.
    env = {**os.environ, "GOFLAGS": f"{os.environ.get('GOFLAGS', '')} -mod=mod".strip()}
    run_go_build(command, module_dir, f"helm {version}", report, env=env)


def main() -> int:
    """``python -m devcluster.helm``: build (or find) helm and print its path."""
    path = ensure_helm(progress=lambda m: print(m, flush=True))
    print(path, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
