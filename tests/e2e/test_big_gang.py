"""A big gang over many domains keeps the scheduler breathing (issue 11).

A scheduler process of its own (so its metrics cover this test only) places a gang of
300 pods with topology key ``rack`` over 30 racks, then parks a gang of 200 that no rack
can hold. Its own ``/metrics`` must show that the event loop never stalled past a
generous bound while it did so, and that the parked gang is not retried while nothing
changes. No wall-clock assertions on this side.
"""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.k8s import events_for, placements, wait_until
from tests.e2e.scheduler_process import SchedulerProcess
from tests.e2e.test_gang import settle

RACKS = 30
NODES_PER_RACK = 4
STALL_BOUND_SECONDS = 0.2
"""Generous: the issue's target is 100 ms on an idle machine; this one is shared."""
NAME = "biggang-scheduler"


def metric(text: str, name: str, **labels: str) -> float:
    """One sample of the scheduler's /metrics (0 when the series does not exist yet)."""
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return 0.0


def submit(gang: Any, workload: str, count: int, prefix: str, cpu: str) -> list[str]:
    names = [f"{prefix}-{i:03d}" for i in range(count)]
    for name in names:
        gang.mode.create_pod(
            gang.ns, gang.mode.member(name, workload, "g", scheduler=NAME, cpu=cpu)
        )
    return names


@pytest.mark.parametrize("gang", ["crd"], indirect=True)
def test_big_gang_over_many_racks_never_stalls_the_loop(gang: Any, tmp_path: Any) -> None:
    # Rack r has nodes of 4 + r % 10 cpu: racks r04, r14 and r24 (4 x 8 cpu) are the
    # tightest that hold 300 x 100m; r04 wins the tie by name.
    for r in range(RACKS):
        for i in range(NODES_PER_RACK):
            gang.node(
                f"big-r{r:02d}-{i}",
                cpu=str(4 + r % 10),
                memory="16Gi",
                labels={"rack": f"r{r:02d}"},
            )
    ours = SchedulerProcess(gang.kubeconfig, tmp_path, name=NAME).start()
    try:
        gang.mode.create_workload(gang.ns, "big", {"g": 300}, topology_key="rack")
        submit(gang, "big", 300, "big", "100m")
        result = wait_until(
            lambda: (
                len(done := {n: v for n, v in placements(gang.core, gang.ns).items() if v}) == 300
                and done
            ),
            timeout=120,
            interval=1.0,
            what="the 300-pod gang bound",
        )
        assert {node.split("-")[1] for node in result.values()} == {"r04"}

        gang.mode.create_workload(gang.ns, "huge", {"g": 200}, topology_key="rack")
        names = submit(gang, "huge", 200, "huge", "1")
        message = wait_until(
            lambda: next(
                (
                    e.message
                    for e in events_for(gang.core, gang.ns, names[0])
                    if e.reason == "FailedScheduling" and "needs 200" in e.message
                ),
                None,
            ),
            timeout=120,
            what="the unplaceable gang's FailedScheduling event",
        )
        assert (
            "needs 200 x {cpu: 1, memory: 64Mi} in one rack domain; none of 30 rack domains "
            "holds it: best rack r09: short by 148 cpu (at most 52 fit)"
        ) in message, message

        failed = {"result": "unschedulable", "profile": NAME}
        total = "scheduler_podgroup_schedule_attempts_total"
        before = metric(ours.metrics(), total, **failed)
        assert before >= 1
        settle(5.0)
        text = ours.metrics()
        after = metric(text, total, **failed)
        assert after == before, "the parked gang was retried while nothing changed"
        assert metric(text, "workload_scheduler_event_loop_lag_seconds_count") > 0
        # The busy figure: a stall our own work explains (the shared test machine may keep
        # the process off the CPU for longer; that lag is in ..._longest_stall_seconds).
        busy = metric(text, "workload_scheduler_event_loop_longest_busy_stall_seconds")
        wall = metric(text, "workload_scheduler_event_loop_longest_stall_seconds")
        assert busy < STALL_BOUND_SECONDS, f"the event loop was busy for {busy:.3f}s ({wall=})"
    finally:
        ours.stop()
