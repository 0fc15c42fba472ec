"""``python -m bench.biggang``: one big gang with a topology key, fitting and not (issue 11).

1,000 nodes (32 cpu, 110 pods) in 50 racks of 20, every rack but one 40% full (pre-bound
filler pods), then one gang of 2,000 pods with topology key ``bench.workload-scheduler.io/rack``
(our Workload CRD; the 1.35 API has no topology):

- ``fits``: 2,000 x 300m, which only the free rack holds. Reported: time from the last
  member's creation to the last bind (as a watch sees both), the scheduler's CPU seconds.
- ``unplaceable``: 2,000 x 400m, which no rack holds. Reported: time from the last
  member's creation to the gang's first failed attempt, then the scheduler's CPU over an
  idle window (``--idle-seconds``) in which nothing changes, and its gang attempts then.

Both report the longest event-loop stall our scheduler saw, from its own ``/metrics``
(``workload_scheduler_event_loop_longest_stall_seconds``). A fresh scheduler process per
variant, so the figure is that variant's. Our scheduler runs with the admin kubeconfig here
(the CRD is not in the default kube-scheduler RBAC).

Only our scheduler is measured: kube-scheduler v1.35 has no topology-aware gang placement,
and the side-by-side with v1.37 (``TopologyAwareWorkloadScheduling``) is not built yet.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import yaml
from prometheus_client.parser import text_string_to_metric_families

from bench import measure, workloads
from bench.run import machine_info
from scheduler.api.client import ApiClient, ApiError
from scheduler.api.connection import load_connection

REPO = Path(__file__).resolve().parent.parent
RESULTS_DIR = Path(__file__).resolve().parent / "results"
DEFAULT_STATE_DIR = Path(tempfile.gettempdir()) / "workload-scheduler-bench-biggang"
CRD_PATH = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
WORKLOADS_PATH = "/apis/workload-scheduler.io/v1alpha1/namespaces/{ns}/workloads"
STALL = "workload_scheduler_event_loop_longest_stall_seconds"
BUSY_STALL = "workload_scheduler_event_loop_longest_busy_stall_seconds"
ATTEMPTS = "scheduler_podgroup_schedule_attempts_total"


def log(message: str) -> None:
    print(f"[biggang {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


async def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session,
        session.get(url) as resp,
    ):
        text = await resp.text()
    return {
        (s.name, tuple(sorted(s.labels.items()))): float(s.value)
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def sample(
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    return sum(
        value
        for (n, ls), value in samples.items()
        if n == name and all((k, v) in ls for k, v in labels.items())
    )


async def install_crd(client: ApiClient) -> None:
    for path in sorted((REPO / "deploy" / "crds").glob("*.yaml")):
        try:
            await client.post(CRD_PATH, yaml.safe_load(path.read_text()))
        except ApiError as exc:
            if exc.status != 409:
                raise
    await asyncio.sleep(3.0)  # served (Established) within a second or two


async def run_variant(
    args: argparse.Namespace, admin: ApiClient, kubeconfig: str, variant: str, log_dir: Path
) -> dict[str, Any]:
    cpu = args.fit_cpu if variant == "fits" else args.nofit_cpu
    workload, fillers = workloads.biggang(args.gang_size, cpu, args.nodes)
    ns = f"biggang-{variant}-{uuid.uuid4().hex[:5]}"
    await admin.post(
        "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}
    )
    pods_path = f"/api/v1/namespaces/{ns}/pods"
    filled = await measure.create_all(
        admin, pods_path, [(f["metadata"]["name"], orjson.dumps(f)) for f in fillers], 32
    )
    log(f"{variant}: {len(fillers)} filler pods in {filled.end - filled.start:.1f}s")
    ours = measure.OurScheduler(
        kubeconfig,
        log_dir / f"biggang-{variant}.log",
        qps=args.qps,
        burst=args.burst,
        extra_args=["--no-secure-metrics"],  # plain HTTP /metrics, scraped here
    )
    await ours.start()
    assert ours.pid is not None
    try:
        await admin.post(WORKLOADS_PATH.format(ns=ns), workload.groups[0])
        await asyncio.sleep(1.0)
        bodies = workload.serialized("workload-scheduler")
        times = measure.PodTimes(measure.names_of(bodies))
        watch = measure.NamespaceWatch(admin, ns, times.on_pod)
        await watch.start()
        cpu_before = measure.cpu_snapshot({"ours": ours.pid})
        created = await measure.create_all(admin, pods_path, bodies, 32)
        result: dict[str, Any] = {
            "variant": variant,
            "namespace": ns,
            "pods": len(bodies),
            "pod_cpu": cpu,
            "create_seconds": round(created.end - created.start, 2),
            "create_errors": created.errors[:5],
        }
        if variant == "fits":
            try:
                await asyncio.wait_for(times.all_bound.wait(), args.timeout)
            except TimeoutError:
                result["incomplete"] = True
            last_created = max(times.added.values(), default=created.end)
            last_bound = max(times.bound.values(), default=None)
            result["bound"] = len(times.bound)
            result["racks"] = sorted({workloads.rack_of(n) for n in times.node.values()})
            result["bind_seconds_after_last_created"] = (
                round(last_bound - last_created, 2) if last_bound else None
            )
            cpu_after = measure.cpu_snapshot({"ours": ours.pid})
            result["cpu_seconds"] = measure.cpu_delta(cpu_before, cpu_after).get("ours")
        else:
            last_created = max(times.added.values(), default=created.end)
            deadline = time.monotonic() + args.timeout
            failed_at = None
            while time.monotonic() < deadline:
                samples = await scrape(ours.metrics_url)
                if sample(samples, ATTEMPTS, result="unschedulable") >= 1:
                    failed_at = time.monotonic()
                    break
                await asyncio.sleep(0.25)
            result["first_failure_seconds_after_last_created"] = (
                round(failed_at - last_created, 2) if failed_at else None
            )
            await asyncio.sleep(args.settle)
            attempts_before = sample(
                await scrape(ours.metrics_url), ATTEMPTS, result="unschedulable"
            )
            idle_before = measure.cpu_snapshot({"ours": ours.pid})
            await asyncio.sleep(args.idle_seconds)
            idle_after = measure.cpu_snapshot({"ours": ours.pid})
            attempts_after = sample(
                await scrape(ours.metrics_url), ATTEMPTS, result="unschedulable"
            )
            idle_cpu = measure.cpu_delta(idle_before, idle_after).get("ours")
            result["idle_seconds"] = args.idle_seconds
            result["idle_cpu_seconds"] = idle_cpu
            result["idle_core_percent"] = (
                round(100 * idle_cpu / args.idle_seconds, 2) if idle_cpu is not None else None
            )
            result["attempts_in_idle_window"] = attempts_after - attempts_before
            result["bound"] = len(times.bound)
            result["cpu_seconds"] = measure.cpu_delta(cpu_before, idle_after).get("ours")
        samples = await scrape(ours.metrics_url)
        result["longest_stall_seconds"] = round(sample(samples, STALL), 4)
        result["longest_busy_stall_seconds"] = round(sample(samples, BUSY_STALL), 4)
        # Where a fitting gang's time goes: the pass (algorithm) vs. binding (admission).
        result["gang_pass_seconds"] = round(
            sample(samples, "scheduler_scheduling_algorithm_duration_seconds_sum"), 3
        )
        result["placed_to_all_bound_seconds"] = round(
            sample(samples, "workload_scheduler_gang_admission_duration_seconds_sum"), 2
        )
        result["loop_lag_samples"] = sample(
            samples, "workload_scheduler_event_loop_lag_seconds_count"
        )
        result["gang_attempts"] = {
            r: sample(samples, ATTEMPTS, result=r) for r in ("scheduled", "unschedulable")
        }
        await watch.stop()
    finally:
        await ours.stop()
        await measure.delete_namespace(admin, ns, WORKLOADS_PATH.format(ns=ns))
    log(f"{variant}: {result}")
    return result


async def main_async(args: argparse.Namespace, kubeconfig: str) -> dict[str, Any]:
    connection = await asyncio.to_thread(load_connection, kubeconfig)
    admin = ApiClient(connection, qps=measure.UNLIMITED_QPS, burst=10**9, user_agent="bench")
    log_dir = args.state_dir / "bench-logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    doc: dict[str, Any] = {
        "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": " ".join(["python -m bench.biggang", *sys.argv[1:]]),
        "config": {
            "nodes": args.nodes,
            "racks": (args.nodes + workloads.NODES_PER_RACK - 1) // workloads.NODES_PER_RACK,
            "gang_size": args.gang_size,
            "fit_cpu": args.fit_cpu,
            "nofit_cpu": args.nofit_cpu,
            "idle_seconds": args.idle_seconds,
        },
        "variants": [],
    }
    async with admin:
        doc["machine"] = await machine_info(admin)
        await install_crd(admin)
        t = time.monotonic()
        await measure.ensure_nodes(admin, workloads.nodes(args.nodes, gpu_every=0))
        log(f"{args.nodes} nodes in {time.monotonic() - t:.1f}s")
        for variant in args.variants.split(","):
            doc["variants"].append(await run_variant(args, admin, kubeconfig, variant, log_dir))
    return doc


def format_table(doc: dict[str, Any]) -> str:
    rows = [
        "| variant | pods | bound | to bind after last create | gang pass | placed to all "
        "bound | first failure after last create | longest loop stall (busy) | CPU s (run) "
        "| idle CPU (% of a core) | attempts while idle |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]

    def f(v: dict[str, Any], key: str, unit: str = "") -> str:
        value = v.get(key)
        return "-" if value is None else f"{value}{unit}"

    for v in doc["variants"]:
        rows.append(
            f"| {v['variant']} ({v['pod_cpu']}) | {v['pods']} | {v.get('bound', '-')} | "
            f"{f(v, 'bind_seconds_after_last_created', ' s')} | "
            f"{f(v, 'gang_pass_seconds', ' s')} | {f(v, 'placed_to_all_bound_seconds', ' s')} | "
            f"{f(v, 'first_failure_seconds_after_last_created', ' s')} | "
            f"{round(v['longest_stall_seconds'] * 1000)} ms "
            f"({round(v.get('longest_busy_stall_seconds', 0) * 1000)} ms) | "
            f"{f(v, 'cpu_seconds')} | "
            f"{f(v, 'idle_core_percent', '%')} | {f(v, 'attempts_in_idle_window')} |"
        )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.biggang", description=__doc__.split("\n")[0])
    p.add_argument("--kubeconfig", help="admin kubeconfig of a running dev cluster")
    p.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR)
    p.add_argument("--nodes", type=int, default=1000, help="nodes, in racks of 20")
    p.add_argument("--gang-size", type=int, default=2000)
    p.add_argument("--fit-cpu", default="300m", help="per member: fits the free rack only")
    p.add_argument("--nofit-cpu", default="400m", help="per member: fits no rack")
    p.add_argument("--variants", default="fits,unplaceable")
    p.add_argument("--idle-seconds", type=float, default=30.0)
    p.add_argument("--settle", type=float, default=5.0, help="after the failure, before idling")
    p.add_argument("--timeout", type=float, default=300.0)
    p.add_argument("--qps", type=float, default=1000.0)
    p.add_argument("--burst", type=int, default=1000)
    p.add_argument("--out", type=Path)
    args = p.parse_args(argv)
    plane = None
    if args.kubeconfig:
        kubeconfig = args.kubeconfig
    else:
        from devcluster import ControlPlane

        plane = ControlPlane(progress=lambda m: log(f"control plane: {m}"))
        kubeconfig = str(plane.up(args.state_dir, "1.35").kubeconfig)
    try:
        doc = asyncio.run(main_async(args, kubeconfig))
    finally:
        if plane is not None:
            plane.down(args.state_dir)
    out = args.out or RESULTS_DIR / (
        f"biggang-{dt.datetime.now(dt.UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2))
    print(format_table(doc))
    print(f"\nresults: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
