"""The biggang benchmark's workload (pure) and its table."""

from __future__ import annotations

from bench import workloads
from bench.biggang import format_table


def test_biggang_fills_every_rack_but_one_and_asks_for_one_rack() -> None:
    gang, fillers = workloads.biggang(2000, "300m", 1000, free_rack=0)
    assert len(gang.pods) == 2000 and len(fillers) == 980
    assert {workloads.rack_of(f["spec"]["nodeName"]) for f in fillers} == {
        f"rack-{r:03d}" for r in range(1, 50)
    }
    group = gang.groups[0]["spec"]["podGroups"][0]
    assert group["policy"] == {"gang": {"minCount": 2000}}
    assert group["schedulingConstraints"] == {"topology": [{"key": workloads.RACK}]}
    labels = gang.pods[0]["metadata"]["labels"]
    assert labels["workload-scheduler.io/workload"] == "biggang"
    assert fillers[0]["spec"]["containers"][0]["resources"]["requests"]["cpu"] == "12800m"


def test_table_renders_both_variants() -> None:
    doc = {
        "variants": [
            {"variant": "fits", "pod_cpu": "300m", "pods": 2000, "bound": 2000,
             "bind_seconds_after_last_created": 3.2, "longest_stall_seconds": 0.05},
            {"variant": "unplaceable", "pod_cpu": "400m", "pods": 2000, "bound": 0,
             "idle_core_percent": 0.4, "longest_stall_seconds": 0.02,
             "longest_busy_stall_seconds": 0.01},
        ]
    }  # fmt: skip
    table = format_table(doc)
    assert "| fits (300m) | 2000 | 2000 | 3.2 s |" in table
    assert "| 20 ms (10 ms) |" in table and "0.4% |" in table
