"""Graceful leader hand-over: a leader stopped with SIGTERM (a rolling update) releases its
Lease, so the follower takes over at its next retry, not after the whole lease duration."""

from __future__ import annotations

import time
from pathlib import Path

from tests.e2e.conftest import KubeRequest, NodeFactory
from tests.e2e.deploy_fixtures import identity_of, leader_pair, running
from tests.e2e.k8s import pod_manifest, wait_until


def test_sigterm_hands_the_lease_over_at_once(
    kubeconfig: str,
    kube_request: KubeRequest,
    node_factory: NodeFactory,
    namespace: str,
    tmp_path: Path,
) -> None:
    lease_duration, retry_period = 15, 1  # the default lease: waiting it out takes 15 s
    pair = leader_pair(
        kubeconfig,
        kube_request,
        node_factory,
        namespace,
        tmp_path,
        lease_duration=lease_duration,
        renew_deadline=10,
        retry_period=retry_period,
    )
    name, zone, procs, holder = pair.name, pair.zone, pair.procs, pair.holder
    pods_path = f"/api/v1/namespaces/{namespace}/pods"

    with running(*procs, timeout=60):
        identities = [wait_until(lambda p=p: identity_of(p), what="identity") for p in procs]  # type: ignore[misc]
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
