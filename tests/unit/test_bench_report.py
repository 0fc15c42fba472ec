"""The benchmark's pure parts: statistics, summaries, ratios, tables, and the workloads."""

from __future__ import annotations

import math

import pytest

from bench import report, workloads
from bench.report import CEILING, KUBE, OURS

# -- statistics ---------------------------------------------------------------------------


def test_percentile_interpolates_like_numpy() -> None:
    data = [1.0, 2.0, 3.0, 4.0]
    assert report.percentile(data, 0) == 1.0
    assert report.percentile(data, 100) == 4.0
    assert report.percentile(data, 50) == 2.5
    # numpy.percentile([1,2,3,4], 99) == 3.97
    assert report.percentile(data, 99) == pytest.approx(3.97)
    assert report.percentile(reversed(data), 25) == pytest.approx(1.75)


def test_percentile_edge_cases() -> None:
    assert report.percentile([], 50) is None
    assert report.percentile([7.0], 99) == 7.0
    with pytest.raises(ValueError):
        report.percentile([1.0], 101)


def test_median_and_spread() -> None:
    assert report.median([3, 1, 2]) == 2
    assert report.median([4, 1, 3, 2]) == 2.5
    assert report.spread([None, 5.0, 1.0, 3.0]) == {"median": 3.0, "min": 1.0, "max": 5.0}
    assert report.spread([None]) is None


def test_throughput() -> None:
    assert report.throughput(1000, 10.0, 12.0) == 500.0
    assert report.throughput(1000, 10.0, 10.0) is None
    assert report.throughput(0, 0.0, 1.0) is None


def test_gang_latency_is_last_bound_minus_last_created() -> None:
    created = {"a0": 0.0, "a1": 0.5, "b0": 1.0, "b1": 1.2}
    bound = {"a0": 0.9, "a1": 0.7, "b0": 1.5, "b1": 2.0}
    gang_of = {"a0": "a", "a1": "a", "b0": "b", "b1": "b"}
    assert report.gang_latencies(created, bound, gang_of) == pytest.approx({"a": 0.4, "b": 0.8})


def test_incomplete_gang_has_no_latency() -> None:
    gang_of = {"a0": "a", "a1": "a", "b0": "b"}
    created = {"a0": 0.0, "a1": 0.1, "b0": 0.0}
    bound = {"a0": 1.0, "b0": 0.5}  # a1 never bound
    assert report.gang_latencies(created, bound, gang_of) == {"b": 0.5}


def test_ratio() -> None:
    assert report.ratio(3.0, 2.0) == 1.5
    assert report.ratio(None, 2.0) is None
    assert report.ratio(1.0, 0.0) is None


# -- summaries ----------------------------------------------------------------------------


def _run(pps: float | None, complete: bool = True, **extra: object) -> dict[str, object]:
    return {"complete": complete, "pods_per_second": pps, **extra}


def test_summarize_runs_uses_complete_runs_only() -> None:
    runs = [
        _run(100.0, cpu_seconds=2.0, seconds=10.0, create_seconds=9.0, gang_latencies=[0.1, 0.2]),
        _run(300.0, cpu_seconds=1.0, seconds=3.3, create_seconds=3.5, gang_latencies=[0.3]),
        _run(200.0, cpu_seconds=3.0, seconds=5.0, create_seconds=4.5, gang_latencies=[0.4]),
        _run(None, complete=False, cpu_seconds=99.0, gang_latencies=[50.0]),
    ]
    s = report.summarize_runs(runs, peak_rss_bytes=123)
    assert s["runs"] == 4
    assert s["complete_runs"] == 3
    assert s["pods_per_second"] == {"median": 200.0, "min": 100.0, "max": 300.0}
    assert s["cpu_seconds"] == {"median": 2.0, "min": 1.0, "max": 3.0}
    # Tail: seconds - create_seconds, floored at 0 (the last POST may return after the
    # watch showed the last bind).
    assert s["tail_seconds"] == {"median": 0.5, "min": 0.0, "max": 1.0}
    gangs = s["gang_admission_seconds"]
    assert gangs["gangs"] == 4
    assert gangs["p50"] == pytest.approx(0.25)
    assert gangs["p99"] == pytest.approx(0.397)
    assert s["peak_rss_bytes"] == 123


def test_summarize_runs_without_gangs_or_complete_runs() -> None:
    s = report.summarize_runs([_run(None, complete=False)])
    assert s["complete_runs"] == 0
    assert s["pods_per_second"] is None
    assert s["gang_admission_seconds"] is None


def _doc() -> dict[str, object]:
    def entry(pps: list[float], cpu: float, rss: int, gangs: list[float]) -> dict[str, object]:
        return {
            "runs": [_run(p, cpu_seconds=cpu, gang_latencies=gangs) for p in pps],
            "peak_rss_bytes": rss,
        }

    return {
        "machine": {"nproc": 2, "cpu_model": "Test CPU", "memory_bytes": 2**34, "python": "3.11"},
        "config": {"runs": 3, "qps": 1000, "burst": 1000, "create_concurrency": 32},
        "workloads": {
            "gangs": {
                "size": "2 gangs of 8",
                "schedulers": {
                    KUBE: entry([400, 500, 600], 4.0, 200 * 2**20, [0.2, 0.4]),
                    OURS: entry([200, 250, 300], 6.0, 100 * 2**20, [0.1, 0.2]),
                    CEILING: entry([1000, 1000, 1000], 1.0, 50 * 2**20, []),
                },
            }
        },
    }


def test_summarize_and_ratios() -> None:
    summary = report.summarize(_doc())
    r = summary["gangs"]["ratios"]
    assert r["throughput_vs_kube"] == pytest.approx(0.5)
    assert r["throughput_vs_ceiling"] == pytest.approx(0.25)
    assert r["kube_vs_ceiling"] == pytest.approx(0.5)
    assert r["cpu_vs_kube"] == pytest.approx(1.5)
    assert r["rss_vs_kube"] == pytest.approx(0.5)
    # Pooled over runs: ours [0.1, 0.2] x3, kube [0.2, 0.4] x3.
    assert r["gang_p50_vs_kube"] == pytest.approx(0.15 / 0.3)


def test_ratios_with_a_missing_scheduler() -> None:
    doc = _doc()
    del doc["workloads"]["gangs"]["schedulers"][KUBE]  # type: ignore[index]
    r = report.summarize(doc)["gangs"]["ratios"]
    assert r["throughput_vs_kube"] is None
    assert r["throughput_vs_ceiling"] == pytest.approx(0.25)


# -- formatting ---------------------------------------------------------------------------


def test_formatters() -> None:
    assert report.fmt_spread({"median": 812.4, "min": 790.0, "max": 1830.2}) == "812 (790-1,830)"
    assert report.fmt_spread({"median": 5.0, "min": 5.0, "max": 5.0}) == "5"
    assert report.fmt_spread(None) == "-"
    assert report.fmt_seconds(0.0456) == "46 ms"
    assert report.fmt_seconds(2.5) == "2.50 s"
    assert report.fmt_seconds(None) == "-"
    assert report.fmt_bytes(150 * 2**20) == "150 MiB"
    assert report.fmt_ratio(0.5) == "0.50x"
    assert report.fmt_ratio(None) == "-"
    assert report.fmt_number(math.pi, 2) == "3.14"


def test_format_table_aligns_columns() -> None:
    text = report.format_table(["name", "n"], [["a", "1"], ["long name", "100"]])
    lines = text.splitlines()
    assert lines[0] == "name         n"
    assert lines[1] == "---------  ---"
    assert lines[2] == "a            1"
    assert lines[3] == "long name  100"
    with pytest.raises(ValueError):
        report.format_table(["a"], [["1", "2"]])


def test_format_markdown() -> None:
    text = report.format_markdown(["w", "x"], [["a", "1"]])
    assert text.splitlines() == ["| w | x |", "| --- | ---: |", "| a | 1 |"]


def test_format_report_orders_schedulers_and_labels_sizes() -> None:
    text = report.format_report(_doc())
    assert "2 CPUs (Test CPU)" in text
    lines = text.splitlines()
    rows = [line for line in lines if "scheduler" in line or "ceiling" in line]
    ours = next(i for i, line in enumerate(lines) if OURS in line and "gangs (2 gangs" in line)
    kube = next(i for i, line in enumerate(lines) if line.strip().startswith(KUBE))
    assert ours < kube
    assert rows
    assert "250 (200-300)" in lines[ours]
    assert "0.50x" in text
    md = report.format_report(_doc(), markdown=True)
    assert "| gangs (2 gangs of 8) | workload-scheduler |" in md


# -- workloads ----------------------------------------------------------------------------


def test_nodes_have_zones_racks_and_tainted_gpus() -> None:
    nodes = workloads.nodes(16, gpu_every=8)
    gpu = [n for n in nodes if workloads.GPU in n["status"]["allocatable"]]
    assert [n["metadata"]["name"] for n in gpu] == ["bench-node-00007", "bench-node-00015"]
    assert all(n["spec"]["taints"] == [workloads.GPU_TAINT] for n in gpu)
    assert nodes[0]["status"]["allocatable"]["cpu"] == "32"
    assert {n["metadata"]["labels"][workloads.ZONE] for n in nodes} == set(workloads.ZONES)
    more = workloads.nodes(2, start=16)
    assert more[0]["metadata"]["name"] == "bench-node-00016"


def test_gangs_have_workloads_and_refs() -> None:
    w = workloads.gangs(3, size=8)
    assert len(w.pods) == 24
    assert len(w.groups) == 3
    assert w.groups[0]["spec"]["podGroups"][0]["policy"] == {"gang": {"minCount": 8}}
    assert w.pods[0]["spec"]["workloadRef"] == {"name": "gang-00000", "podGroup": "workers"}
    assert w.gang_of["gang-00002-7"] == "gang-00002"


def test_serialized_sets_scheduler_name_only_in_the_copy() -> None:
    w = workloads.plain(2)
    bodies = w.serialized("default-scheduler")
    assert [name for name, _ in bodies] == ["plain-000000", "plain-000001"]
    assert b'"schedulerName":"default-scheduler"' in bodies[0][1]
    assert w.pods[0]["spec"]["schedulerName"] == ""


def test_plan_round_robins_over_fitting_nodes() -> None:
    nodes = workloads.nodes(16, gpu_every=8)
    plan = workloads.plan_bindings(workloads.plain(28).pods, nodes)
    used = list(plan.values())
    # GPU nodes are tainted; 14 plain nodes, each used twice.
    assert "bench-node-00007" not in used
    assert len(set(used)) == 14
    assert used[:3] == ["bench-node-00000", "bench-node-00001", "bench-node-00002"]


def test_plan_respects_constraints_and_capacity() -> None:
    nodes = workloads.nodes(40, gpu_every=8)
    w = workloads.mixed(400, 40, gpu_every=8)
    plan = workloads.plan_bindings(w.pods, nodes)
    by_name = {n["metadata"]["name"]: n for n in nodes}
    gpu_pods = 0
    for p in w.pods:
        node = by_name[plan[p["metadata"]["name"]]]
        labels = node["metadata"]["labels"]
        spec = p["spec"]
        for key, value in spec.get("nodeSelector", {}).items():
            assert labels[key] == value
        if "nodeAffinity" in spec.get("affinity", {}):
            assert labels[workloads.ZONE] != "zone-c"
        requests = spec["containers"][0]["resources"]["requests"]
        if workloads.GPU in requests:
            gpu_pods += 1
            assert workloads.GPU in node["status"]["allocatable"]
        elif node["spec"]["taints"]:
            assert spec.get("tolerations")
    # 5 GPU nodes x 8 GPUs, at most half requested.
    assert 0 < gpu_pods <= 20


def test_mixed_has_anti_affinity_apps_and_zone_spread_groups() -> None:
    w = workloads.mixed(240, 40, gpu_every=8)
    anti = [p for p in w.pods if "podAntiAffinity" in p["spec"].get("affinity", {})]
    spread = [p for p in w.pods if "topologySpreadConstraints" in p["spec"]]
    assert len(anti) == len(spread) == 20
    assert anti[0]["metadata"]["labels"]["app"] == "aa-00000"
    assert anti[workloads.APP_REPLICAS]["metadata"]["labels"]["app"] == "aa-00001"
    assert workloads.anti_affinity_terms(anti[0]) == [({"app": "aa-00000"}, workloads.HOSTNAME)]
    assert workloads.spread_constraints(spread[0]) == [(workloads.ZONE, {"spread": "sp-00000"}, 1)]


def test_plan_honours_anti_affinity_and_spread() -> None:
    nodes = workloads.nodes(40, gpu_every=8)
    w = workloads.mixed(1200, 40, gpu_every=8)
    plan = workloads.plan_bindings(w.pods, nodes)
    assert workloads.placement_violations(w.pods, plan, nodes) == {"anti_affinity": 0, "spread": 0}


def test_placement_violations_sees_broken_constraints() -> None:
    nodes = workloads.nodes(40, gpu_every=8)
    w = workloads.mixed(240, 40, gpu_every=8)
    plan = workloads.plan_bindings(w.pods, nodes)
    anti = [
        p["metadata"]["name"] for p in w.pods if "podAntiAffinity" in p["spec"].get("affinity", {})
    ]
    spread = [p["metadata"]["name"] for p in w.pods if "topologySpreadConstraints" in p["spec"]]
    bad = dict(plan)
    bad[anti[1]] = bad[anti[0]]  # two replicas of app aa-00000 on one node: both violate
    for name in spread[: workloads.SPREAD_GROUP]:
        bad[name] = "bench-node-00000"  # one zone holds the whole group
    assert workloads.placement_violations(w.pods, bad, nodes) == {"anti_affinity": 2, "spread": 1}


def test_plan_raises_when_nothing_fits() -> None:
    nodes = workloads.nodes(1, gpu_every=0)
    big = workloads.pod("big", cpu="64", memory="1Gi")
    with pytest.raises(workloads.UnplaceableError):
        workloads.plan_bindings([big], nodes)
    many = workloads.plain(111).pods  # 110 pods per node
    with pytest.raises(workloads.UnplaceableError):
        workloads.plan_bindings(many, nodes)
