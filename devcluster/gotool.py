"""Build (once) and cache a command-line tool from its own pinned Go module under ``hack/``.

helm (``hack/helm``) and kwok (``hack/kwok``) come from source through the Go module proxy,
like the control plane (no release downloads).  Each tool's version is the one its
``go.mod`` requires; the binary is cached in ``<cache_root>/<name>-<version>/<name>``, built
under the same kind of file lock as the control plane and moved into place with an atomic
rename, so a crash never leaves a half-written binary that looks usable.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
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

LdFlags = Callable[[str, str], list[str]]
"""``(go.mod text, version) -> extra -ldflags``, e.g. ``-X`` settings of the version string."""


def _no_ldflags(_go_mod: str, _version: str) -> list[str]:
    return []


@dataclass(frozen=True)
class GoTool:
    """One tool built from a pinned Go module."""

    name: str
    """The executable's name, e.g. ``kwok``."""
    module_dir: Path
    """The Go module that pins it, relative to the repository root, e.g. ``hack/kwok``."""
    module: str
    """The module whose required version is the tool's version, e.g. ``sigs.k8s.io/kwok``."""
    package: str
    """The main package to build, e.g. ``sigs.k8s.io/kwok/cmd/kwok``."""
    ldflags: LdFlags = _no_ldflags
    build_minutes: str = "a few"
    """How long a cold build takes on a small machine, for the progress message."""

    def go_mod(self, repo_root: Path | None = None) -> str:
        """The text of the tool's ``go.mod``."""
        path = (repo_root or find_repo_root()) / self.module_dir / "go.mod"
        try:
            return path.read_text()
        except OSError as exc:
            raise BuildError(f"cannot read the {self.name} Go module {path}: {exc}") from exc

    def version(self, repo_root: Path | None = None) -> str:
        """The version ``go.mod`` pins, e.g. ``v0.8.0``."""
        return required_version(self.go_mod(repo_root), self.module, self.module_dir)

    def path(self, repo_root: Path | None = None) -> Path:
        """Where the pinned binary lives once built (it may not exist yet)."""
        return cache_root() / f"{self.name}-{self.version(repo_root)}" / self.name

    def ensure(self, progress: Progress | None = None, *, repo_root: Path | None = None) -> Path:
        """Return the path of the pinned executable, building it on the first call; later
        calls return at once.  Concurrent callers wait for one build (a file lock)."""
        root = repo_root or find_repo_root()
        target = self.path(root)
        if os.access(target, os.X_OK):
            return target
        report = progress or silent
        target.parent.parent.mkdir(parents=True, exist_ok=True)
        with build_lock(target.parent.parent / f"{target.parent.name}.lock", report):
            if not os.access(target, os.X_OK):
                self._build(root, target, report)
        return target

    def _build(self, repo_root: Path, target: Path, report: Progress) -> None:
        module_dir = repo_root / self.module_dir
        go_mod = self.go_mod(repo_root)
        version = required_version(go_mod, self.module, self.module_dir)
        go = find_go()
        report(
            f"building {self.name} {version} from {module_dir}; this takes {self.build_minutes} "
            f"minutes on {os.cpu_count()} cores and is done once, the binary is cached in "
            f"{target}"
        )
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{self.name}.build-", dir=target.parent))
        try:
            built = staging / self.name
            ldflags = " ".join(["-s -w", *self.ldflags(go_mod, version)])
            command = [
                str(go), "build", "-v", "-trimpath", "-ldflags", ldflags,
                "-o", str(built), self.package,
            ]  # fmt: skip
            # The module has no vendor directory and go.sum is committed: -mod=mod lets go
            # resolve what go.sum already pins even when GOFLAGS elsewhere says -mod=readonly.
            env = {**os.environ, "GOFLAGS": f"{os.environ.get('GOFLAGS', '')} -mod=mod".strip()}
            run_go_build(command, module_dir, f"{self.name} {version}", report, env=env)
            built.chmod(0o755)
            built.rename(target)  # same directory, so atomic
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def main(self) -> int:
        """``python -m devcluster.<tool>``: build (or find) the tool and print its path."""
        path = self.ensure(progress=lambda m: print(m, flush=True))
        print(path, flush=True)
        return 0


def required_version(go_mod: str, module: str, module_dir: Path | str = "go.mod") -> str:
    """The version of ``module`` that the text of a ``go.mod`` requires."""
    match = re.search(rf"^\s*(?:require\s+)?{re.escape(module)}\s+(v\S+)", go_mod, re.MULTILINE)
    if not match:
        raise BuildError(f"{module_dir}/go.mod does not require {module}")
    return match.group(1)
