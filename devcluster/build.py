"""Build (once) and cache the control-plane binaries from the pinned Go module.

The binaries come from source because the dev cluster must run without Docker or release
downloads: only the Go module proxy is reachable.  A cold build compiles a few thousand
packages, so the result is cached per Kubernetes version and the build reports progress.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path

from devcluster.releases import DEFAULT_RELEASE, Release, get_release

Progress = Callable[[str], None]

BINARIES = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler")
"""Executables :func:`ensure_binaries` guarantees in the directory it returns."""

_PACKAGES = {
    "etcd": "go.etcd.io/etcd/server/v3",
    "kube-apiserver": "k8s.io/kubernetes/cmd/kube-apiserver",
    "kube-controller-manager": "k8s.io/kubernetes/cmd/kube-controller-manager",
    "kube-scheduler": "k8s.io/kubernetes/cmd/kube-scheduler",
}
# With ``-o DIR/`` Go names each binary after its package's last element, which for etcd is
# "server"; it is renamed after the build.
_BUILT_NAMES = {"etcd": "server"}
_VERSION_PKG = "k8s.io/component-base/version"
_PROGRESS_EVERY_S = 10.0
_ERROR_TAIL_LINES = 40
_GO_FALLBACKS = (Path("/usr/local/go/bin/go"),)


class BuildError(RuntimeError):
    """Building the control-plane binaries failed."""


class GoNotFoundError(BuildError):
    """No Go toolchain is available to build the binaries."""


def cache_root() -> Path:
    """``$WORKLOAD_SCHEDULER_CACHE``, else ``${XDG_CACHE_HOME:-~/.cache}/workload-scheduler``."""
    override = os.environ.get("WORKLOAD_SCHEDULER_CACHE")
    if override:
        return Path(override).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "workload-scheduler"


def binaries_dir(release: Release | str = DEFAULT_RELEASE) -> Path:
    """Where the binaries of ``release`` live once built (they may not exist yet)."""
    return cache_root() / f"k8s-{get_release(release).kubernetes}"


def ensure_binaries(
    release: Release | str = DEFAULT_RELEASE,
    *,
    progress: Progress | None = None,
    repo_root: Path | None = None,
) -> Path:
    """Return the directory holding :data:`BINARIES` (etcd, kube-apiserver,
    kube-controller-manager, kube-scheduler).

    Builds them with Go on the first call for a version; later calls return at once.  Only
    the missing ones are built, so a cache filled before a binary joined :data:`BINARIES`
    gains just that one.  A file lock makes concurrent callers (a test run and the demo, say)
    wait for one build instead of running two.
    """
    rel = get_release(release)
    target = binaries_dir(rel)
    if _is_complete(target):
        return target
    report = progress or silent
    target.parent.mkdir(parents=True, exist_ok=True)
    with build_lock(target.parent / f"{target.name}.lock", report):
        # Another caller may have finished the build while this one waited for the lock.
        if not _is_complete(target):
            _build(rel, target, report, repo_root or find_repo_root())
    return target


def find_repo_root(start: Path | None = None) -> Path:
    """The nearest ancestor of ``start`` (default: this file) holding ``hack/controlplane``."""
    here = (start or Path(__file__)).resolve()
    for candidate in (here, *here.parents):
        if (candidate / "hack" / "controlplane").is_dir():
            return candidate
    raise BuildError(
        f"cannot find the repository root (a directory with hack/controlplane) above {here}; "
        "the control plane is built from the Go modules there"
    )


def find_go() -> Path:
    """The ``go`` executable: from PATH, else the standard install location."""
    found = shutil.which("go")
    if found:
        return Path(found)
    for fallback in _GO_FALLBACKS:
        if os.access(fallback, os.X_OK):
            return fallback
    raise GoNotFoundError(
        "the Go toolchain ('go') is not on PATH, and it is needed once to build kube-apiserver, "
        "kube-controller-manager, kube-scheduler, etcd, kwok and helm from source. Install "
        "Go >= 1.26 from https://go.dev/dl/ (e.g. unpack go*.linux-amd64.tar.gz into "
        "/usr/local and add /usr/local/go/bin to PATH), or point WORKLOAD_SCHEDULER_CACHE at a "
        "directory that already holds "
        f"k8s-<version>/{{{','.join(BINARIES)}}}."
    )


def silent(_message: str) -> None:
    pass


def _is_complete(directory: Path) -> bool:
    return all(os.access(directory / name, os.X_OK) for name in BINARIES)


@contextlib.contextmanager
def build_lock(lock_path: Path, report: Progress) -> Iterator[None]:
    """One build at a time per cache entry, across processes."""
    with lock_path.open("a") as handle:
        _acquire(handle.fileno(), lock_path, report)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _acquire(fd: int, lock_path: Path, report: Progress) -> None:
    """Take the lock, telling the user every so often while another build holds it."""
    started = time.monotonic()
    next_report = started
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            now = time.monotonic()
            if now >= next_report:
                report(
                    f"another process is building this (lock {lock_path}); "
                    f"waiting for it, {now - started:.0f}s so far"
                )
                next_report = now + _PROGRESS_EVERY_S
            time.sleep(1.0)


def _build(release: Release, target: Path, report: Progress, repo_root: Path) -> None:
    module_dir = repo_root / release.module_dir
    if not (module_dir / "go.mod").is_file():
        raise BuildError(f"no Go module for Kubernetes {release.kubernetes} at {module_dir}")
    go = find_go()
    missing = [name for name in BINARIES if not os.access(target / name, os.X_OK)]
    report(
        f"building control plane {release.kubernetes} ({', '.join(missing)}; etcd "
        f"{release.etcd}) from {module_dir}. The first build compiles thousands of Go "
        f"packages and takes a long time on {os.cpu_count()} cores (tens of minutes); it is "
        f"done once, binaries are cached in {target}."
    )
    # Build next to the cache dir so each final rename stays on one filesystem (atomic): a
    # crash never leaves a half-written binary that looks complete.
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.build-", dir=target.parent))
    try:
        command = _build_command(go, release, staging, [_PACKAGES[name] for name in missing])
        run_go_build(command, module_dir, f"control plane {release.kubernetes}", report)
        target.mkdir(mode=0o755, exist_ok=True)  # the binaries are not secret
        for name in missing:
            (staging / _BUILT_NAMES.get(name, name)).rename(target / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _build_command(go: Path, release: Release, out_dir: Path, packages: list[str]) -> list[str]:
    major, minor = release.minor.split(".")
    # kube-apiserver reports gitVersion in /version; without it a source build says v0.0.0.
    ldflags = " ".join(
        [
            "-s -w",
            f"-X {_VERSION_PKG}.gitVersion={release.kubernetes}",
            f"-X {_VERSION_PKG}.gitMajor={major}",
            f"-X {_VERSION_PKG}.gitMinor={minor}",
        ]
    )
    # One invocation for all of them lets Go compile their shared dependencies once, in
    # parallel.
    return [
        str(go), "build", "-v", "-trimpath", "-ldflags", ldflags,
        "-o", f"{out_dir}{os.sep}", *packages,
    ]  # fmt: skip


class _BuildOutput:
    """Collects ``go build -v`` output on a reader thread: a package count and a tail."""

    def __init__(self) -> None:
        self.packages = 0
        self.last_package = ""
        self.tail: deque[str] = deque(maxlen=_ERROR_TAIL_LINES)
        self._lock = threading.Lock()

    def consume(self, stream: Iterator[str]) -> None:
        for raw in stream:
            line = raw.rstrip()
            with self._lock:
                self.tail.append(line)
                # -v prints one bare import path per compiled package; errors have spaces.
                if line and " " not in line and not line.startswith("#"):
                    self.packages += 1
                    self.last_package = line

    def snapshot(self) -> tuple[int, str]:
        with self._lock:
            return self.packages, self.last_package


def run_go_build(
    command: list[str],
    module_dir: Path,
    what: str,
    report: Progress,
    env: dict[str, str] | None = None,
) -> None:
    """Run ``go build -v``, reporting progress every few seconds; raise with the output's
    tail if it fails. ``what`` names the build in messages, e.g. ``control plane v1.35.4``."""
    started = time.monotonic()
    output = _BuildOutput()
    with subprocess.Popen(
        command,
        cwd=module_dir,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        env=env,
    ) as proc:
        assert proc.stdout is not None  # guaranteed by stdout=PIPE
        reader = threading.Thread(target=output.consume, args=(proc.stdout,), daemon=True)
        reader.start()
        try:
            _report_until_exit(proc, output, what, started, report)
        except BaseException:
            # Interrupted (Ctrl-C, test timeout): do not leave a compiler running.
            proc.kill()
            raise
        finally:
            reader.join(timeout=5)
    elapsed = time.monotonic() - started
    if proc.returncode != 0:
        tail = "\n".join(output.tail)
        raise BuildError(
            f"`go build` of {what} failed (exit {proc.returncode}) after "
            f"{elapsed:.0f}s in {module_dir} ({command[0]}); last output:\n{tail}"
        )
    report(f"built {what} in {elapsed:.0f}s ({output.packages} packages compiled)")


def _report_until_exit(
    proc: subprocess.Popen[str],
    output: _BuildOutput,
    what: str,
    started: float,
    report: Progress,
) -> None:
    while True:
        try:
            proc.wait(timeout=_PROGRESS_EVERY_S)
            return
        except subprocess.TimeoutExpired:
            count, last = output.snapshot()
            suffix = f" (last: {last})" if last else ""
            elapsed = time.monotonic() - started
            report(f"building {what}: {count} packages compiled{suffix}, {elapsed:.0f}s so far")


def main(argv: list[str] | None = None) -> int:
    """``python -m devcluster.build [RELEASE ...]``: build (or find) the binaries of
    every release named, by default all of them, printing progress (CI runs this first)."""
    import sys

    from devcluster.releases import RELEASES

    names = (argv if argv is not None else sys.argv[1:]) or list(RELEASES)
    for name in names:
        directory = ensure_binaries(name, progress=lambda m: print(m, flush=True))
        print(f"control plane {get_release(name).kubernetes}: {directory}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
