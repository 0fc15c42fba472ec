"""Gangs whose pods are gated, replaced or lose their node, on a real API server (our CRD)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.e2e.k8s import failed_scheduling_message, placements, wait_until
from tests.e2e.scheduler_process import SchedulerProcess

HOLD = "example.com/hold"


def bound(gang: Any) -> dict[str, str]:
    return {n: node for n, node in placements(gang.core, gang.ns).items() if node}


def member(gang: Any, name: str, workload: str = "w", **pod: Any) -> None:
    pod.setdefault("scheduler", gang.scheduler_name)
    metadata = pod.pop("metadata", {})
    manifest = gang.mode.member(name, workload, "g", **pod)
    manifest["metadata"].update(metadata)
    gang.mode.create_pod(gang.ns, manifest)


@pytest.mark.parametrize("gang", ["crd"], indirect=True)
def test_gated_member_never_enters_a_gang_pass(gang: Any) -> None:
    """Two members ready, the third still gated (as Kueue leaves pods until admission):
    nothing is bound (the gated one was taken along, refused by the API server, and the
    gang reported scheduled with two of three bound)."""
    for i in range(3):
        gang.node(f"{gang.ns[-8:]}-{i}", cpu="2", memory="4Gi")
    gang.mode.create_workload(gang.ns, "w", {"g": 3})
    member(gang, "m-0", cpu="1500m")
    member(gang, "m-1", cpu="1500m")
    member(gang, "m-2", cpu="1500m", extra_spec={"schedulingGates": [{"name": "example.com/q"}]})
    message = wait_until(
        lambda: failed_scheduling_message(gang.core, gang.ns, "m-0"), what="m-0 told why"
    )
    assert "2 of 3 more members are pending" in message, message
    time.sleep(3)
    assert bound(gang) == {}
    assert gang.mode.scheduled_status(gang.ns, "w", "g") != "True"
    gang.core.patch_namespaced_pod(
        "m-2", gang.ns, [{"op": "remove", "path": "/spec/schedulingGates"}]
    )
    wait_until(lambda: len(bound(gang)) == 3, timeout=30, what="the whole gang bound")
    wait_until(
        lambda: gang.mode.scheduled_status(gang.ns, "w", "g") == "True",
        what="the gang reported scheduled",
    )


@pytest.mark.parametrize("gang", ["crd"], indirect=True)
def test_terminating_members_do_not_count_as_running(gang: Any) -> None:
    """A gang's pods are being replaced (as a Job or JobSet does): the old ones are
    terminating, still bound. A single new member must wait for the quorum, not join the
    'running' gang alone."""
    for i in range(4):
        gang.node(f"{gang.ns[-8:]}-{i}", cpu="2", memory="4Gi")
    gang.mode.create_workload(gang.ns, "w", {"g": 2})
    hold = {"finalizers": [HOLD]}  # keeps them terminating, kubelet or not
    try:
        member(gang, "old-0", cpu="500m", metadata=hold)
        member(gang, "old-1", cpu="500m", metadata=hold)
        wait_until(lambda: len(bound(gang)) == 2, what="the first gang bound")
        for name in ("old-0", "old-1"):
            gang.core.delete_namespaced_pod(name, gang.ns)
        wait_until(
            lambda: all(
                gang.core.read_namespaced_pod(n, gang.ns).metadata.deletion_timestamp
                for n in ("old-0", "old-1")
            ),
            what="both terminating",
        )
        member(gang, "new-0", cpu="500m")
        message = wait_until(
            lambda: failed_scheduling_message(gang.core, gang.ns, "new-0"), what="new-0 told"
        )
        assert "1 of 2 pods exist" in message, message
        assert "new-0" not in bound(gang)
        member(gang, "new-1", cpu="500m")
        wait_until(lambda: {"new-0", "new-1"} <= set(bound(gang)), what="the new gang bound whole")
    finally:
        for name in ("old-0", "old-1"):
            gang.core.patch_namespaced_pod(name, gang.ns, {"metadata": {"finalizers": None}})


@pytest.mark.parametrize("gang", ["crd"], indirect=True)
def test_never_bound_to_a_deleted_node_and_a_lost_node_is_reported(
    gang: Any, tmp_path: Any
) -> None:
    """A gang of 8 on 8 nodes, bound slowly (2 requests/s); a node still waiting for its
    member is deleted and a spare added. The API server accepts a Binding to a missing
    node: the member must be repaired onto the spare, not bound to the deleted node."""
    name = f"gone-{gang.ns[-6:]}"
    slow = ("--kube-api-qps", "2", "--kube-api-burst", "2")
    proc = SchedulerProcess(gang.kubeconfig, tmp_path, *slow, name=name).start(timeout=60)
    try:
        prefix = gang.ns[-8:]
        nodes = [f"{prefix}-{i}" for i in range(8)]
        for node in nodes:
            gang.node(node, cpu="2", memory="4Gi")
        gang.mode.create_workload(gang.ns, "w", {"g": 8})
        for i in range(8):
            member(gang, f"m-{i}", cpu="1500m", scheduler=name)
        first = wait_until(lambda: bound(gang), interval=0.02, what="binding under way")
        victim = next(n for n in nodes if n not in first.values())
        gang.core.delete_node(victim)
        gang.node(f"{prefix}-spare", cpu="2", memory="4Gi")
        result = wait_until(lambda: len(bound(gang)) == 8 and bound(gang), timeout=60, what="8")
        assert victim not in result.values(), f"bound to the deleted node {victim}: {result}"
        assert len(set(result.values())) == 8

        # After binding, a member's node goes away: the group hears it is below minCount.
        lost = result["m-0"]
        gang.core.delete_node(lost)

        def told() -> list[str]:
            return [
                e.message
                for e in gang.core.list_namespaced_event(gang.ns).items
                if e.involved_object.kind == "Workload" and e.reason == "MemberNodeDeleted"
            ]

        messages = wait_until(told, timeout=20, what="the Workload told")
        assert f"node {lost} was deleted with 1 member(s)" in messages[0], messages
        assert "7 of minCount 8 members are on nodes that exist" in messages[0], messages
    finally:
        proc.stop()
