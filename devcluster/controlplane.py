"""Run a real etcd + kube-apiserver + kube-controller-manager, kwok's simulated kubelets
(and optionally kube-scheduler) on 127.0.0.1.

Everything a control plane owns lives in one state directory: PKI, etcd data, logs,
kubeconfigs and ``state.json`` (pids, ports, paths).  ``state.json`` is what lets a different
process (the CLI, a later test run) find and stop a control plane, so nothing is registered
globally: callers call :meth:`ControlPlane.down`.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from devcluster import kwok
from devcluster.build import Progress, ensure_binaries
from devcluster.pki import PkiFiles, write_pki
from devcluster.releases import DEFAULT_RELEASE, Release, get_release

STATE_FILE = "state.json"
SERVICE_CLUSTER_IP_RANGE = "10.0.0.0/24"
SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"
CLUSTER_NAME = "workload-dev"
_LOCALHOST = "127.0.0.1"
_ETCD_QUOTA_BYTES = 512 * 1024 * 1024
_LOG_TAIL_LINES = 40
_POLL_S = 0.25

# Stopped in reverse start order: clients before the servers they talk to.
_START_ORDER = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")

CONTROLLERS = ("*", "-node-lifecycle-controller")
"""kube-controller-manager's ``--controllers``: every controller on by default (namespace,
garbage collector, job, replicaset, deployment, podgc, persistentvolume binder,
resourceclaim, serviceaccount and its tokens, ...) except the node lifecycle controller.
Nodes here are API objects: kwok heartbeats the ones it manages, but a Node without the kwok
annotation (the benchmark's thousands) has no kubelet, and that controller would mark it
NotReady, taint it ``unreachable`` and evict its pods after 5 minutes."""


class ControlPlaneError(RuntimeError):
    """The control plane could not be started, reused or stopped."""


@dataclass(frozen=True)
class ProcessInfo:
    """One control-plane process as recorded in ``state.json``."""

    pid: int
    binary: Path
    log: Path


@dataclass(frozen=True)
class ClusterInfo:
    """How to reach a running dev control plane."""

    state_dir: Path
    release: str
    kubernetes_version: str
    server: str
    """``https://127.0.0.1:<port>`` of kube-apiserver."""
    kubeconfig: Path
    """Admin kubeconfig (``system:masters``)."""
    kube_scheduler_kubeconfig: Path
    """Kubeconfig for user ``system:kube-scheduler`` (the default RBAC role applies)."""
    pki: PkiFiles
    etcd_url: str
    ports: Mapping[str, int]
    processes: Mapping[str, ProcessInfo]
    reused: bool = field(default=False, compare=False)
    """True if :meth:`ControlPlane.up` found this control plane already running."""

    @property
    def ca_file(self) -> Path:
        return self.pki.ca_cert

    @property
    def with_kube_scheduler(self) -> bool:
        return "kube-scheduler" in self.processes

    @property
    def with_controller_manager(self) -> bool:
        return "kube-controller-manager" in self.processes

    @property
    def with_kwok(self) -> bool:
        return "kwok" in self.processes

    @property
    def kube_controller_manager_kubeconfig(self) -> Path:
        """Kubeconfig for user ``system:kube-controller-manager``."""
        return self.state_dir / "kube-controller-manager.kubeconfig"

    @property
    def kwok_kubeconfig(self) -> Path:
        """Kubeconfig for kwok (user ``kwok-controller`` in ``system:masters``)."""
        return self.state_dir / "kwok.kubeconfig"

    def shape(self) -> Components:
        """Which optional components run."""
        return Components(self.with_kube_scheduler, self.with_controller_manager, self.with_kwok)

    def to_json(self) -> dict[str, Any]:
        return {
            "release": self.release,
            "kubernetes_version": self.kubernetes_version,
            "server": self.server,
            "kubeconfig": str(self.kubeconfig),
            "kube_scheduler_kubeconfig": str(self.kube_scheduler_kubeconfig),
            "pki_dir": str(self.pki.directory),
            "etcd_url": self.etcd_url,
            "ports": dict(self.ports),
            "processes": {
                name: {"pid": p.pid, "binary": str(p.binary), "log": str(p.log)}
                for name, p in self.processes.items()
            },
        }

    @classmethod
    def from_json(cls, state_dir: Path, data: Mapping[str, Any]) -> ClusterInfo:
        return cls(
            state_dir=state_dir,
            release=data["release"],
            kubernetes_version=data["kubernetes_version"],
            server=data["server"],
            kubeconfig=Path(data["kubeconfig"]),
            kube_scheduler_kubeconfig=Path(data["kube_scheduler_kubeconfig"]),
            pki=PkiFiles(Path(data["pki_dir"])),
            etcd_url=data["etcd_url"],
            ports=dict(data["ports"]),
            processes={
                name: ProcessInfo(int(p["pid"]), Path(p["binary"]), Path(p["log"]))
                for name, p in data["processes"].items()
            },
        )


def load_cluster_info(state_dir: Path) -> ClusterInfo | None:
    """What ``state.json`` in ``state_dir`` records, or None if nothing was started there."""
    path = Path(state_dir) / STATE_FILE
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    return ClusterInfo.from_json(Path(state_dir), data)


@dataclass(frozen=True)
class Components:
    """The optional parts of a control plane (etcd and kube-apiserver always run)."""

    kube_scheduler: bool = False
    controller_manager: bool = True
    kwok: bool = True

    def describe(self) -> str:
        names = {
            "kube-scheduler": self.kube_scheduler,
            "kube-controller-manager": self.controller_manager,
            "kwok": self.kwok,
        }
        return ", ".join(f"{name}: {'yes' if on else 'no'}" for name, on in names.items())


@dataclass(frozen=True)
class KubeSchedulerOptions:
    """How to run the real kube-scheduler next to the apiserver."""

    release: Release
    feature_gates: Mapping[str, bool] | None = None
    """Overrides of the release's gates, for kube-scheduler only."""
    qps: float = 1000.0
    burst: int = 1000


class ControlPlane:
    """Starts and stops dev control planes; see :meth:`up` and :meth:`down`."""

    def __init__(
        self,
        *,
        progress: Progress | None = None,
        ready_timeout: float = 120.0,
        stop_grace: float = 15.0,
        verbosity: int = 1,
    ) -> None:
        self._report: Progress = progress or (lambda _message: None)
        self._ready_timeout = ready_timeout
        self._stop_grace = stop_grace
        self._verbosity = verbosity
        # Processes this object started, so they can be reaped (not left as zombies) on down.
        self._children: dict[int, subprocess.Popen[bytes]] = {}

    def up(
        self,
        state_dir: Path,
        release: str | Release = DEFAULT_RELEASE,
        *,
        with_kube_scheduler: bool = False,
        with_controller_manager: bool = True,
        with_kwok: bool = True,
        kube_scheduler_feature_gates: Mapping[str, bool] | None = None,
        kube_scheduler_qps: float = 1000.0,
        kube_scheduler_burst: int = 1000,
    ) -> ClusterInfo:
        """Start etcd, kube-apiserver, kube-controller-manager and kwok (and kube-scheduler
        if asked); wait until each is ready.

        If ``state_dir`` already holds a healthy control plane of the same release and shape,
        it is reused (``ClusterInfo.reused``).  A live but unhealthy or different one is an
        error: call :meth:`down` first.  Anything from a stopped run (etcd data, logs) is
        replaced, so every fresh ``up`` starts an empty cluster.

        ``kube_scheduler_feature_gates`` override the release's gates for kube-scheduler only.
        """
        state_dir = Path(state_dir).resolve()
        rel = get_release(release)
        shape = Components(with_kube_scheduler, with_controller_manager, with_kwok)
        reusable = self._check_existing(state_dir, rel, shape)
        if reusable is not None:
            return reusable
        binaries = ensure_binaries(rel, progress=self._report)
        kwok_binary = kwok.ensure_kwok(progress=self._report) if with_kwok else None
        started = time.monotonic()
        try:
            info = self._start(state_dir, rel, binaries)
            if with_controller_manager:
                info = self._start_controller_manager(info, binaries, rel)
            if with_kube_scheduler:
                options = KubeSchedulerOptions(
                    rel, kube_scheduler_feature_gates, kube_scheduler_qps, kube_scheduler_burst
                )
                info = self._start_kube_scheduler(info, binaries, options)
            if kwok_binary is not None:
                info = self._start_kwok(info, kwok_binary)
        except BaseException:
            # Leave nothing running behind a failed (or interrupted) start.
            self.down(state_dir)
            raise
        self._report(
            f"control plane {rel.kubernetes} ready at {info.server} in "
            f"{time.monotonic() - started:.1f}s; kubeconfig: {info.kubeconfig}"
        )
        return info

    def down(self, state_dir: Path) -> None:
        """Stop every process recorded in ``state_dir``; a no-op if none is running."""
        state_dir = Path(state_dir).resolve()
        info = load_cluster_info(state_dir)
        if info is None:
            return
        for name in reversed(_START_ORDER):
            proc = info.processes.get(name)
            if proc is not None:
                self._stop(name, proc)
        (state_dir / STATE_FILE).unlink(missing_ok=True)

    def is_healthy(self, info: ClusterInfo) -> bool:
        """All recorded processes alive, and kube-apiserver answers ``/readyz``."""
        if not all(_is_running(p) for p in info.processes.values()):
            return False
        try:
            return _https_get(info, info.server + "/readyz", timeout=5.0) == "ok"
        except (OSError, http.client.HTTPException):
            return False

    # -- starting ---------------------------------------------------------------------------

    def _check_existing(
        self, state_dir: Path, release: Release, shape: Components
    ) -> ClusterInfo | None:
        info = load_cluster_info(state_dir)
        if info is None:
            return None
        running = [name for name, p in info.processes.items() if _is_running(p)]
        if not running:
            self._report(f"clearing stopped control plane in {state_dir}")
            (state_dir / STATE_FILE).unlink()
            return None
        same_shape = info.kubernetes_version == release.kubernetes and info.shape() == shape
        if same_shape and self.is_healthy(info):
            self._report(f"reusing running control plane {info.server} from {state_dir}")
            return dataclasses.replace(info, reused=True)
        raise ControlPlaneError(
            f"{state_dir} has a running control plane ({', '.join(running)}; Kubernetes "
            f"{info.kubernetes_version}, {info.shape().describe()}) that is "
            f"{'unhealthy' if same_shape else 'not the one requested'}; stop it first "
            f"(devcluster.down({str(state_dir)!r}) or `workload-scheduler dev-cluster "
            f"down --state-dir {state_dir}`)"
        )

    def _start(self, state_dir: Path, release: Release, binaries: Path) -> ClusterInfo:
        _reset_state_dir(state_dir)
        pki = write_pki(state_dir / "pki")
        ports = _free_ports("etcd_client", "etcd_peer", "apiserver")
        info = ClusterInfo(
            state_dir=state_dir,
            release=release.minor,
            kubernetes_version=release.kubernetes,
            server=f"https://{_LOCALHOST}:{ports['apiserver']}",
            kubeconfig=state_dir / "kubeconfig",
            kube_scheduler_kubeconfig=state_dir / "kube-scheduler.kubeconfig",
            pki=pki,
            etcd_url=f"http://{_LOCALHOST}:{ports['etcd_client']}",
            ports=ports,
            processes={},
        )
        _write_kubeconfigs(info)
        info = self._launch(info, "etcd", binaries / "etcd", _etcd_args(info))
        self._wait_until("etcd", info, lambda: _etcd_healthy(info))
        apiserver_args = _apiserver_args(info, release, self._verbosity)
        info = self._launch(info, "kube-apiserver", binaries / "kube-apiserver", apiserver_args)
        self._wait_until(
            "kube-apiserver",
            info,
            lambda: _https_get(info, info.server + "/readyz", timeout=5.0) == "ok",
        )
        return info

    def _start_kube_scheduler(
        self, info: ClusterInfo, binaries: Path, options: KubeSchedulerOptions
    ) -> ClusterInfo:
        port = _free_ports("kube_scheduler")["kube_scheduler"]
        info = dataclasses.replace(info, ports={**info.ports, "kube_scheduler": port})
        config = info.state_dir / "kube-scheduler-config.yaml"
        config.write_text(_kube_scheduler_config(info, options.qps, options.burst))
        gates = options.release.feature_gates_flag(options.feature_gates)
        args = _kube_scheduler_args(info, config, gates, self._verbosity)
        info = self._launch(info, "kube-scheduler", binaries / "kube-scheduler", args)
        url = f"https://{_LOCALHOST}:{port}/readyz"
        self._wait_until("kube-scheduler", info, lambda: _https_get(info, url, 5.0) == "ok")
        return info

    def _start_controller_manager(
        self, info: ClusterInfo, binaries: Path, release: Release
    ) -> ClusterInfo:
        port = _free_ports("kube_controller_manager")["kube_controller_manager"]
        info = dataclasses.replace(info, ports={**info.ports, "kube_controller_manager": port})
        args = _controller_manager_args(info, release, self._verbosity)
        binary = binaries / "kube-controller-manager"
        info = self._launch(info, "kube-controller-manager", binary, args)
        url = f"https://{_LOCALHOST}:{port}/healthz"
        self._wait_until(
            "kube-controller-manager", info, lambda: _https_get(info, url, 5.0) == "ok"
        )
        return info

    def _start_kwok(self, info: ClusterInfo, binary: Path) -> ClusterInfo:
        port = _free_ports("kwok")["kwok"]
        info = dataclasses.replace(info, ports={**info.ports, "kwok": port})
        work_dir = info.state_dir / "kwok"
        work_dir.mkdir(exist_ok=True)
        # kwok reads ~/.kwok/kwok.yaml before --config unless its work dir points elsewhere.
        env = {**os.environ, "KWOK_WORKDIR": str(work_dir)}
        args = kwok.kwok_args(info.kwok_kubeconfig, port)
        info = self._launch(info, "kwok", binary, args, env=env)
        url = f"http://{_LOCALHOST}:{port}/healthz"
        self._wait_until("kwok", info, lambda: _http_get(url, 5.0) == "ok")
        return info

    def _launch(
        self,
        info: ClusterInfo,
        name: str,
        binary: Path,
        args: Sequence[str],
        env: Mapping[str, str] | None = None,
    ) -> ClusterInfo:
        log = info.state_dir / f"{name}.log"
        self._report(f"starting {name}")
        with log.open("wb") as log_file:
            popen = subprocess.Popen(
                [str(binary), *args],
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                cwd=info.state_dir,
                env=env,
                # Own process group: a crashed caller's processes can still be found and
                # killed as a group, and Ctrl-C in the caller's terminal does not reach them.
                start_new_session=True,
            )
        self._children[popen.pid] = popen
        processes = {**info.processes, name: ProcessInfo(popen.pid, binary, log)}
        info = dataclasses.replace(info, processes=processes)
        # Recorded before waiting for readiness, so down() can stop it if the wait fails.
        _write_state(info)
        return info

    def _wait_until(self, name: str, info: ClusterInfo, ready: Callable[[], bool]) -> None:
        proc = info.processes[name]
        deadline = time.monotonic() + self._ready_timeout
        last_error = "not ready yet"
        while time.monotonic() < deadline:
            if not _is_running(proc):
                raise ControlPlaneError(
                    f"{name} exited during startup; last lines of {proc.log}:\n{_tail(proc.log)}"
                )
            try:
                if ready():
                    return
            except (OSError, ValueError, http.client.HTTPException) as error:
                last_error = str(error)
            time.sleep(_POLL_S)
        raise ControlPlaneError(
            f"{name} not ready after {self._ready_timeout:.0f}s ({last_error}); "
            f"last lines of {proc.log}:\n{_tail(proc.log)}"
        )

    # -- stopping ---------------------------------------------------------------------------

    def _stop(self, name: str, proc: ProcessInfo) -> None:
        if not _is_running(proc):
            self._reap(proc.pid)
            return
        self._report(f"stopping {name} (pid {proc.pid})")
        _signal_group(proc.pid, signal.SIGTERM)
        if self._wait_exit(proc, self._stop_grace):
            return
        self._report(f"{name} ignored SIGTERM for {self._stop_grace:.0f}s; killing it")
        _signal_group(proc.pid, signal.SIGKILL)
        if not self._wait_exit(proc, 10.0):
            raise ControlPlaneError(f"{name} (pid {proc.pid}) survived SIGKILL")

    def _wait_exit(self, proc: ProcessInfo, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._reap(proc.pid)
            if not _is_running(proc):
                return True
            time.sleep(0.1)
        return False

    def _reap(self, pid: int) -> None:
        """Collect the exit status of a child that ended, so it does not linger as a zombie."""
        popen = self._children.get(pid)
        if popen is not None:
            if popen.poll() is not None:
                del self._children[pid]
            return
        # Started by another ControlPlane in this process (e.g. module-level up() then down()):
        # still our child; anyone else's pid raises ChildProcessError.
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)


def up(
    state_dir: Path | str,
    release: str | Release = DEFAULT_RELEASE,
    *,
    progress: Progress | None = None,
    **up_kwargs: Any,
) -> ClusterInfo:
    """``ControlPlane(progress=progress).up(...)``; the processes outlive this call."""
    return ControlPlane(progress=progress).up(Path(state_dir), release, **up_kwargs)


def down(state_dir: Path | str, *, progress: Progress | None = None) -> None:
    """Stop the control plane recorded in ``state_dir`` (from any process); idempotent."""
    ControlPlane(progress=progress).down(Path(state_dir))


@contextlib.contextmanager
def running_control_plane(
    state_dir: Path | str,
    *,
    progress: Progress | None = None,
    release: str | Release = DEFAULT_RELEASE,
    **up_kwargs: Any,
) -> Iterator[ClusterInfo]:
    """``up`` on entry, ``down`` on exit (unless an already running one was reused)."""
    control_plane = ControlPlane(progress=progress)
    info = control_plane.up(Path(state_dir), release, **up_kwargs)
    try:
        yield info
    finally:
        if not info.reused:
            control_plane.down(Path(state_dir))


# -- process bookkeeping ------------------------------------------------------------------


def _is_running(proc: ProcessInfo) -> bool:
    """The pid is alive, not a zombie, and still runs the recorded binary (not a reused pid)."""
    proc_dir = Path(f"/proc/{proc.pid}")
    try:
        stat = (proc_dir / "stat").read_text()
        exe = os.readlink(proc_dir / "exe")
    except OSError:
        return False
    state = stat.rsplit(")", 1)[1].split()[0]
    if state in ("Z", "X"):
        return False
    # A binary replaced by a rebuild shows as "<path> (deleted)".
    return exe.removesuffix(" (deleted)") == str(proc.binary)


def _signal_group(pid: int, sig: signal.Signals) -> None:
    # The process leads its own group (start_new_session), so this also reaches any children.
    with contextlib.suppress(ProcessLookupError):
        try:
            os.killpg(pid, sig)
        except PermissionError:
            os.kill(pid, sig)


def _reset_state_dir(state_dir: Path) -> None:
    state_dir.mkdir(parents=True, exist_ok=True)
    # A stopped cluster's etcd data names old peer URLs and would resurrect old objects.
    shutil.rmtree(state_dir / "etcd", ignore_errors=True)


def _write_state(info: ClusterInfo) -> None:
    path = info.state_dir / STATE_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(info.to_json(), indent=2) + "\n")
    tmp.replace(path)  # atomic: a reader never sees half a file


def _free_ports(*names: str) -> dict[str, int]:
    # All sockets stay open until every port is chosen, so the ports are distinct.  Another
    # program could still take one before the server binds it; startup then fails loudly.
    sockets = []
    try:
        for _ in names:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((_LOCALHOST, 0))
            sockets.append(sock)
        return {name: sock.getsockname()[1] for name, sock in zip(names, sockets, strict=True)}
    finally:
        for sock in sockets:
            sock.close()


def _tail(path: Path, lines: int = _LOG_TAIL_LINES) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError as error:
        return f"<cannot read {path}: {error}>"


# -- health probes ------------------------------------------------------------------------


def _etcd_healthy(info: ClusterInfo) -> bool:
    with urllib.request.urlopen(info.etcd_url + "/health", timeout=5.0) as response:
        return bool(json.loads(response.read()).get("health") == "true")


def _http_get(url: str, timeout: float) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return str(response.read().decode())


def _https_get(info: ClusterInfo, url: str, timeout: float) -> str:
    """GET ``url`` as the admin user, trusting only the dev CA."""
    context = ssl.create_default_context(cafile=str(info.pki.ca_cert))
    context.load_cert_chain(str(info.pki.admin_cert), str(info.pki.admin_key))
    try:
        with urllib.request.urlopen(url, timeout=timeout, context=context) as response:
            return str(response.read().decode())
    except urllib.error.HTTPError as error:  # e.g. 500 while post-start hooks still run
        error.close()
        return f"HTTP {error.code}"


# -- command lines and config files -------------------------------------------------------


def _etcd_args(info: ClusterInfo) -> list[str]:
    peer = f"http://{_LOCALHOST}:{info.ports['etcd_peer']}"
    return [
        "--name=default",
        f"--data-dir={info.state_dir / 'etcd'}",
        f"--listen-client-urls={info.etcd_url}",
        f"--advertise-client-urls={info.etcd_url}",
        f"--listen-peer-urls={peer}",
        f"--initial-advertise-peer-urls={peer}",
        f"--initial-cluster=default={peer}",
        "--initial-cluster-state=new",
        f"--quota-backend-bytes={_ETCD_QUOTA_BYTES}",
        # Durability is worthless for a throw-away test cluster, and fsync dominates write
        # latency on slow disks.
        "--unsafe-no-fsync",
        "--log-level=warn",
    ]


UNCACHED_RESOURCE = "podtemplates"
"""The one resource the dev API server serves without its watch cache (see below)."""


def _apiserver_args(info: ClusterInfo, release: Release, verbosity: int) -> list[str]:
    pki = info.pki
    args = [
        f"--etcd-servers={info.etcd_url}",
        f"--bind-address={_LOCALHOST}",
        f"--advertise-address={_LOCALHOST}",
        # 1.37 refuses a loopback advertise address for the endpoint reconciler; nothing
        # here needs the default/kubernetes Endpoints it maintains.
        "--endpoint-reconciler-type=none",
        f"--secure-port={info.ports['apiserver']}",
        f"--tls-cert-file={pki.apiserver_cert}",
        f"--tls-private-key-file={pki.apiserver_key}",
        # Only used if no serving certificate is given; keeps it out of /var/run/kubernetes.
        f"--cert-dir={info.state_dir / 'apiserver-certs'}",
        f"--client-ca-file={pki.ca_cert}",
        f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
        f"--service-account-key-file={pki.service_account_pub}",
        f"--service-account-signing-key-file={pki.service_account_key}",
        f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
        # Real authorization: tests use ServiceAccount tokens and expect denials.
        "--authorization-mode=Node,RBAC",
        # ServiceAccount: kube-controller-manager creates each namespace's "default"
        # ServiceAccount, but this plugin rejects pods created before it exists (tests and
        # the benchmark create pods the instant a namespace exists), and it would add a
        # token volume to every pod, which nothing here mounts.
        # TaintNodesByCondition: it taints every new Node not-ready, and the node lifecycle
        # controller that would remove the taint is off (see CONTROLLERS).
        "--disable-admission-plugins=ServiceAccount,TaintNodesByCondition",
        "--allow-privileged=true",
        # PodTemplates (used by nothing here) are watched straight from etcd, so a test can
        # compact etcd and see a real "resourceVersion too old" (410 Gone) on a watch.
        f"--watch-cache-sizes={UNCACHED_RESOURCE}#0",
        "--profiling=false",
        f"--v={verbosity}",
    ]
    if release.feature_gates:
        args.append(f"--feature-gates={release.feature_gates_flag()}")
    if release.runtime_config:
        args.append(f"--runtime-config={release.runtime_config_flag()}")
    return args


def _controller_manager_args(info: ClusterInfo, release: Release, verbosity: int) -> list[str]:
    pki = info.pki
    kubeconfig = str(info.kube_controller_manager_kubeconfig)
    args = [
        f"--kubeconfig={kubeconfig}",
        f"--bind-address={_LOCALHOST}",
        f"--secure-port={info.ports['kube_controller_manager']}",
        f"--tls-cert-file={pki.kube_controller_manager_serving_cert}",
        f"--tls-private-key-file={pki.kube_controller_manager_serving_key}",
        # Delegated authn/authz for /metrics, as for kube-scheduler below.
        f"--authentication-kubeconfig={kubeconfig}",
        f"--authorization-kubeconfig={kubeconfig}",
        f"--client-ca-file={pki.ca_cert}",
        "--authentication-skip-lookup=true",
        # A single instance; leader election would only add a Lease round-trip at startup.
        "--leader-elect=false",
        f"--controllers={','.join(CONTROLLERS)}",
        # Each controller acts as its own ServiceAccount (kube-system/<controller>) with its
        # own RBAC role, as in a kubeadm cluster.
        "--use-service-account-credentials=true",
        # The tokens controller signs legacy ServiceAccount token Secrets with the key the
        # API server verifies; the root CA goes into them and into kube-root-ca.crt.
        f"--service-account-private-key-file={pki.service_account_key}",
        f"--root-ca-file={pki.ca_cert}",
        # The CSR signer issues certificates from the dev CA (kubelet-style clients).
        f"--cluster-signing-cert-file={pki.ca_cert}",
        f"--cluster-signing-key-file={pki.ca_key}",
        f"--cluster-name={CLUSTER_NAME}",
        # Above the defaults (20/30) so that a namespace or a big Job is not throttled.
        "--kube-api-qps=100",
        "--kube-api-burst=200",
        "--profiling=false",
        f"--v={verbosity}",
    ]
    if release.feature_gates:
        args.append(f"--feature-gates={release.feature_gates_flag()}")
    return args


def _kube_scheduler_args(
    info: ClusterInfo, config: Path, feature_gates: str, verbosity: int
) -> list[str]:
    pki = info.pki
    kubeconfig = str(info.kube_scheduler_kubeconfig)
    return [
        f"--config={config}",
        f"--bind-address={_LOCALHOST}",
        f"--secure-port={info.ports['kube_scheduler']}",
        f"--tls-cert-file={pki.kube_scheduler_serving_cert}",
        f"--tls-private-key-file={pki.kube_scheduler_serving_key}",
        # Delegated authn/authz for its HTTPS endpoint (/metrics needs an authorized user;
        # /healthz, /readyz, /livez are always allowed).
        f"--authentication-kubeconfig={kubeconfig}",
        f"--authorization-kubeconfig={kubeconfig}",
        # Trust our CA directly instead of looking the CAs up in the extension-apiserver-
        # authentication ConfigMap: that lookup also wants a front-proxy (requestheader) CA,
        # which this apiserver has no use for, and logs an error every second without it.
        f"--client-ca-file={pki.ca_cert}",
        "--authentication-skip-lookup=true",
        *([f"--feature-gates={feature_gates}"] if feature_gates else []),
        f"--v={verbosity}",
    ]


def _kube_scheduler_config(info: ClusterInfo, qps: float, burst: int) -> str:
    config = {
        "apiVersion": "kubescheduler.config.k8s.io/v1",
        "kind": "KubeSchedulerConfiguration",
        # A single instance; leader election would only add a lease round-trip at startup.
        "leaderElection": {"leaderElect": False},
        "clientConnection": {
            "kubeconfig": str(info.kube_scheduler_kubeconfig),
            "qps": qps,
            "burst": burst,
        },
    }
    return yaml.safe_dump(config, sort_keys=False)


def _write_kubeconfigs(info: ClusterInfo) -> None:
    pki = info.pki
    users = (
        (info.kubeconfig, "admin", pki.admin_cert, pki.admin_key),
        (info.kube_scheduler_kubeconfig, "kube-scheduler", pki.kube_scheduler_cert,
         pki.kube_scheduler_key),
        (info.kube_controller_manager_kubeconfig, "kube-controller-manager",
         pki.kube_controller_manager_cert, pki.kube_controller_manager_key),
        (info.kwok_kubeconfig, "kwok", pki.kwok_cert, pki.kwok_key),
    )  # fmt: skip
    for path, user, cert, key in users:
        text = kubeconfig_yaml(info.server, pki.ca_cert.read_bytes(), user, cert, key)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # holds a key
        with os.fdopen(fd, "w") as handle:
            handle.write(text)


def kubeconfig_yaml(server: str, ca_pem: bytes, user: str, cert: Path, key: Path) -> str:
    """A kubeconfig with the CA, client certificate and key embedded (self-contained)."""

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode()

    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": CLUSTER_NAME,
                "cluster": {"server": server, "certificate-authority-data": b64(ca_pem)},
            }
        ],
        "users": [
            {
                "name": user,
                "user": {
                    "client-certificate-data": b64(cert.read_bytes()),
                    "client-key-data": b64(key.read_bytes()),
                },
            }
        ],
        "contexts": [{"name": user, "context": {"cluster": CLUSTER_NAME, "user": user}}],
        "current-context": user,
    }
    return yaml.safe_dump(config, sort_keys=False)
