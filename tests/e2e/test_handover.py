"""Graceful leader hand-over: a leader stopped with SIGTERM (a rolling update) releases its
Lease, so the follower takes over at its next retry, not after the whole lease duration."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import yaml
from kubernetes.client.exceptions import ApiException

from tests.e2e.conftest import KubeRequest, NodeFactory
from tests.e2e.deploy_fixtures import running
from tests.e2e.k8s import pod_manifest, wait_until
from tests.e2e.scheduler_process import SchedulerProcess


def _identity(proc: SchedulerProcess) -> str:
    for line in proc.log_path.read_text().splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("event") == "waiting for leadership":
            return str(entry["identity"])
    return ""


def test_sigterm_hands_the_lease_over_at_once(
    kubeconfig: str,
    kube_request: KubeRequest,
    node_factory: NodeFactory,
    namespace: str,
    tmp_path: Path,
) -> None:
    lease_duration, retry_period = 15, 1  # the default lease: waiting it out takes 15 s
    config = tmp_path / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "leader_elect_lease_duration": lease_duration,
                "leader_elect_renew_deadline": 10,
                "leader_elect_retry_period": retry_period,
            }
        )
    )
    name = f"ws-{uuid.uuid4().hex[:8]}"
    zone = {"handover-test": name}
    node_factory(f"{name}-n0", cpu="4", memory="8Gi", labels=zone)
    args = ("--config", str(config), "--leader-elect")
    args += ("--leader-elect-namespace", namespace, "--leader-elect-lease-name", name)
    logs = [tmp_path / "a", tmp_path / "b"]
    for log_dir in logs:
        log_dir.mkdir()
    procs = [SchedulerProcess(kubeconfig, log_dir, *args, name=name) for log_dir in logs]
    lease_path = f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/{name}"
    pods_path = f"/api/v1/namespaces/{namespace}/pods"

    def holder() -> str:
        try:
            return str(kube_request("GET", lease_path)["spec"].get("holderIdentity") or "")
        except ApiException as exc:
            if exc.status == 404:
                return ""
            raise

    with running(*procs, timeout=60):
        identities = [wait_until(lambda p=p: _identity(p), what="identity") for p in procs]  # type: ignore[misc]
        leader_identity = wait_until(holder, timeout=20, what="a leader")
        leader = procs[identities.index(leader_identity)]
        follower_identity = identities[1 - identities.index(leader_identity)]

        stopped = time.monotonic()
        leader.stop()  # SIGTERM, as a rolling update sends it
        assert leader.proc is not None and leader.proc.returncode == 0
        wait_until(
            lambda: holder() == follower_identity,
            timeout=lease_duration + 5,
            interval=0.05,
            what="the follower to hold the lease",
        )
        took = time.monotonic() - stopped
        print(f"hand-over: the follower led {took:.2f}s after SIGTERM to the leader")
        assert took < 2.0, f"hand-over took {took:.1f}s (the lease is {lease_duration}s)"

        kube_request("POST", pods_path, pod_manifest("after", scheduler=name, node_selector=zone))
        wait_until(
            lambda: kube_request("GET", f"{pods_path}/after")["spec"].get("nodeName"),
            timeout=10,
            what="the new leader to bind",
        )
