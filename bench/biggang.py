"""``python -m bench.biggang``: one big gang with a topology key, fitting and not (issue 11),
workload-scheduler side by side with kube-scheduler v1.37.

The 1.37 control plane (``bench.podgroups``: kube-scheduler v1.37.2 with ``GenericWorkload``
and ``TopologyAwareWorkloadScheduling`` on it and on the API server), 1,000 nodes (32 cpu,
110 pods) in 50 racks of 20, every rack but one 40% full (pre-bound filler pods), then one
gang of 2,000 pods: a ``scheduling.k8s.io/v1beta1`` PodGroup (gang ``minCount`` 2,000,
``schedulingConstraints.topology`` key ``bench.workload-scheduler.io/rack``), members naming
it in ``spec.schedulingGroup``. The same objects for both schedulers; only
``spec.schedulerName`` differs, each in its own namespace, one after the other:

- ``fits``: 2,000 x 300m, which only the free rack holds. Reported: time from the last
  member's creation to the last bind (as a watch sees both), the scheduler's CPU seconds.
- ``unplaceable``: 2,000 x 400m, which no rack holds. Reported: time from the last
  member's creation to the gang's first failed attempt, then the scheduler's CPU over an
  idle window (``--idle-seconds``) in which nothing changes, and its gang attempts then.

Both schedulers count their gang attempts in ``scheduler_podgroup_schedule_attempts_total``
(ours by upstream's name), which dates the first failure. The longest event-loop stall is
ours only (``workload_scheduler_event_loop_longest_stall_seconds`` from our ``/metrics``):
kube-scheduler has no such metric (its pod-group cycle runs on its own goroutine; the
closest figure is its ``scheduler_podgroup_scheduling_algorithm_duration_seconds``, reported
as its gang pass). A fresh process of ours per variant, so the figure is that variant's.

Why not a workload of ``bench.run``: that command runs the 1.35 control plane (the v1alpha1
Workload gangs of its ``gangs`` workload do not exist in 1.37), its nodes carry GPUs and
zones of three, its runs are "create N pods, time until all are bound" with several runs
per contestant; this one needs the 1.37 API, a different cluster (50 racks, pre-filled), a
variant that is never bound and an idle window. The shared parts (watch, creation, /proc,
our scheduler's process) are ``bench.measure``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

from bench import measure, podgroups, workloads
from bench.podgroups import KubeSchedulerMetrics, sample
from bench.report import KUBE, OURS
from scheduler.api.client import ApiClient

DEFAULT_STATE_DIR = Path(tempfile.gettempdir()) / "workload-scheduler-bench-biggang"
STALL = "workload_scheduler_event_loop_longest_stall_seconds"
BUSY_STALL = "workload_scheduler_event_loop_longest_busy_stall_seconds"
LAG = "workload_scheduler_event_loop_lag_seconds"
ATTEMPTS = "scheduler_podgroup_schedule_attempts_total"
KUBE_PASS = "scheduler_podgroup_scheduling_algorithm_duration_seconds_sum"
LEASE = "workload-scheduler"
"""Our Lease, in the variant's namespace (``--leader-elect``)."""
LEASE_ROLE = "bench-workload-scheduler-lease"
ROLE_TYPE = {"apiVersion": "rbac.authorization.k8s.io/v1"}


def log(message: str) -> None:
    print(f"[biggang {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class Contestant:
    """One scheduler under test: its pid and how to read its counters."""

    def __init__(
        self, name: str, pid: int, scrape: Any, ours: measure.OurScheduler | None = None
    ) -> None:
        self.name = name
        self.pid = pid
        self.scrape = scrape
        self.ours = ours


def turns_over(samples: podgroups.Samples, bound: str) -> int:
    """Event-loop turns longer than ``bound`` seconds so far (our lag histogram)."""
    return round(sample(samples, f"{LAG}_count") - sample(samples, f"{LAG}_bucket", le=bound))


async def grant_lease(admin: ApiClient, namespace: str) -> None:
    """Let system:kube-scheduler (whose credentials both schedulers use) hold our Lease in
    ``namespace``: its bootstrap role covers only the Lease named ``kube-scheduler``."""
    rules = [
        {
            "apiGroups": ["coordination.k8s.io"],
            "resources": ["leases"],
            "verbs": ["get", "create", "update"],
        }
    ]
    subject = {"apiGroup": "rbac.authorization.k8s.io", "kind": "User"}
    for path, body in (
        (
            f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}/roles",
            {**ROLE_TYPE, "kind": "Role", "metadata": {"name": LEASE_ROLE}, "rules": rules},
        ),
        (
            f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}/rolebindings",
            {
                **ROLE_TYPE,
                "kind": "RoleBinding",
                "metadata": {"name": LEASE_ROLE},
                "roleRef": {"apiGroup": subject["apiGroup"], "kind": "Role", "name": LEASE_ROLE},
                "subjects": [{**subject, "name": "system:kube-scheduler"}],
            },
        ),
    ):
        await admin.post(path, body)


async def run_variant(
    args: argparse.Namespace, env: dict[str, Any], contestant: str, variant: str
) -> dict[str, Any]:
    admin: ApiClient = env["admin"]
    cpu = args.fit_cpu if variant == "fits" else args.nofit_cpu
    workload, fillers = workloads.biggang(args.gang_size, cpu, args.nodes)
    short = "ours" if contestant == OURS else "kube"
    ns = await podgroups.make_namespace(admin, f"biggang-{variant}-{short}")
    pods_path = f"/api/v1/namespaces/{ns}/pods"
    filled = await measure.create_all(
        admin, pods_path, [(f["metadata"]["name"], orjson.dumps(f)) for f in fillers], 32
    )
    log(f"{variant}/{short}: {len(fillers)} filler pods in {filled.end - filled.start:.1f}s")
    ours = None
    lease: measure.LeaseObserver | None = None
    if contestant == OURS:
        extra = ["--no-secure-metrics"]  # plain HTTP /metrics, scraped here
        if args.leader_elect:  # as the chart runs it: the Lease must keep being renewed
            await grant_lease(admin, ns)
            extra += ["--leader-elect", "--leader-elect-namespace", ns]
            extra += ["--leader-elect-lease-name", LEASE]
        ours = measure.OurScheduler(
            env["scheduler_kubeconfig"],
            env["log_dir"] / f"biggang-{variant}.log",
            qps=args.qps,
            burst=args.burst,
            extra_args=extra,
        )
        await ours.start()
        assert ours.pid is not None
        if args.leader_elect:
            lease = measure.LeaseObserver(admin, ns, LEASE)
            lease.start()
            await lease.wait_for_holder(30.0)
        pid = ours.pid
        url = ours.metrics_url

        async def scrape() -> podgroups.Samples:
            return await podgroups.scrape_http(url)
    else:
        pid = env["pids"][KUBE]
        scrape = env["kube_metrics"].scrape
    pids = {"scheduler": pid, **{k: v for k, v in env["pids"].items() if k != KUBE}}
    result: dict[str, Any] = {"variant": variant, "scheduler": contestant, "namespace": ns}
    try:
        await podgroups.create_podgroups(admin, ns, workload.groups)
        await asyncio.sleep(1.0)
        bodies = workload.serialized(podgroups.SCHEDULER_NAMES[contestant])
        times = measure.PodTimes(measure.names_of(bodies))
        watch = measure.NamespaceWatch(admin, ns, times.on_pod)
        await watch.start()
        before = await scrape()
        attempts_at_start = sample(before, ATTEMPTS, result="unschedulable")
        cpu_before = measure.cpu_snapshot(pids)
        created = await measure.create_all(admin, pods_path, bodies, 32)
        result.update(
            pods=len(bodies),
            pod_cpu=cpu,
            create_seconds=round(created.end - created.start, 2),
            create_errors=created.errors[:5],
        )
        last_created = max(times.added.values(), default=created.end)
        if variant == "fits":
            try:
                await asyncio.wait_for(times.all_bound.wait(), args.timeout)
            except TimeoutError:
                result["incomplete"] = True
            last_created = max(times.added.values(), default=created.end)
            last_bound = max(times.bound.values(), default=None)
            result["racks"] = sorted({workloads.rack_of(n) for n in times.node.values()})
            result["bind_seconds_after_last_created"] = (
                round(last_bound - last_created, 2) if last_bound else None
            )
            cpu_after = measure.cpu_snapshot(pids)
        else:
            failed_at = await podgroups.wait_for_counter(
                scrape, ATTEMPTS, attempts_at_start, args.timeout, result="unschedulable"
            )
            result["first_failure_seconds_after_last_created"] = (
                round(failed_at - last_created, 2) if failed_at else None
            )
            await asyncio.sleep(args.settle)
            attempts_before = sample(await scrape(), ATTEMPTS, result="unschedulable")
            idle_before = measure.cpu_snapshot(pids)
            await asyncio.sleep(args.idle_seconds)
            idle_after = measure.cpu_snapshot(pids)
            attempts_after = sample(await scrape(), ATTEMPTS, result="unschedulable")
            idle = measure.cpu_delta(idle_before, idle_after)
            idle_cpu = idle.get("scheduler")
            result["idle_seconds"] = args.idle_seconds
            result["idle_cpu_seconds"] = idle_cpu
            result["idle_cpu_seconds_all"] = idle
            result["idle_core_percent"] = (
                round(100 * idle_cpu / args.idle_seconds, 2) if idle_cpu is not None else None
            )
            result["attempts_in_idle_window"] = attempts_after - attempts_before
            cpu_after = idle_after
        if lease is not None:
            await lease.stop()
            result["lease"] = lease.summary()
        result["bound"] = len(times.bound)
        cpu = measure.cpu_delta(cpu_before, cpu_after)
        result["cpu_seconds"] = cpu.get("scheduler")
        result["cpu_seconds_all"] = cpu
        after = await scrape()
        result["gang_attempts"] = {
            r: sample(after, ATTEMPTS, result=r) - sample(before, ATTEMPTS, result=r)
            for r in ("scheduled", "unschedulable")
        }
        if contestant == OURS:
            result["longest_stall_seconds"] = round(sample(after, STALL), 4)
            result["longest_busy_stall_seconds"] = round(sample(after, BUSY_STALL), 4)
            # The longest stall counts since the process started (its first lists, its
            # connections); the histogram tells how many turns were long during the run.
            for bound in ("0.05", "0.1"):
                result[f"turns_over_{bound}s_in_run"] = turns_over(after, bound) - turns_over(
                    before, bound
                )
            # Where a fitting gang's time goes: the pass (algorithm) vs. binding (admission).
            result["gang_pass_seconds"] = round(
                sample(after, "scheduler_scheduling_algorithm_duration_seconds_sum"), 3
            )
            result["placed_to_all_bound_seconds"] = round(
                sample(after, "workload_scheduler_gang_admission_duration_seconds_sum"), 2
            )
        else:
            result["longest_stall_seconds"] = None  # kube-scheduler has no such metric
            result["gang_pass_seconds"] = round(
                sample(after, KUBE_PASS) - sample(before, KUBE_PASS), 3
            )
        result["loadavg_1m"] = round(os.getloadavg()[0], 2)
        await watch.stop()
    finally:
        if lease is not None:
            await lease.stop()
        if ours is not None:
            await ours.stop()
        await podgroups.clean_namespace(admin, ns)
        await asyncio.sleep(args.settle)
    log(f"{variant}/{short}: {result}")
    return result


async def main_async(args: argparse.Namespace, cluster: Any) -> dict[str, Any]:
    config = {
        "nodes": args.nodes,
        "racks": (args.nodes + workloads.NODES_PER_RACK - 1) // workloads.NODES_PER_RACK,
        "gang_size": args.gang_size,
        "fit_cpu": args.fit_cpu,
        "nofit_cpu": args.nofit_cpu,
        "idle_seconds": args.idle_seconds,
        "leader_elect": args.leader_elect,
        "scheduler_identity": "kube-scheduler.kubeconfig (system:kube-scheduler)",
    }
    session = await podgroups.open_session(args, cluster, "biggang", config, log)
    admin, contestants, doc = session.admin, session.contestants, session.doc
    doc["variants"] = []
    kube_metrics = None
    async with admin:
        await podgroups.describe_cluster(session)
        log(f"machine: {doc['machine']}")
        if KUBE in contestants:
            kube_metrics = await KubeSchedulerMetrics.open(
                str(args.kubeconfig or cluster.kubeconfig), cluster.ports["kube_scheduler"]
            )
        env = {
            "admin": admin,
            "scheduler_kubeconfig": str(cluster.kube_scheduler_kubeconfig),
            "log_dir": session.log_dir,
            "pids": session.pids,
            "kube_metrics": kube_metrics,
        }
        t = time.monotonic()
        await measure.ensure_nodes(admin, workloads.nodes(args.nodes, gpu_every=0))
        log(f"{args.nodes} nodes in {time.monotonic() - t:.1f}s")
        await asyncio.sleep(2.0)
        try:
            for variant in args.variants.split(","):
                for contestant in contestants:
                    doc["variants"].append(await run_variant(args, env, contestant, variant))
                    podgroups.write_results(args.out, doc)
        finally:
            if kube_metrics is not None:
                await kube_metrics.close()
    doc["finished"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    return doc


def _lease_text(lease: dict[str, Any] | None) -> str:
    if not lease:
        return "-"
    changes = lease["holder_changes"]
    return f"{lease['longest_gap_seconds']} s ({changes} holder change{'s' * (changes != 1)})"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{round(value * 1000)} ms"


def format_table(doc: dict[str, Any]) -> str:
    rows = [
        "| variant | scheduler | pods | bound | to bind after last create | gang pass | "
        "first failure after last create | longest loop stall (busy) | loop turns over "
        "50 / 100 ms in the run | CPU s (run) "
        "| idle CPU (% of a core) | attempts while idle | Lease: longest renew gap |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]

    def f(v: dict[str, Any], key: str, unit: str = "") -> str:
        value = v.get(key)
        return "-" if value is None else f"{value}{unit}"

    for v in doc["variants"]:
        stall = v.get("longest_stall_seconds")
        stall_text = (
            "n/a (no such metric)"
            if stall is None
            else f"{_ms(stall)} ({_ms(v.get('longest_busy_stall_seconds', 0))})"
        )
        cut = " (not all: cut at the timeout)" if v.get("incomplete") else ""
        to_bind = f(v, "bind_seconds_after_last_created", " s")
        rows.append(
            f"| {v['variant']} ({v['pod_cpu']}) | {v.get('scheduler', OURS)} | {v['pods']} | "
            f"{v.get('bound', '-')}{cut} | {'> ' if cut else ''}{to_bind} | "
            f"{f(v, 'gang_pass_seconds', ' s')} | "
            f"{f(v, 'first_failure_seconds_after_last_created', ' s')} | {stall_text} | "
            f"{f(v, 'turns_over_0.05s_in_run')} / {f(v, 'turns_over_0.1s_in_run')} | "
            f"{f(v, 'cpu_seconds')} | "
            f"{f(v, 'idle_core_percent', '%')} | {f(v, 'attempts_in_idle_window')} | "
            f"{_lease_text(v.get('lease'))} |"
        )
    ratios = ratio_rows(doc)
    if ratios:
        rows += [
            "",
            "| variant | ours/kube: time to bind | CPU (run) | idle CPU |",
            "|---|---|---|---|",
        ]
        rows += ratios
    return "\n".join(rows)


def ratio_rows(doc: dict[str, Any]) -> list[str]:
    by = {(v["variant"], v.get("scheduler", OURS)): v for v in doc["variants"]}
    out = []
    for variant in dict.fromkeys(v["variant"] for v in doc["variants"]):
        ours, kube = by.get((variant, OURS)), by.get((variant, KUBE))
        if not ours or not kube:
            continue

        # kube-scheduler cut at the timeout: its time and CPU are lower bounds, so ours/kube
        # is an upper bound.
        bound = "< " if kube.get("incomplete") and not ours.get("incomplete") else ""

        def r(
            key: str, ours: dict[str, Any] = ours, kube: dict[str, Any] = kube, bound: str = bound
        ) -> str:
            a, b = ours.get(key), kube.get(key)
            return f"{bound}{a / b:.2f}x" if a is not None and b else "-"

        out.append(
            f"| {variant} | {r('bind_seconds_after_last_created')} | {r('cpu_seconds')} | "
            f"{r('idle_cpu_seconds')} |"
        )
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.biggang", description=__doc__.split("\n")[0])
    p.add_argument("--nodes", type=int, default=1000, help="nodes, in racks of 20")
    p.add_argument("--gang-size", type=int, default=2000)
    p.add_argument("--fit-cpu", default="300m", help="per member: fits the free rack only")
    p.add_argument("--nofit-cpu", default="400m", help="per member: fits no rack")
    p.add_argument("--variants", default="fits,unplaceable")
    p.add_argument("--idle-seconds", type=float, default=30.0)
    p.add_argument("--settle", type=float, default=5.0, help="after the failure, before idling")
    p.add_argument("--timeout", type=float, default=300.0)
    p.add_argument(
        "--leader-elect",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="run ours with --leader-elect (as the chart does) and record its Lease renewals",
    )
    podgroups.add_common_arguments(p, DEFAULT_STATE_DIR)
    args = p.parse_args(argv)
    return podgroups.run_command(args, "biggang", main_async, format_table, log)


if __name__ == "__main__":
    sys.exit(main())
