"""What a waiting gang says, on its pods and on its group object, in each API mode."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.k8s import failed_scheduling_message, placements, pod_manifest, wait_until

LABEL_WORKLOAD = "workload-scheduler.io/workload"
LABEL_POD_GROUP = "workload-scheduler.io/pod-group"


def group_messages(gang: Any, kind: str, name: str) -> list[str]:
    return [
        e.message
        for e in gang.core.list_namespaced_event(gang.ns).items
        if e.involved_object.kind == kind
        and e.involved_object.name == name
        and e.reason == "FailedScheduling"
    ]


def test_gang_short_of_min_count_is_told_on_the_group(gang: Any) -> None:
    gang.node("n0", cpu="8", memory="16Gi")
    gang.mode.create_workload(gang.ns, "short", {"g": 4})
    for i in range(2):
        gang.mode.create_pod(
            gang.ns, gang.mode.member(f"m-{i}", "short", "g", scheduler=gang.scheduler_name)
        )
    on_pod = wait_until(
        lambda: failed_scheduling_message(gang.core, gang.ns, "m-0"), what="the pod told"
    )
    assert "2 of 4 pods exist" in on_pod, on_pod
    kind, name = (
        ("PodGroup", gang.mode.podgroup_name("short", "g"))
        if gang.mode.name == "v1beta1"
        else ("Workload", "short")
    )
    on_group = wait_until(
        lambda: group_messages(gang, kind, name), timeout=15, what=f"the {kind} told"
    )
    assert any("2 of 4 pods exist" in m for m in on_group), on_group


@pytest.mark.parametrize("gang", ["crd"], indirect=True)
def test_half_labelled_pods_are_held_and_told(gang: Any) -> None:
    gang.node("n0", cpu="8", memory="16Gi")
    gang.mode.create_workload(gang.ns, "w", {"g": 1})
    only_group = pod_manifest(
        "only-group", scheduler=gang.scheduler_name, labels={LABEL_POD_GROUP: "g"}
    )
    only_workload = pod_manifest(
        "only-workload", scheduler=gang.scheduler_name, labels={LABEL_WORKLOAD: "w"}
    )
    for manifest in (only_group, only_workload):
        gang.mode.create_pod(gang.ns, manifest)
    for name, present, missing in (
        ("only-group", f"{LABEL_POD_GROUP}=g", LABEL_WORKLOAD),
        ("only-workload", f"{LABEL_WORKLOAD}=w", LABEL_POD_GROUP),
    ):
        message = wait_until(
            lambda n=name: failed_scheduling_message(gang.core, gang.ns, n),  # type: ignore[misc]
            what=f"{name} told",
        )
        assert f"pod has label {present} but no {missing} label" in message, message
    on_group = wait_until(
        lambda: group_messages(gang, "Workload", "w"), timeout=15, what="the Workload told"
    )
    assert any(m.startswith(f"pod {gang.ns}/only-workload: pod has label") for m in on_group)
    assert placements(gang.core, gang.ns) == {"only-group": None, "only-workload": None}
