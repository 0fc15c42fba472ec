"""``python -m bench.run``: workload-scheduler against kube-scheduler v1.35 and a ceiling.

One control plane (started here, or ``--kubeconfig`` of a running dev cluster), nodes as API
objects, then for every workload and every scheduler ``--runs`` timed runs, each in a fresh
namespace: create the Workload objects, create the pods as fast as possible, time from the
first create to the last bind as a watch sees it.  A table goes to stdout and everything
measured to a JSON file (``--out``).  See bench/README.md and docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import itertools
import os
import platform
import re
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import yaml

from bench import measure, report, workloads
from bench.report import CEILING, KUBE, OURS
from scheduler.api.client import ApiClient, ApiError
from scheduler.api.connection import Connection, load_connection

DEFAULT_STATE_DIR = Path(tempfile.gettempdir()) / "workload-scheduler-bench"
RESULTS_DIR = Path(__file__).resolve().parent / "results"
WORKLOADS = ("plain", "gangs", "mixed")
SCHEDULER_KEYS = {"ours": OURS, "kube": KUBE, "ceiling": CEILING}
SCHEDULER_NAMES = {OURS: "workload-scheduler", KUBE: "default-scheduler", CEILING: "bench-ceiling"}
"""``spec.schedulerName`` each contestant serves."""
WORKLOAD_RESOURCE = "/apis/scheduling.k8s.io/v1alpha1/namespaces/{ns}/workloads"
RBAC_NAME = "workload-scheduler-bench:workload-reader"


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- command line -----------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bench.run",
        description="Measure workload-scheduler against the real kube-scheduler (v1.35) and a "
        "ceiling binder on one local control plane: pods bound per second, gang admission "
        "latency, scheduler CPU seconds and peak RSS.",
    )
    cluster = p.add_argument_group("cluster")
    cluster.add_argument(
        "--kubeconfig",
        help="admin kubeconfig of a running dev cluster (`workload-scheduler dev-cluster up "
        "--with-kube-scheduler`); its state.json next to it gives the kube-scheduler pid. "
        "Default: start one in --state-dir and stop it at the end",
    )
    cluster.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR)
    cluster.add_argument("--keep-cluster", action="store_true", help="leave it running")
    cluster.add_argument(
        "--scheduler-kubeconfig",
        help="credentials our scheduler and the ceiling use (default: the cluster's "
        "kube-scheduler.kubeconfig, user system:kube-scheduler, as kube-scheduler)",
    )
    cluster.add_argument(
        "--kube-scheduler-pid", type=int, help="with --kubeconfig and no state.json"
    )
    cluster.add_argument("--nodes", type=int, default=1000, help="nodes (default 1000)")
    cluster.add_argument(
        "--gpu-every", type=int, default=8, help="every Nth node has 8 GPUs and a taint"
    )

    wl = p.add_argument_group("workloads")
    wl.add_argument(
        "--workloads",
        default=",".join(WORKLOADS),
        help=f"comma-separated subset of {','.join(WORKLOADS)},scale (default: the first "
        "three; scale is the --scale point)",
    )
    wl.add_argument("--plain-pods", type=int, default=10000)
    wl.add_argument("--gangs", type=int, default=1250, help="gangs (default 1250)")
    wl.add_argument("--gang-size", type=int, default=8)
    wl.add_argument("--mixed-pods", type=int, default=10000)
    wl.add_argument(
        "--scale",
        action="store_true",
        help="also the scale point (last): --scale-pods plain pods on --scale-nodes nodes",
    )
    wl.add_argument("--scale-nodes", type=int, default=5000)
    wl.add_argument("--scale-pods", type=int, default=50000)
    wl.add_argument("--scale-runs", type=int, default=1, help="runs at the scale point")

    how = p.add_argument_group("measurement")
    how.add_argument(
        "--schedulers",
        default="ours,kube,ceiling",
        help="comma-separated subset of ours,kube,ceiling (default all)",
    )
    how.add_argument("--runs", type=int, default=5, help="runs per workload and scheduler")
    how.add_argument("--qps", type=float, default=1000.0, help="client QPS of every scheduler")
    how.add_argument("--burst", type=int, default=1000, help="client burst of every scheduler")
    how.add_argument("--parallel-binds", type=int, help="passed to our scheduler")
    how.add_argument("--create-concurrency", type=int, default=32, help="pod POSTs in flight")
    how.add_argument(
        "--ceiling-concurrency", type=int, default=100, help="ceiling bindings in flight"
    )
    how.add_argument("--run-timeout", type=float, help="seconds per run (default 60 + pods/20)")
    how.add_argument(
        "--cpu-tail",
        type=float,
        default=2.0,
        help="seconds after the last bind still counted as the run's CPU (events, status)",
    )
    how.add_argument("--settle", type=float, default=2.0, help="pause after each run's clean-up")
    how.add_argument(
        "--etcd-defrag-mib",
        type=int,
        default=160,
        help="compact+defragment etcd between runs once its db is this big (quota 512)",
    )
    p.add_argument("--out", type=Path, help="results JSON (default bench/results/<time>.json)")
    p.add_argument("--markdown", action="store_true", help="print the tables as markdown")
    return p


def ceiling_main(argv: list[str]) -> int:
    """Entry of the ceiling binder subprocess (``python -m bench.run _ceiling-binder``)."""
    p = argparse.ArgumentParser(prog="python -m bench.run _ceiling-binder")
    p.add_argument("--kubeconfig", required=True)
    p.add_argument("--namespace", required=True)
    p.add_argument("--plan", type=Path, required=True)
    p.add_argument("--qps", type=float, default=1000.0)
    p.add_argument("--burst", type=int, default=1000)
    p.add_argument("--concurrency", type=int, default=100)
    a = p.parse_args(argv)
    plan = measure.load_plan(a.plan)
    return asyncio.run(
        measure.ceiling_binder(
            a.kubeconfig, a.namespace, plan, qps=a.qps, burst=a.burst, concurrency=a.concurrency
        )
    )


# -- machine --------------------------------------------------------------------------------


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _mem_total() -> int | None:
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    return None


async def _go_version() -> str:
    try:
        proc = await asyncio.create_subprocess_exec(
            "go", "version", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL
        )
        out, _ = await asyncio.wait_for(proc.communicate(), 30)
    except (OSError, TimeoutError):
        return "go: not found"
    text = out.decode().strip()
    match = re.search(r"go version (\S+)", text)
    return f"Go {match.group(1).removeprefix('go')}" if match else text


async def machine_info(client: ApiClient) -> dict[str, Any]:
    version = orjson.loads(await client.get("/version"))
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_model": _cpu_model(),
        "memory_bytes": _mem_total(),
        "kernel": f"Linux {platform.release()}",
        "python": platform.python_version(),
        "go": await _go_version(),
        "kubernetes": version.get("gitVersion"),
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
    }


# -- one run ----------------------------------------------------------------------------------


@dataclass
class Bench:
    args: argparse.Namespace
    observer: ApiClient
    """Admin, no client-side limit: watches, namespaces, Workloads, clean-up."""
    creator: ApiClient
    """Admin, no client-side limit, its own connection pool: pod creation only."""
    admin_kubeconfig: str
    scheduler_kubeconfig: str
    log_dir: Path
    pids: dict[str, int]
    """Processes whose CPU is recorded for every run (kube-scheduler, apiserver, etcd)."""
    etcd_url: str | None
    nodes: list[dict[str, Any]] = field(default_factory=list)
    ours: measure.OurScheduler | None = None
    maintenance: list[dict[str, Any]] = field(default_factory=list)

    def timeout_for(self, pods: int) -> float:
        return float(self.args.run_timeout or 60 + pods / 20)

    async def run_once(
        self, workload: workloads.Workload, contestant: str, index: int
    ) -> dict[str, Any]:
        args = self.args
        short = {OURS: "ours", KUBE: "kube", CEILING: "ceiling"}[contestant]
        ns = f"bench-{workload.name}-{short}-{index}-{uuid.uuid4().hex[:5]}"
        await self.observer.post(
            "/api/v1/namespaces",
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}},
        )
        workloads_path = WORKLOAD_RESOURCE.format(ns=ns) if workload.groups else None
        if workloads_path:
            groups = [(g["metadata"]["name"], orjson.dumps(g)) for g in workload.groups]
            made = await measure.create_all(self.observer, workloads_path, groups, 16)
            if made.errors:
                raise RuntimeError(f"creating Workloads: {made.errors[:3]}")
            # Let both schedulers' informers see the Workloads before the first pod.
            await asyncio.sleep(1.0)
        bodies = workload.serialized(SCHEDULER_NAMES[contestant])
        times = measure.PodTimes(measure.names_of(bodies))
        watch = measure.NamespaceWatch(self.observer, ns, times.on_pod)
        await watch.start()
        pids = {**self.pids, "bench": os.getpid()}
        if self.ours is not None and self.ours.pid is not None:
            pids[OURS] = self.ours.pid
        ceiling = None
        if contestant == CEILING:
            plan_path = self.log_dir / f"plan-{ns}.json"
            plan_path.write_bytes(
                measure.plan_json(workloads.plan_bindings(workload.pods, self.nodes))
            )
            ceiling = measure.CeilingProcess(
                self.scheduler_kubeconfig,
                ns,
                plan_path,
                self.log_dir / "ceiling.log",
                qps=args.qps,
                burst=args.burst,
                concurrency=args.ceiling_concurrency,
            )
            await ceiling.start()
            assert ceiling.pid is not None
            pids[CEILING] = ceiling.pid
        try:
            await measure.warm_up(self.creator, args.create_concurrency)
            cpu_before = measure.cpu_snapshot(pids)
            timeout = self.timeout_for(len(bodies))
            create_task = asyncio.create_task(
                measure.create_all(
                    self.creator, f"/api/v1/namespaces/{ns}/pods", bodies, args.create_concurrency
                )
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(times.all_bound.wait(), timeout)
            created = await create_task
            cpu_at_end = measure.cpu_snapshot(pids)
            await asyncio.sleep(args.cpu_tail)
            cpu_after = measure.cpu_snapshot(pids)
            ceiling_rss = measure.peak_rss(ceiling.pid) if ceiling and ceiling.pid else None
        finally:
            if ceiling is not None:
                await ceiling.stop()
            await watch.stop()
        result = self._result(workload, contestant, index, ns, times, created)
        # Bound is not enough: required anti-affinity and spread must hold where they landed.
        result["placement_violations"] = workloads.placement_violations(
            workload.pods, times.node, self.nodes
        )
        cpu = measure.cpu_delta(cpu_before, cpu_after)
        result["cpu_seconds"] = cpu.get(contestant)
        result["cpu_seconds_to_last_bind"] = measure.cpu_delta(cpu_before, cpu_at_end).get(
            contestant
        )
        result["cpu_seconds_all"] = cpu
        result["watch"] = {"reconnects": watch.reconnects, "relists": watch.relists}
        if ceiling_rss is not None:
            result["peak_rss_bytes"] = ceiling_rss
        cleanup_start = time.monotonic()
        await measure.delete_namespace(self.observer, ns, workloads_path)
        result["cleanup_seconds"] = round(time.monotonic() - cleanup_start, 2)
        await self._etcd_maintenance()
        await asyncio.sleep(args.settle)
        return result

    def _result(
        self,
        workload: workloads.Workload,
        contestant: str,
        index: int,
        ns: str,
        times: measure.PodTimes,
        created: measure.CreateResult,
    ) -> dict[str, Any]:
        total = len(times.expected)
        bound = len(times.bound)
        complete = bound == total and not created.errors
        t0 = created.start
        last_bound = max(times.bound.values(), default=None)
        seconds = (last_bound - t0) if last_bound is not None else None
        # Created = the watch's ADDED (same clock, same stream as the binds); the POST's
        # return if the watch somehow missed the ADDED.
        created_at = {**created.returned, **times.added}
        gangs = report.gang_latencies(created_at, times.bound, workload.gang_of)
        gang_values = sorted(gangs.values())
        binds = sorted(t - t0 for t in times.bound.values())
        return {
            "run": index,
            "namespace": ns,
            "pods": total,
            "bound": bound,
            "complete": complete,
            "create_errors": created.errors[:10],
            "seconds": round(seconds, 4) if seconds is not None else None,
            "pods_per_second": (
                round(report.throughput(total, t0, last_bound) or 0, 2)
                if complete and last_bound is not None
                else None
            ),
            "create_seconds": round(created.end - t0, 4),
            "create_rate": round(report.throughput(total, t0, created.end) or 0, 2),
            "first_bind_seconds": round(binds[0], 4) if binds else None,
            "median_bind_seconds": round(report.median(binds) or 0, 4) if binds else None,
            "gangs": len(set(workload.gang_of.values())),
            "gangs_admitted": len(gangs),
            "gang_latencies": [round(v, 4) for v in gang_values],
            "gang_p50": report.percentile(gang_values, 50),
            "gang_p99": report.percentile(gang_values, 99),
            "nodes_used": len(set(times.node.values())),
            "loadavg_1m": round(os.getloadavg()[0], 2),
        }

    async def _etcd_maintenance(self) -> None:
        if not self.etcd_url:
            return
        try:
            done = await measure.etcd_compact_defrag(
                self.etcd_url, self.args.etcd_defrag_mib * 1024 * 1024
            )
        except Exception as exc:  # best effort: a full etcd will say so loudly anyway
            log(f"etcd maintenance failed: {exc}")
            return
        if done:
            log(
                f"etcd compacted+defragmented: {done['db_bytes_before'] / 2**20:.1f} MiB -> "
                f"{done['db_bytes_after'] / 2**20:.1f} MiB"
            )
            self.maintenance.append({"at": time.time(), **done})

    # -- a workload, all contestants --------------------------------------------------------

    async def _start_ours(self, attempts: int = 3, pause: float = 10.0) -> float:
        """Start our scheduler and wait for /readyz; returns the seconds it took."""
        assert self.ours is not None
        for attempt in range(1, attempts + 1):
            started = time.monotonic()
            try:
                await self.ours.start()
            except RuntimeError as exc:
                if attempt == attempts:
                    raise
                log(f"{exc}; trying again in {pause:.0f}s")
                await asyncio.sleep(pause)
                continue
            took = time.monotonic() - started
            log(f"our scheduler ready in {took:.1f}s (pid {self.ours.pid})")
            return round(took, 2)
        raise AssertionError("unreachable")

    async def run_workload(
        self, workload: workloads.Workload, contestants: list[str], runs: int
    ) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "size": workload.size,
            "pods": len(workload.pods),
            "gangs": len(workload.groups),
            "nodes": len(self.nodes),
            "schedulers": {c: {"runs": [], "peak_rss_bytes": None} for c in contestants},
        }
        # Fits the cluster at all?  (Raises before anything is timed.)
        workloads.plan_bindings(workload.pods, self.nodes)
        kube_pid = self.pids.get(KUBE)
        peak_reset = {KUBE: bool(kube_pid and measure.reset_peak_rss(kube_pid))}
        if OURS in contestants:
            self.ours = measure.OurScheduler(
                self.scheduler_kubeconfig,
                self.log_dir / f"workload-scheduler-{workload.name}.log",
                qps=self.args.qps,
                burst=self.args.burst,
                extra_args=(
                    ["--parallel-binds", str(self.args.parallel_binds)]
                    if self.args.parallel_binds
                    else []
                ),
            )
            entry["ours_startup_seconds"] = await self._start_ours()
            entry["ours_restarts"] = 0
        try:
            for r in range(runs):
                shift = r % len(contestants)
                for contestant in contestants[shift:] + contestants[:shift]:
                    if self.ours is not None and not self.ours.running:
                        # Crashed (or the code under it was mid-edit): note it, start again.
                        log(f"our scheduler is not running; see {self.ours.log_path}; restarting")
                        entry["ours_restarts"] += 1
                        await self._start_ours()
                    result = await self.run_once(workload, contestant, r + 1)
                    entry["schedulers"][contestant]["runs"].append(result)
                    log(_progress(workload, contestant, r + 1, runs, result))
            if kube_pid and KUBE in entry["schedulers"]:
                entry["schedulers"][KUBE]["peak_rss_bytes"] = measure.peak_rss(kube_pid)
                entry["schedulers"][KUBE]["peak_rss_scope"] = (
                    "this workload" if peak_reset[KUBE] else "since kube-scheduler started"
                )
            if self.ours is not None and self.ours.pid is not None:
                ours_entry = entry["schedulers"][OURS]
                ours_entry["peak_rss_bytes"] = measure.peak_rss(self.ours.pid)
                ours_entry["peak_rss_scope"] = "process started for this workload"
            if CEILING in entry["schedulers"]:
                c = entry["schedulers"][CEILING]
                c["peak_rss_bytes"] = (
                    max((r.get("peak_rss_bytes") or 0 for r in c["runs"]), default=None) or None
                )
                c["peak_rss_scope"] = "one process per run"
        finally:
            if self.ours is not None:
                await self.ours.stop()
                self.ours = None
        return entry


def _progress(
    w: workloads.Workload, contestant: str, run: int, runs: int, r: dict[str, Any]
) -> str:
    text = f"{w.name} run {run}/{runs} {contestant}: {r['bound']}/{r['pods']} bound"
    if r["seconds"] is not None:
        text += f" in {r['seconds']:.2f}s"
    if r["pods_per_second"]:
        text += f" = {r['pods_per_second']:.0f} pods/s"
    text += f" (created in {r['create_seconds']:.2f}s)"
    if r["gang_p50"] is not None:
        text += f", gang p50 {r['gang_p50']:.3f}s p99 {r['gang_p99']:.3f}s"
    if r.get("cpu_seconds") is not None:
        text += f", cpu {r['cpu_seconds']:.2f}s"
    violations = {k: v for k, v in (r.get("placement_violations") or {}).items() if v}
    if violations:
        text += f", PLACEMENT VIOLATIONS {violations}"
    if not r["complete"]:
        text += " INCOMPLETE"
    return text


# -- set-up ------------------------------------------------------------------------------------


_BENCH_READS = (
    ("scheduling.k8s.io", "workloads"),
    ("batch", "jobs"),
    ("scheduling.k8s.io", "priorityclasses"),
)
"""What our scheduler reads beyond kube-scheduler's own ClusterRole, as the bench runs it
(its chart's ClusterRole grants the same: Jobs as gangs, group priority from a class)."""


async def ensure_workload_rbac(client: ApiClient) -> dict[str, Any]:
    """Can user system:kube-scheduler list/watch scheduling.k8s.io Workloads (it can in
    v1.35 with GenericWorkload on; kube-scheduler needs it too), batch Jobs (ours watches
    them for Jobs as gangs; kube-scheduler does not) and PriorityClasses (ours resolves a
    group's priorityClassName)?  If not, grant it."""
    denied = []
    for (group, resource), verb in itertools.product(_BENCH_READS, ("get", "list", "watch")):
        review = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SubjectAccessReview",
            "spec": {
                "user": "system:kube-scheduler",
                "groups": ["system:authenticated"],
                "resourceAttributes": {"group": group, "resource": resource, "verb": verb},
            },
        }
        answer = orjson.loads(
            await client.post("/apis/authorization.k8s.io/v1/subjectaccessreviews", review)
        )
        if not answer.get("status", {}).get("allowed"):
            denied.append(f"{verb} {resource}.{group}")
    if not denied:
        return {"workloads_allowed_by_default": True, "added": None}
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": RBAC_NAME},
        "rules": [
            {"apiGroups": [group], "resources": [resource], "verbs": ["get", "list", "watch"]}
            for group, resource in _BENCH_READS
        ],
    }
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": RBAC_NAME},
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": RBAC_NAME,
        },
        "subjects": [
            {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "User",
                "name": "system:kube-scheduler",
            }
        ],
    }
    for path, body in (
        ("/apis/rbac.authorization.k8s.io/v1/clusterroles", role),
        ("/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", binding),
    ):
        try:
            await client.post(path, body)
        except ApiError as exc:
            if exc.status != 409:
                raise
    return {"workloads_allowed_by_default": False, "denied": denied, "added": RBAC_NAME}


def _kube_scheduler_settings(state_dir: Path) -> dict[str, Any] | None:
    path = state_dir / "kube-scheduler-config.yaml"
    with contextlib.suppress(OSError, yaml.YAMLError):
        data = yaml.safe_load(path.read_text())
        conn = data.get("clientConnection", {})
        return {"qps": conn.get("qps"), "burst": conn.get("burst")}
    return None


def select(values: str, allowed: dict[str, str] | tuple[str, ...], what: str) -> list[str]:
    chosen = [v.strip() for v in values.split(",") if v.strip()]
    known = list(allowed)
    bad = [v for v in chosen if v not in known]
    if bad or not chosen:
        raise SystemExit(
            f"--{what}: unknown {', '.join(bad) or '(empty)'}; choose from {', '.join(known)}"
        )
    if isinstance(allowed, dict):
        return [allowed[v] for v in chosen]
    return chosen


async def run_bench(args: argparse.Namespace, cluster: Any) -> dict[str, Any]:
    """Everything after the control plane is up; ``cluster`` is a ClusterInfo or None."""
    started_wall = time.time()
    started = time.monotonic()
    contestants = select(args.schedulers, SCHEDULER_KEYS, "schedulers")
    names = select(args.workloads, (*WORKLOADS, "scale"), "workloads")
    if args.scale and "scale" not in names:
        names.append("scale")
    admin_kubeconfig = str(args.kubeconfig or cluster.kubeconfig)
    scheduler_kubeconfig = args.scheduler_kubeconfig or (
        str(cluster.kube_scheduler_kubeconfig) if cluster else admin_kubeconfig
    )
    pids: dict[str, int] = {}
    if cluster is not None:
        for name in ("kube-scheduler", "kube-apiserver", "etcd"):
            if name in cluster.processes:
                pids[name] = cluster.processes[name].pid
    if args.kube_scheduler_pid:
        pids[KUBE] = args.kube_scheduler_pid
    if KUBE in contestants and KUBE not in pids:
        log("no kube-scheduler pid known (--kube-scheduler-pid): kube-scheduler is skipped")
        contestants.remove(KUBE)

    connection: Connection = await asyncio.to_thread(load_connection, admin_kubeconfig)
    observer = ApiClient(connection, qps=measure.UNLIMITED_QPS, burst=10**9, user_agent="bench")
    creator = ApiClient(
        connection,
        qps=measure.UNLIMITED_QPS,
        burst=10**9,
        user_agent="bench-create",
        max_connections=max(args.create_concurrency, 1),
    )
    log_dir = Path(args.state_dir if cluster is not None else tempfile.mkdtemp()) / "bench-logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    out = args.out or RESULTS_DIR / f"{dt.datetime.now(dt.UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    doc: dict[str, Any] = {
        "schema": 1,
        "started": dt.datetime.fromtimestamp(started_wall, dt.UTC).isoformat(timespec="seconds"),
        "command": " ".join(["python -m bench.run", *sys.argv[1:]]),
        "config": {
            "runs": args.runs,
            "scale_runs": args.scale_runs if "scale" in names else None,
            "qps": args.qps,
            "burst": args.burst,
            "parallel_binds": args.parallel_binds,
            "create_concurrency": args.create_concurrency,
            "ceiling_concurrency": args.ceiling_concurrency,
            "cpu_tail_seconds": args.cpu_tail,
            "settle_seconds": args.settle,
            "nodes": args.nodes,
            "gpu_every": args.gpu_every,
            "schedulers": contestants,
            "scheduler_names": {c: SCHEDULER_NAMES[c] for c in contestants},
            "scheduler_identity": "kube-scheduler.kubeconfig (system:kube-scheduler)"
            if cluster is not None and not args.scheduler_kubeconfig
            else scheduler_kubeconfig,
        },
        "workloads": {},
    }
    async with observer, creator:
        doc["machine"] = await machine_info(observer)
        if cluster is not None:
            doc["config"]["kube_scheduler_client"] = _kube_scheduler_settings(cluster.state_dir)
        doc["rbac"] = await ensure_workload_rbac(observer)
        log(f"machine: {doc['machine']}")
        bench = Bench(
            args, observer, creator, admin_kubeconfig, scheduler_kubeconfig, log_dir, pids,
            cluster.etcd_url if cluster is not None else None,
        )  # fmt: skip
        t = time.monotonic()
        bench.nodes = workloads.nodes(args.nodes, gpu_every=args.gpu_every)
        await measure.ensure_nodes(observer, bench.nodes)
        log(f"{len(bench.nodes)} nodes ready in {time.monotonic() - t:.1f}s")
        await asyncio.sleep(2.0)  # kube-scheduler's informer catches up

        plan: list[tuple[workloads.Workload, int]] = []
        for name in names:
            if name == "plain":
                plan.append((workloads.plain(args.plain_pods), args.runs))
            elif name == "gangs":
                plan.append((workloads.gangs(args.gangs, args.gang_size), args.runs))
            elif name == "mixed":
                plan.append(
                    (
                        workloads.mixed(args.mixed_pods, args.nodes, gpu_every=args.gpu_every),
                        args.runs,
                    )
                )
        for workload, runs in plan:
            log(
                f"workload {workload.name}: {workload.size}, {runs} runs x {', '.join(contestants)}"
            )
            doc["workloads"][workload.name] = await _guarded(bench, workload, contestants, runs)
            _write(out, doc, started)
        if "scale" in names:
            extra = args.scale_nodes - len(bench.nodes)
            if extra > 0:
                t = time.monotonic()
                more = workloads.nodes(extra, gpu_every=args.gpu_every, start=len(bench.nodes))
                await measure.ensure_nodes(observer, more)
                bench.nodes += more
                log(f"scale point: {len(bench.nodes)} nodes in {time.monotonic() - t:.1f}s")
                await asyncio.sleep(5.0)
            workload = workloads.scale(args.scale_pods, len(bench.nodes))
            runs_of = f"{args.scale_runs} runs x {', '.join(contestants)}"
            log(f"workload scale: {workload.size}, {runs_of}")
            doc["workloads"]["scale"] = await _guarded(
                bench, workload, contestants, args.scale_runs
            )
        doc["etcd_maintenance"] = bench.maintenance
    _write(out, doc, started)
    doc["results_file"] = str(out)
    return doc


async def _guarded(
    bench: Bench, workload: workloads.Workload, contestants: list[str], runs: int
) -> dict[str, Any]:
    """One workload; a failure is recorded and the benchmark goes on with the next."""
    try:
        return await bench.run_workload(workload, contestants, runs)
    except Exception as exc:
        log(f"workload {workload.name} failed: {type(exc).__name__}: {exc}")
        return {"size": workload.size, "error": f"{type(exc).__name__}: {exc}", "schedulers": {}}


def _write(out: Path, doc: dict[str, Any], started: float) -> None:
    doc["wall_seconds"] = round(time.monotonic() - started, 1)
    doc["finished"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    doc["summary"] = report.summarize(doc)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "_ceiling-binder":
        return ceiling_main(argv[1:])
    args = build_parser().parse_args(argv)
    from devcluster import ControlPlane, load_cluster_info

    plane = None
    if args.kubeconfig:
        cluster = load_cluster_info(Path(args.kubeconfig).resolve().parent)
        if cluster is not None and not args.scheduler_kubeconfig:
            args.state_dir = cluster.state_dir
    else:
        plane = ControlPlane(progress=lambda m: log(f"control plane: {m}"))
        cluster = plane.up(
            args.state_dir,
            "1.35",
            with_kube_scheduler=True,
            # Schedulers only, as for the recorded results: the controllers' watches and the
            # namespace controller's clean-up would compete with them for the two cores.
            with_controller_manager=False,
            with_kwok=False,
            kube_scheduler_qps=args.qps,
            kube_scheduler_burst=args.burst,
        )
        if cluster.reused:
            log(f"reusing the control plane in {args.state_dir}; its kube-scheduler keeps the "
                "QPS/burst it was started with")  # fmt: skip
    try:
        doc = asyncio.run(run_bench(args, cluster))
    finally:
        if plane is not None and not args.keep_cluster and not (cluster and cluster.reused):
            plane.down(args.state_dir)
    print(report.format_report(doc, markdown=args.markdown))
    print(f"\nwall time {doc['wall_seconds']:.0f}s; results: {doc['results_file']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
