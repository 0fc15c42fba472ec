"""``python -m bench.preemption``: gangs taking capacity back (issue 13), workload-scheduler
side by side with kube-scheduler v1.37 and its workload-aware preemption.

The 1.37 control plane of ``bench.podgroups``: kube-scheduler v1.37.2 with ``GenericWorkload``
on it and on the API server. In 1.37.2 workload-aware preemption has no gate of its own
(``WorkloadAwarePreemption`` of 1.36 was folded into ``GenericWorkload``; its
``DefaultPreemption`` plugin runs ``PodGroupPostFilter`` whenever ``GenericWorkload`` is on).

Per scheduler, in a namespace of its own, one after the other:

1. Two PriorityClasses, ``bench-low`` (100) and ``bench-high`` (1,000,000).
2. The cluster full of low-priority gangs: ``--nodes`` nodes of 32 cpu, each holding
   ``--slots`` (4) pods of 8 cpu, pre-bound (``spec.nodeName``), in gangs of ``--low-size``
   (4): one v1beta1 PodGroup each (gang ``minCount`` = size, ``priorityClassName``
   bench-low, ``disruptionMode`` ``--disruption-mode``, all by default).
3. A stream of ``--high-gangs`` high-priority gangs of ``--high-size`` (8) pods of 8 cpu
   (PodGroup with ``priorityClassName`` bench-high), one after the other: each is created
   once the one before is admitted (all members bound) and ``--gap`` seconds have passed;
   the stream stops at the first gang not admitted within ``--gang-timeout``.

Reported, from one watch on the namespace: per admitted gang the time to admit (last member
created to last member bound) and its victims (low pods deleted between its creation and
the next gang's); over the stream the victims per admitted gang, the victims beyond the
minimum any scheduler needs (the cluster starts full and each high member takes one low
member's slot, so k admitted gangs need k x ``high-size`` victims, rounded up to whole low
gangs per high gang with ``disruptionMode`` all), and the low gangs left broken (some
members evicted, not all: running below their ``minCount``).
Also: high-priority pods evicted (must be 0) and each scheduler's CPU over the stream.

Victims terminate at once: the bench's pods have ``terminationGracePeriodSeconds: 0``, and
the API server deletes a grace-0 pod on the DELETE that both schedulers send (no kubelet
needed, checked on the 1.37 API server). As a stand-in kubelet for any other case, the bench
force-deletes (grace 0) any pod its watch shows with a ``deletionTimestamp``.

Why not a workload of ``bench.run``: see ``bench.biggang`` (1.37 API, a pre-filled
cluster, per-gang outcomes rather than pods per second).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import measure, podgroups, report, workloads
from bench.report import KUBE, OURS
from scheduler.api.client import ApiClient, ApiError

DEFAULT_STATE_DIR = Path(tempfile.gettempdir()) / "workload-scheduler-bench-preemption"


def log(message: str) -> None:
    print(f"[preemption {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@dataclass
class Seen:
    """What the watch saw: first ADDED, first bound, DELETED, per pod name."""

    added: dict[str, float] = field(default_factory=dict)
    bound: dict[str, float] = field(default_factory=dict)
    deleted: dict[str, float] = field(default_factory=dict)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def on_pod(self, kind: str, name: str, node: str, now: float) -> None:
        if kind == "DELETED":
            self.deleted.setdefault(name, now)
        else:
            self.added.setdefault(name, now)
            if node:
                self.bound.setdefault(name, now)
        self.changed.set()

    async def wait_all_bound(self, names: list[str], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not all(n in self.bound for n in names):
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), left)
        return True


async def run_stream(
    args: argparse.Namespace, env: dict[str, Any], contestant: str
) -> dict[str, Any]:
    admin: ApiClient = env["admin"]
    plan = workloads.preemption(
        args.nodes,
        low_size=args.low_size,
        high_size=args.high_size,
        high_gangs=args.high_gangs,
        slots=args.slots,
        disruption_mode=args.disruption_mode,
    )
    short = "ours" if contestant == OURS else "kube"
    scheduler_name = podgroups.SCHEDULER_NAMES[contestant]
    ns = await podgroups.make_namespace(admin, f"preempt-{short}")
    pods_path = f"/api/v1/namespaces/{ns}/pods"
    result: dict[str, Any] = {"scheduler": contestant, "namespace": ns}
    seen = Seen()
    reaped: set[str] = set()
    finished: set[str] = set()
    """Terminating pods the bench had to delete itself (none when grace 0 works)."""
    reaper_tasks: set[asyncio.Task[None]] = set()

    def reap(name: str) -> None:
        """Stand-in kubelet: a terminating pod is finished off at once."""
        if name in reaped:
            return
        reaped.add(name)

        async def delete() -> None:
            with contextlib.suppress(ApiError):  # 404: the API server had finished it
                await admin.request(
                    "DELETE", f"{pods_path}/{name}", params={"gracePeriodSeconds": "0"}
                )
                finished.add(name)

        task = asyncio.create_task(delete())
        reaper_tasks.add(task)
        task.add_done_callback(reaper_tasks.discard)

    watch = measure.NamespaceWatch(admin, ns, seen.on_pod, on_terminating=reap)
    ours = None
    try:
        t = time.monotonic()
        await podgroups.create_podgroups(admin, ns, plan.low.groups)
        low_bodies = plan.low.serialized(scheduler_name)
        made = await measure.create_all(admin, pods_path, low_bodies, 32)
        if made.errors:
            raise RuntimeError(f"creating the low-priority pods: {made.errors[:3]}")
        log(
            f"{short}: {len(plan.low.groups)} low gangs ({len(low_bodies)} pods) in "
            f"{time.monotonic() - t:.1f}s"
        )
        if contestant == OURS:
            ours = measure.OurScheduler(
                env["scheduler_kubeconfig"],
                env["log_dir"] / "preemption-ours.log",
                qps=args.qps,
                burst=args.burst,
                extra_args=["--no-secure-metrics"],
            )
            await ours.start()
            assert ours.pid is not None
            pid = ours.pid
        else:
            pid = env["pids"][KUBE]
        await watch.start()
        pids = {"scheduler": pid, **{k: v for k, v in env["pids"].items() if k != KUBE}}
        cpu_before = measure.cpu_snapshot(pids)
        stream_start = time.monotonic()
        gangs: list[dict[str, Any]] = []
        windows: list[float] = []
        for gang in plan.high:
            windows.append(time.monotonic())
            await podgroups.create_podgroups(admin, ns, gang.groups)
            bodies = gang.serialized(scheduler_name)
            created = await measure.create_all(admin, pods_path, bodies, 16)
            names = gang.pod_names
            admitted = await seen.wait_all_bound(names, args.gang_timeout)
            entry: dict[str, Any] = {"gang": gang.name, "admitted": admitted}
            if created.errors:
                entry["create_errors"] = created.errors[:3]
            if admitted:
                last_created = max(seen.added.get(n, created.end) for n in names)
                entry["admit_seconds"] = round(max(seen.bound[n] for n in names) - last_created, 3)
            gangs.append(entry)
            log(f"{short}: {gang.name} {'admitted' if admitted else 'NOT admitted'} {entry}")
            if not admitted:
                break
            await asyncio.sleep(args.gap)
        windows.append(time.monotonic())
        cpu_after = measure.cpu_snapshot(pids)
        stream_seconds = time.monotonic() - stream_start
        await asyncio.sleep(1.0)  # late deletions still count (to the last window)
        low_names = set(plan.low.gang_of)
        high_names = {n for g in plan.high for n in g.pod_names}
        for i, entry in enumerate(gangs):
            start, end = windows[i], windows[i + 1] if i + 1 < len(gangs) else float("inf")
            victims = [n for n, at in seen.deleted.items() if n in low_names and start <= at < end]
            entry["victims"] = len(victims)
        evicted_low = [n for n in seen.deleted if n in low_names]
        admitted_gangs = [g for g in gangs if g["admitted"]]
        latencies = sorted(g["admit_seconds"] for g in admitted_gangs)
        cpu = measure.cpu_delta(cpu_before, cpu_after)
        result.update(
            nodes=args.nodes,
            low_gangs=len(plan.low.groups),
            low_pods=len(low_bodies),
            high_gangs=len(plan.high),
            high_size=plan.high_size,
            disruption_mode=plan.disruption_mode,
            minimum_victims_per_gang=plan.minimum_victims(),
            admitted=len(admitted_gangs),
            attempted=len(gangs),
            admit_p50=report.percentile(latencies, 50),
            admit_max=max(latencies, default=None),
            victims=len(evicted_low),
            victims_per_admitted_gang=(
                round(len(evicted_low) / len(admitted_gangs), 2) if admitted_gangs else None
            ),
            # The cluster starts full, so k admitted gangs need k x the minimum at least;
            # a gang admitted into room an earlier one freed in excess needs none.
            victims_beyond_minimum=max(
                0, len(evicted_low) - len(admitted_gangs) * plan.minimum_victims()
            ),
            broken_low_gangs=workloads.broken_gangs(plan.low.gang_of, evicted_low),
            high_pods_evicted=sum(1 for n in seen.deleted if n in high_names),
            force_deleted_by_bench=len(finished),
            stream_seconds=round(stream_seconds, 2),
            cpu_seconds=cpu.get("scheduler"),
            cpu_seconds_all=cpu,
            gangs=gangs,
            loadavg_1m=round(os.getloadavg()[0], 2),
        )
    finally:
        await watch.stop()
        if reaper_tasks:
            await asyncio.gather(*reaper_tasks, return_exceptions=True)
        if ours is not None:
            await ours.stop()
        await podgroups.clean_namespace(admin, ns)
        await asyncio.sleep(args.settle)
    log(f"{short}: { {k: v for k, v in result.items() if k != 'gangs'} }")
    return result


async def main_async(args: argparse.Namespace, cluster: Any) -> dict[str, Any]:
    config = {
        k: getattr(args, k)
        for k in (
            "nodes",
            "slots",
            "low_size",
            "high_size",
            "high_gangs",
            "disruption_mode",
            "gap",
            "gang_timeout",
            "qps",
            "burst",
        )
    }
    session = await podgroups.open_session(args, cluster, "preemption", config, log)
    admin, contestants, doc = session.admin, session.contestants, session.doc
    doc["runs"] = []
    async with admin:
        await podgroups.describe_cluster(session)
        await podgroups.ensure_priority_classes(admin)
        env = {
            "admin": admin,
            "scheduler_kubeconfig": str(cluster.kube_scheduler_kubeconfig),
            "log_dir": session.log_dir,
            "pids": session.pids,
        }
        t = time.monotonic()
        nodes = workloads.nodes(args.nodes, gpu_every=0)
        await measure.ensure_nodes(admin, nodes)
        doc["nodes_deleted"] = await podgroups.only_these_nodes(
            admin, [n["metadata"]["name"] for n in nodes]
        )
        log(f"{args.nodes} nodes in {time.monotonic() - t:.1f}s")
        await asyncio.sleep(2.0)
        for run in range(args.runs):
            shift = run % len(contestants)
            for contestant in contestants[shift:] + contestants[:shift]:
                entry = await run_stream(args, env, contestant)
                entry["run"] = run + 1
                doc["runs"].append(entry)
                podgroups.write_results(args.out, doc)
    doc["finished"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    return doc


def _f(value: Any, unit: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.2f}{unit}"
    return f"{value}{unit}"


def format_table(doc: dict[str, Any]) -> str:
    rows = [
        "| scheduler | run | admitted | admit p50 | admit max | victims per admitted gang "
        "(minimum) | victims beyond minimum | low gangs broken | high pods evicted | "
        "CPU s (stream) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in doc["runs"]:
        rows.append(
            f"| {r['scheduler']} | {r.get('run', 1)} | {r['admitted']}/{r['high_gangs']} | "
            f"{_f(r['admit_p50'], ' s')} | {_f(r['admit_max'], ' s')} | "
            f"{_f(r['victims_per_admitted_gang'])} ({r['minimum_victims_per_gang']}) | "
            f"{r['victims_beyond_minimum']} | {r['broken_low_gangs']} | "
            f"{r['high_pods_evicted']} | {_f(r['cpu_seconds'])} |"
        )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m bench.preemption", description=__doc__.split("\n")[0]
    )
    p.add_argument("--nodes", type=int, default=100)
    p.add_argument("--slots", type=int, default=4, help="low pods per node (32/slots cpu each)")
    p.add_argument("--low-size", type=int, default=4, help="low-priority gang size")
    p.add_argument("--high-size", type=int, default=8, help="high-priority gang size")
    p.add_argument("--high-gangs", type=int, default=10)
    p.add_argument("--disruption-mode", choices=("all", "single"), default="all")
    p.add_argument("--gap", type=float, default=1.0, help="seconds between admitted gangs")
    p.add_argument("--gang-timeout", type=float, default=60.0)
    p.add_argument("--runs", type=int, default=1)
    p.add_argument("--settle", type=float, default=3.0)
    podgroups.add_common_arguments(p, DEFAULT_STATE_DIR)
    args = p.parse_args(argv)
    return podgroups.run_command(args, "preemption", main_async, format_table, log)


if __name__ == "__main__":
    sys.exit(main())
