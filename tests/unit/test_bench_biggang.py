"""The 1.37 benchmarks' pure parts: the big gang, preemption, and their tables."""

from __future__ import annotations

from bench import workloads
from bench.biggang import format_table
from bench.measure import LeaseObserver, parse_micro_time
from bench.preemption import format_table as preemption_table


def test_biggang_fills_every_rack_but_one_and_asks_for_one_rack() -> None:
    gang, fillers = workloads.biggang(2000, "300m", 1000, free_rack=0)
    assert len(gang.pods) == 2000 and len(fillers) == 980
    assert {workloads.rack_of(f["spec"]["nodeName"]) for f in fillers} == {
        f"rack-{r:03d}" for r in range(1, 50)
    }
    group = gang.groups[0]
    assert group["apiVersion"] == "scheduling.k8s.io/v1beta1" and group["kind"] == "PodGroup"
    assert group["spec"]["schedulingPolicy"] == {"gang": {"minCount": 2000}}
    assert group["spec"]["schedulingConstraints"] == {"topology": [{"key": workloads.RACK}]}
    assert gang.pods[0]["spec"]["schedulingGroup"] == {"podGroupName": "biggang"}
    assert fillers[0]["spec"]["containers"][0]["resources"]["requests"]["cpu"] == "12800m"


def test_table_renders_both_schedulers_and_ratios() -> None:
    doc = {
        "variants": [
            {"variant": "fits", "scheduler": "workload-scheduler", "pod_cpu": "300m",
             "pods": 2000, "bound": 2000, "bind_seconds_after_last_created": 3.2,
             "longest_stall_seconds": 0.05, "cpu_seconds": 2.0,
             "turns_over_0.05s_in_run": 1, "turns_over_0.1s_in_run": 0,
             "lease": {"renewals": 9, "longest_gap_seconds": 2.01, "holder_changes": 0}},
            {"variant": "fits", "scheduler": "kube-scheduler", "pod_cpu": "300m",
             "pods": 2000, "bound": 2000, "bind_seconds_after_last_created": 6.4,
             "longest_stall_seconds": None, "cpu_seconds": 8.0},
            {"variant": "unplaceable", "scheduler": "workload-scheduler", "pod_cpu": "400m",
             "pods": 2000, "bound": 0, "idle_core_percent": 0.4, "longest_stall_seconds": 0.02,
             "longest_busy_stall_seconds": 0.01},
        ]
    }  # fmt: skip
    table = format_table(doc)
    assert "| fits (300m) | workload-scheduler | 2000 | 2000 | 3.2 s |" in table
    assert "| 20 ms (10 ms) |" in table and "0.4% |" in table
    assert "n/a (no such metric)" in table
    assert "| 2.01 s (0 holder changes) |" in table
    assert "| 1 / 0 | 2.0 |" in table
    assert "| fits | 0.50x | 0.25x | - |" in table


def test_podgroup_fields() -> None:
    pg = workloads.podgroup("g", 4, priority_class="bench-low", disruption_mode="all")
    assert pg["spec"] == {
        "schedulingPolicy": {"gang": {"minCount": 4}},
        "priorityClassName": "bench-low",
        "disruptionMode": {"all": {}},
    }


def test_preemption_fills_every_slot_with_low_gangs() -> None:
    plan = workloads.preemption(10, low_size=4, high_size=8, high_gangs=3, slots=4)
    assert len(plan.low.pods) == 40 and len(plan.low.groups) == 10
    per_node: dict[str, int] = {}
    for p in plan.low.pods:
        per_node[p["spec"]["nodeName"]] = per_node.get(p["spec"]["nodeName"], 0) + 1
        assert p["spec"]["priorityClassName"] == "bench-low"
        assert p["spec"]["containers"][0]["resources"]["requests"]["cpu"] == "8000m"
    assert set(per_node.values()) == {4} and len(per_node) == 10
    assert [len(g.pods) for g in plan.high] == [8, 8, 8]
    assert plan.high[0].groups[0]["spec"]["priorityClassName"] == "bench-high"
    assert "nodeName" not in plan.high[0].pods[0]["spec"]
    assert plan.minimum_victims() == 8
    assert workloads.preemption(2, low_size=3, high_size=4).minimum_victims() == 6
    assert workloads.preemption(2, low_size=3, disruption_mode="single").minimum_victims() == 8


def test_broken_gangs_counts_partly_evicted_gangs_only() -> None:
    gang_of = {"a-0": "a", "a-1": "a", "b-0": "b", "b-1": "b", "c-0": "c"}
    assert workloads.broken_gangs(gang_of, ["a-0", "a-1", "b-0", "x"]) == 1
    assert workloads.broken_gangs(gang_of, []) == 0


def test_preemption_table() -> None:
    doc = {
        "runs": [
            {"scheduler": "kube-scheduler", "run": 1, "admitted": 3, "high_gangs": 3,
             "admit_p50": 0.25, "admit_max": 3.39, "victims_per_admitted_gang": 10.67,
             "minimum_victims_per_gang": 8, "victims_beyond_minimum": 8,
             "broken_low_gangs": 0, "high_pods_evicted": 0, "cpu_seconds": 0.26},
        ]
    }  # fmt: skip
    table = preemption_table(doc)
    assert "| kube-scheduler | 1 | 3/3 | 0.25 s | 3.39 s | 10.67 (8) | 8 | 0 | 0 | 0.26 |" in table


def test_lease_summary_takes_the_longest_gap_between_renewals_and_at_the_end() -> None:
    lease = LeaseObserver(None, "ns", "workload-scheduler")  # type: ignore[arg-type]
    base = parse_micro_time("2026-12-06T21:20:00.000000Z")
    assert parse_micro_time("2026-12-06T21:20:02.500000Z") - base == 2.5
    lease.renewals = [base, base + 2.0, base + 4.5, base + 6.5]
    lease.holders = ["a"]
    lease._stopped_at = base + 7.0
    assert lease.summary() == {
        "renewals": 4,
        "longest_gap_seconds": 2.5,
        "holder_changes": 0,
        "read_errors": 0,
    }
    lease._stopped_at = base + 20.0  # renewals stopped: the open gap counts
    lease.holders = ["a", "b"]
    assert lease.summary()["longest_gap_seconds"] == 13.5
    assert lease.summary()["holder_changes"] == 1
