"""Gang scheduling on a real API server, in each API mode (v1alpha1, v1beta1, crd).

The ``gang`` fixture (conftest) runs each test once per mode against the right control
plane, with our scheduler running and a fresh namespace.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.e2e.k8s import failed_scheduling_message, placements, wait_until
from tests.e2e.scheduler_process import SchedulerProcess

GPU = {"nvidia.com/gpu": "1"}


def bound(gang: Any, prefix: str = "") -> dict[str, str]:
    return {
        n: node
        for n, node in placements(gang.core, gang.ns).items()
        if node and n.startswith(prefix)
    }


def submit(
    gang: Any, workload: str, group: str, count: int, prefix: str, replica_key: str = "", **pod: Any
) -> list[str]:
    names = [f"{prefix}-{i}" for i in range(count)]
    for name in names:
        gang.mode.create_pod(
            gang.ns,
            gang.mode.member(
                name, workload, group, replica_key, scheduler=gang.scheduler_name, **pod
            ),
        )
    return names


def settle(seconds: float = 2.0) -> None:
    """Give the scheduler time to do something wrong (e.g. bind part of a gang)."""
    time.sleep(seconds)


def test_gang_of_four_with_room_for_three_waits_then_binds_all(gang: Any) -> None:
    for i in range(3):
        gang.node(f"gpu-{i}", cpu="4", memory="8Gi", extra={"nvidia.com/gpu": "1"})
    gang.mode.create_workload(gang.ns, "train", {"workers": 4})
    names = submit(gang, "train", "workers", 4, "w", cpu="2", gpu="1")
    message = wait_until(
        lambda: failed_scheduling_message(gang.core, gang.ns, names[0]),
        what="the gang's FailedScheduling event",
    )
    # Three GPUs for four members: ruled out by the free capacity, without a trial.
    assert (
        "needs 4 x {cpu: 2, memory: 64Mi, nvidia.com/gpu: 1}; "
        "short by 1 nvidia.com/gpu (at most 3 fit)"
    ) in message, message
    if gang.mode.name != "v1alpha1":  # the v1alpha1 Workload has no status
        wait_until(
            lambda: gang.mode.scheduled_status(gang.ns, "train", "workers") == "False",
            what="status says not scheduled",
        )
    settle()
    assert bound(gang) == {}
    gang.node("gpu-3", cpu="4", memory="8Gi", extra={"nvidia.com/gpu": "1"})
    result = wait_until(
        lambda: len(bound(gang)) == 4 and bound(gang), timeout=30, what="all four bound"
    )
    assert len(set(result.values())) == 4
    if gang.mode.name != "v1alpha1":
        wait_until(
            lambda: gang.mode.scheduled_status(gang.ns, "train", "workers") == "True",
            what="status says scheduled",
        )


def test_gang_two_gangs_that_fit_one_at_a_time(gang: Any) -> None:
    for i in range(4):
        gang.node(f"n{i}", cpu="2", memory="4Gi")
    gang.mode.create_workload(gang.ns, "a", {"g": 4})
    gang.mode.create_workload(gang.ns, "b", {"g": 4})
    submit(gang, "a", "g", 4, "a", cpu="1500m")
    submit(gang, "b", "g", 4, "b", cpu="1500m")
    wait_until(lambda: len(bound(gang)) == 4, what="one gang bound")
    settle()
    a, b = bound(gang, "a-"), bound(gang, "b-")
    assert sorted([len(a), len(b)]) == [0, 4], (a, b)
    first = "a" if a else "b"
    for i in range(4):  # the first gang finishes (no kubelet: we write the phase)
        gang.core.patch_namespaced_pod_status(
            f"{first}-{i}", gang.ns, {"status": {"phase": "Succeeded"}}
        )
    second = "b" if first == "a" else "a"
    wait_until(
        lambda: len(bound(gang, f"{second}-")) == 4, timeout=30, what="the second gang bound"
    )


def test_gang_pods_created_before_their_workload_wait_for_it(gang: Any) -> None:
    gang.node("n0", cpu="8", memory="16Gi")
    names = submit(gang, "late", "g", 3, "p")
    message = wait_until(
        lambda: failed_scheduling_message(gang.core, gang.ns, names[0]),
        what="the gated pod told why",
    )
    assert "to appear" in message and "late" in message, message
    condition = next(
        c
        for c in gang.core.read_namespaced_pod(names[0], gang.ns).status.conditions
        if c.type == "PodScheduled"
    )
    assert (condition.status, condition.reason) == ("False", "NotReadyForScheduling")
    assert bound(gang) == {}
    gang.mode.create_workload(gang.ns, "late", {"g": 3})
    wait_until(lambda: len(bound(gang)) == 3, timeout=30, what="gang bound once its object exists")


def test_gang_min_count_four_of_six_with_room_for_five(gang: Any) -> None:
    for i in range(5):
        gang.node(f"n{i}", cpu="2", memory="4Gi")
    gang.mode.create_workload(gang.ns, "job", {"g": 4})
    submit(gang, "job", "g", 6, "p", cpu="1500m")
    wait_until(lambda: len(bound(gang)) >= 4, what="at least minCount bound")
    settle()
    assert len(bound(gang)) == 5


def test_gang_replica_keys_are_independent_gangs(gang: Any) -> None:
    gang.node("n0", cpu="2", memory="4Gi")
    gang.node("n1", cpu="2", memory="4Gi")
    gang.mode.create_workload(gang.ns, "rep", {"g": 2}, replica_keys={"g": ["r0", "r1"]})
    submit(gang, "rep", "g", 2, "r0", replica_key="r0", cpu="1")
    submit(gang, "rep", "g", 1, "r1", replica_key="r1", cpu="1")
    wait_until(lambda: len(bound(gang, "r0-")) == 2, what="replica r0 bound")
    settle()
    assert bound(gang, "r1-") == {}  # r1 has 1 of 2 members: still waiting
    submit(gang, "rep", "g", 1, "r1-late", replica_key="r1", cpu="1")
    wait_until(lambda: len(bound(gang, "r1")) == 2, what="replica r1 bound")


# The v1alpha1 Workload has no topology constraint.
@pytest.mark.parametrize("gang", ["v1beta1", "crd"], indirect=True)
def test_gang_topology_keeps_members_in_one_domain(gang: Any) -> None:
    # r1 is too small, r2 and r3 both fit: r2 leaves less capacity unused.
    for rack, count in (("r1", 2), ("r2", 3), ("r3", 5)):
        for i in range(count):
            gang.node(f"{rack}-{i}", cpu="2", memory="4Gi", labels={"rack": rack})
    gang.mode.create_workload(gang.ns, "tp", {"g": 3}, topology_key="rack")
    submit(gang, "tp", "g", 3, "p", cpu="1500m")
    result = wait_until(lambda: len(bound(gang)) == 3 and bound(gang), what="gang bound")
    assert {node.split("-")[0] for node in result.values()} == {"r2"}


def test_gang_invalid_input_is_reported_and_others_still_run(gang: Any) -> None:
    for i in range(2):
        gang.node(f"n{i}", cpu="2", memory="4Gi")
    gang.mode.create_workload(gang.ns, "ok", {"g": 2, "other": 1})
    submit(gang, "ok", "missing-group", 1, "nogroup")
    submit(gang, "nothere", "g", 1, "noworkload")
    submit(gang, "ok", "other", 1, "huge", cpu="64")  # bigger than the cluster
    submit(gang, "ok", "g", 2, "good", cpu="500m")
    wait_until(lambda: len(bound(gang, "good-")) == 2, what="the valid gang bound")
    msg = wait_until(
        lambda: failed_scheduling_message(gang.core, gang.ns, "huge-0"),
        what="event for the oversized gang",
    )
    # No node can hold the member at all: told per node, in kube-scheduler's words.
    assert "needs 1 x {cpu: 64, memory: 64Mi}; " in msg and "Insufficient cpu" in msg, msg
    if gang.mode.name != "v1beta1":
        msg = wait_until(
            lambda: failed_scheduling_message(gang.core, gang.ns, "nogroup-0"),
            what="event for the unknown group",
            timeout=15,
        )
        assert "missing-group" in msg
    msg = wait_until(
        lambda: failed_scheduling_message(gang.core, gang.ns, "noworkload-0"),
        what="event for the missing object",
        timeout=15,
    )
    assert "to appear" in msg
    assert gang.scheduler.proc is not None and gang.scheduler.proc.poll() is None


def test_gang_min_count_zero_is_refused(gang: Any) -> None:
    from kubernetes.client.exceptions import ApiException

    with pytest.raises(ApiException) as refused:
        gang.mode.create_workload(gang.ns, "zero", {"g": 0})
    assert refused.value.status == 422


def test_gang_scheduler_killed_and_restarted_ends_fully_bound(gang: Any, tmp_path: Any) -> None:
    """Killed (SIGKILL) while the gang is being bound, one bind at a time so that there is
    a moment with some members bound and some not; the restarted scheduler finishes it."""
    name = f"restart-{gang.mode.name}".lower()
    slow = ("--parallel-binds", "1")
    first = SchedulerProcess(gang.kubeconfig, tmp_path, *slow, name=name).start()
    try:
        for i in range(4):
            gang.node(f"n{i}", cpu="4", memory="8Gi")
        gang.mode.create_workload(gang.ns, "big", {"g": 16})
        for i in range(16):
            gang.mode.create_pod(
                gang.ns, gang.mode.member(f"p-{i}", "big", "g", scheduler=name, cpu="1")
            )
        wait_until(lambda: bound(gang), timeout=30, interval=0.02, what="binding under way")
        first.kill()
        partly = len(bound(gang))
        print(f"killed with {partly} of 16 bound")
        second = SchedulerProcess(gang.kubeconfig, tmp_path, name=name).start()
        try:
            wait_until(lambda: len(bound(gang)) == 16, timeout=30, what="gang fully bound")
        finally:
            second.stop()
    finally:
        first.stop()
    # Each node holds exactly 4 members: nothing was placed twice or overcommitted.
    per_node: dict[str, int] = {}
    for node in bound(gang).values():
        per_node[node] = per_node.get(node, 0) + 1
    assert sorted(per_node.values()) == [4, 4, 4, 4], (partly, per_node)


@pytest.mark.parametrize("scheduler_name", ["workload-scheduler", "default-scheduler"])
def test_gang_all_or_nothing_matches_kube_scheduler_v1alpha1(
    cluster_135: Any, scheduler_name: str
) -> None:
    """The same gang scenarios under our scheduler and the real kube-scheduler (GangScheduling
    on): no partial gang is ever bound, and a gang completes once the room exists."""
    from tests.e2e.conftest import GangEnv, _ignore_not_found, delete_namespace, new_namespace
    from tests.e2e.gang_modes import GangMode

    env = GangEnv(
        GangMode("v1alpha1", cluster_135.request), new_namespace(cluster_135.core), cluster_135, []
    )
    try:
        for i in range(3):
            env.node(f"parity-{i}", cpu="2", memory="4Gi")
        env.mode.create_workload(env.ns, "w", {"g": 4})
        for i in range(4):
            env.mode.create_pod(
                env.ns, env.mode.member(f"m-{i}", "w", "g", scheduler=scheduler_name, cpu="1500m")
            )
        settle(4)
        assert bound(env) == {}, f"{scheduler_name} bound part of a gang"
        env.node("parity-3", cpu="2", memory="4Gi")
        wait_until(
            lambda: len(bound(env)) == 4, timeout=60, what=f"{scheduler_name} binds the whole gang"
        )
    finally:
        delete_namespace(cluster_135.core, env.ns)
        for name in env.nodes:
            _ignore_not_found(cluster_135.core.delete_node, name)
