"""Real outages for e2e tests, on a control plane of the test's own.

- :func:`restart_apiserver`: stop kube-apiserver (SIGTERM, SIGKILL after 3 s) and start it
  again with the same command line (same port, certificates and etcd): every open connection
  breaks, watches included, as in an upgrade of the control plane. Clients get connection
  errors until it is back.
- :class:`PodWatchOutage`: the scheduler runs as a ServiceAccount bound to the deployed
  ClusterRole (deploy/rbac.yaml). The outage takes ``list`` and ``watch`` of pods out of that
  role and restarts the API server, so the open pod watch breaks and every new list or watch
  is refused (403) while binding, the node watch and events still work: the scheduler binds
  but hears nothing back. Putting the verbs back ends it (at the reflector's next retry).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import ssl
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from devcluster import ClusterInfo
from devcluster.controlplane import STATE_FILE, ProcessInfo
from tests.e2e.conftest import REPO, KubeRequest
from tests.e2e.deploy_fixtures import service_account_kubeconfig

APISERVER = "kube-apiserver"


def restart_apiserver(info: ClusterInfo, timeout: float = 120.0) -> ClusterInfo:
    """Stop kube-apiserver (SIGTERM to its process group) and start it again; returns the
    updated ``ClusterInfo`` (also written to ``state.json`` so ``down`` stops the new one)."""
    old = info.processes[APISERVER]
    cmdline = [a.decode() for a in Path(f"/proc/{old.pid}/cmdline").read_bytes().split(b"\0") if a]
    os.killpg(old.pid, signal.SIGTERM)
    # It stops accepting connections at once but drains open watches for up to a minute:
    # cut that short, the outage is what the test is about.
    deadline = time.monotonic() + 3
    while _alive(old.pid):
        if time.monotonic() > deadline:
            os.killpg(old.pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(old.pid, os.WNOHANG)  # our child when this process started it
        time.sleep(0.1)
    with old.log.open("ab") as log:
        popen = subprocess.Popen(
            cmdline,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=info.state_dir,
            start_new_session=True,
        )
    processes = {**info.processes, APISERVER: ProcessInfo(popen.pid, old.binary, old.log)}
    info = dataclasses.replace(info, processes=processes)
    state = info.state_dir / STATE_FILE
    state.with_suffix(".tmp").write_text(json.dumps(info.to_json(), indent=2) + "\n")
    state.with_suffix(".tmp").replace(state)
    context = ssl.create_default_context(cafile=str(info.ca_file))
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"{info.server}/readyz", context=context, timeout=5) as r:
                if r.read() == b"ok":
                    return info
        except OSError:
            pass
        if popen.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"kube-apiserver did not come back; see {old.log}")
        time.sleep(0.25)


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


class PodWatchOutage:
    """A ServiceAccount identity for the scheduler, whose pod watch can be taken away."""

    def __init__(self, request: KubeRequest, admin_kubeconfig: str, workdir: Path) -> None:
        self.request = request
        self.name = f"outage-{uuid.uuid4().hex[:6]}"
        docs = list(yaml.safe_load_all((REPO / "deploy" / "rbac.yaml").read_text()))
        role = next(d for d in docs if d["kind"] == "ClusterRole")
        self.rules: list[dict[str, Any]] = role["rules"]
        self.namespace = self.name
        request("POST", "/api/v1/namespaces", {"metadata": {"name": self.namespace}})
        request(
            "POST",
            f"/api/v1/namespaces/{self.namespace}/serviceaccounts",
            {"metadata": {"name": "scheduler"}},
        )
        self.role_path = f"/apis/rbac.authorization.k8s.io/v1/clusterroles/{self.name}"
        request(
            "POST",
            "/apis/rbac.authorization.k8s.io/v1/clusterroles",
            {"metadata": {"name": self.name}, "rules": self.rules},
        )
        request(
            "POST",
            "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
            {
                "metadata": {"name": self.name},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": self.name,
                },
                "subjects": [
                    {"kind": "ServiceAccount", "name": "scheduler", "namespace": self.namespace}
                ],
            },
        )
        self.kubeconfig = str(
            service_account_kubeconfig(
                request, admin_kubeconfig, self.namespace, "scheduler", workdir / "sa.kubeconfig"
            )
        )

    def _set_rules(self, rules: list[dict[str, Any]]) -> None:
        role = self.request("GET", self.role_path)
        role["rules"] = rules
        self.request("PUT", self.role_path, role)

    @contextlib.contextmanager
    def pods_unwatchable(self, info: ClusterInfo) -> Iterator[ClusterInfo]:
        """Inside: the scheduler's pod list/watch is refused; yields the restarted plane."""
        cut = [
            {**rule, "verbs": ["get"]} if "pods" in rule["resources"] else rule
            for rule in self.rules
        ]
        # Nodes keep their list+watch: only the pod watch is out.
        cut.append({"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list", "watch"]})
        self._set_rules(cut)
        try:
            yield restart_apiserver(info)
        finally:
            self._set_rules(self.rules)
