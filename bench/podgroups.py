"""The 1.37 side of the benchmark: a control plane serving PodGroups, with kube-scheduler v1.37.

Shared by ``bench.biggang`` and ``bench.preemption``. The control plane is the dev one
(``devcluster``) at release 1.37: etcd, kube-apiserver and kube-scheduler v1.37.2 with the
release's gates (``GenericWorkload``, which in 1.37 also carries gang scheduling and
workload-aware preemption, ``TopologyAwareWorkloadScheduling`` for
``schedulingConstraints.topology``, ``WorkloadWithJob``) on both the API server and
kube-scheduler; no kube-controller-manager and no kwok, so only the schedulers compete for
the cores (as in ``bench.run``).

Things the 1.37 API server does that the bench must undo itself, with no controller-manager:
PodGroups get the ``scheduling.k8s.io/podgroup-protection`` finalizer, which the
controller-manager would drop once the group's pods are gone (:func:`delete_podgroups`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import datetime as dt
import signal
import sys
import time
from collections.abc import Callable, Coroutine, Iterable, Mapping
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from prometheus_client.parser import text_string_to_metric_families

from bench import measure, workloads
from bench.report import KUBE, OURS
from scheduler.api.client import ApiClient, ApiError
from scheduler.api.connection import load_connection

RELEASE = "1.37"
RESULTS_DIR = Path(__file__).resolve().parent / "results"
SCHEDULER_NAMES = {OURS: "workload-scheduler", KUBE: "default-scheduler"}
"""``spec.schedulerName`` each contestant serves."""
PODGROUPS = f"/apis/{workloads.PODGROUP_API}/namespaces/{{ns}}/podgroups"
PRIORITY_CLASSES = "/apis/scheduling.k8s.io/v1/priorityclasses"
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


# -- the command around a measurement ------------------------------------------------------


def add_common_arguments(p: argparse.ArgumentParser, state_dir: Path) -> None:
    p.add_argument(
        "--kubeconfig",
        help="admin kubeconfig of a running 1.37 dev cluster (its state.json beside it gives "
        "kube-scheduler's pid and port); default: start one in --state-dir",
    )
    p.add_argument("--state-dir", type=Path, default=state_dir)
    p.add_argument("--schedulers", default="ours,kube", help="subset of ours,kube")
    p.add_argument("--qps", type=float, default=1000.0)
    p.add_argument("--burst", type=int, default=1000)
    p.add_argument("--keep-cluster", action="store_true")
    p.add_argument("--out", type=Path)


def contestants_and_pids(
    schedulers: str, cluster: Any, log: Callable[[str], None]
) -> tuple[list[str], dict[str, int]]:
    """The schedulers asked for, and the pids whose CPU is read (kube-scheduler, API, etcd)."""
    contestants = [
        {"ours": OURS, "kube": KUBE}[c.strip()] for c in schedulers.split(",") if c.strip()
    ]
    pids = {
        name: cluster.processes[name].pid
        for name in ("kube-scheduler", "kube-apiserver", "etcd")
        if name in cluster.processes
    }
    if KUBE in contestants and KUBE not in pids:
        log("no kube-scheduler in this control plane: kube-scheduler is skipped")
        contestants.remove(KUBE)
    return contestants, pids


@dataclasses.dataclass
class Session:
    """What both 1.37 commands set up before they measure: the benchmark's own client, where
    our scheduler's logs go, the contestants with the pids whose CPU is read, the results."""

    admin: ApiClient
    log_dir: Path
    contestants: list[str]
    pids: dict[str, int]
    doc: dict[str, Any]


async def open_session(
    args: argparse.Namespace,
    cluster: Any,
    command: str,
    config: Mapping[str, Any],
    log: Callable[[str], None],
) -> Session:
    """The session of ``python -m bench.<command>``; ``config`` goes into the results."""
    kubeconfig = str(args.kubeconfig or cluster.kubeconfig)
    connection = await asyncio.to_thread(load_connection, kubeconfig)
    admin = ApiClient(connection, qps=measure.UNLIMITED_QPS, burst=10**9, user_agent="bench")
    log_dir = args.state_dir / "bench-logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    contestants, pids = contestants_and_pids(args.schedulers, cluster, log)
    doc: dict[str, Any] = {
        "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": " ".join([f"python -m bench.{command}", *sys.argv[1:]]),
        "config": {**config, "schedulers": contestants, "api": workloads.PODGROUP_API},
    }
    return Session(admin, log_dir, contestants, pids, doc)


async def describe_cluster(session: Session) -> None:
    """The machine, the PodGroup fields the API server serves and the scheduler identity's
    access, into the results (the client must be open)."""
    from bench.run import ensure_workload_rbac, machine_info

    doc, admin = session.doc, session.admin
    doc["machine"] = await machine_info(admin)
    doc["served_podgroup_fields"] = await served_podgroup_fields(admin)
    doc["rbac"] = await ensure_workload_rbac(admin)


def write_results(out: Path, doc: Mapping[str, Any]) -> None:
    """The results so far (after every measurement, so a cut-off run keeps them)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2))


def run_command(
    args: argparse.Namespace,
    name: str,
    measure_all: Callable[[argparse.Namespace, Any], Coroutine[Any, Any, dict[str, Any]]],
    table: Callable[[dict[str, Any]], str],
    log: Callable[[str], None],
) -> int:
    """Start (or find) the control plane, run ``measure_all``, stop the plane, print."""
    args.out = args.out or RESULTS_DIR / (
        f"{name}-{dt.datetime.now(dt.UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    )
    # An outer `timeout` (SIGTERM) unwinds like Ctrl-C: the control plane is stopped and
    # what was measured so far is already in the results file.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    plane = None
    if args.kubeconfig:
        from devcluster import load_cluster_info

        cluster = load_cluster_info(Path(args.kubeconfig).resolve().parent)
        if cluster is None:
            raise SystemExit(f"no dev-cluster state.json beside {args.kubeconfig}")
    else:
        plane, cluster = start_control_plane(
            args.state_dir, qps=args.qps, burst=args.burst, progress=log
        )
    try:
        doc: dict[str, Any] = asyncio.run(measure_all(args, cluster))
    finally:
        if plane is not None and not args.keep_cluster and not cluster.reused:
            plane.down(args.state_dir)
    write_results(args.out, doc)
    print(table(doc))
    print(f"\nresults: {args.out}")
    return 0


def start_control_plane(
    state_dir: Path, *, qps: float, burst: int, progress: Callable[[str], None]
) -> tuple[Any, Any]:
    """(ControlPlane, ClusterInfo) of a fresh (or reused) 1.37 plane with kube-scheduler."""
    from devcluster import ControlPlane

    plane = ControlPlane(progress=progress)
    cluster = plane.up(
        state_dir,
        RELEASE,
        with_kube_scheduler=True,
        with_controller_manager=False,
        with_kwok=False,
        kube_scheduler_qps=qps,
        kube_scheduler_burst=burst,
    )
    return plane, cluster


async def served_podgroup_fields(client: ApiClient) -> dict[str, list[str]]:
    """The PodGroup spec fields the running API server serves (its OpenAPI v3), to check
    the manifests' shape against what 1.37 really serves, not against our reading of it."""
    doc = orjson.loads(await client.get(f"/openapi/v3/apis/{workloads.PODGROUP_API}"))
    schemas = doc["components"]["schemas"]
    version = workloads.PODGROUP_API.split("/")[1]
    prefix = f"io.k8s.api.scheduling.{version}."
    return {
        name: sorted(schemas[prefix + name].get("properties", {}))
        for name in ("PodGroupSpec", "PodGroupSchedulingConstraints", "DisruptionMode")
        if prefix + name in schemas
    }


async def ensure_priority_classes(client: ApiClient) -> None:
    for name, value in workloads.PRIORITY_CLASSES.items():
        try:
            await client.post(PRIORITY_CLASSES, workloads.priority_class(name, value))
        except ApiError as exc:
            if exc.status != 409:
                raise


async def create_podgroups(
    client: ApiClient, namespace: str, groups: Iterable[Mapping[str, Any]]
) -> None:
    bodies = [(g["metadata"]["name"], orjson.dumps(g)) for g in groups]
    made = await measure.create_all(client, PODGROUPS.format(ns=namespace), bodies, 16)
    if made.errors:
        raise RuntimeError(f"creating PodGroups: {made.errors[:3]}")


async def delete_podgroups(client: ApiClient, namespace: str) -> None:
    """Drop the protection finalizer (no controller-manager here to drop it), then delete."""
    path = PODGROUPS.format(ns=namespace)
    with contextlib.suppress(ApiError):
        listed = orjson.loads(await client.get(path))
        names = [i["metadata"]["name"] for i in listed.get("items", [])]

        async def unprotect(name: str) -> None:
            with contextlib.suppress(ApiError):
                await client.patch(f"{path}/{name}", {"metadata": {"finalizers": None}})

        for start in range(0, len(names), 32):
            await asyncio.gather(*(unprotect(n) for n in names[start : start + 32]))
        await client.request("DELETE", path, timeout=300)


async def clean_namespace(client: ApiClient, namespace: str) -> None:
    """Pods (force, waited for), PodGroups, Events, then the namespace."""
    await measure.delete_pods_and_wait(client, namespace)
    await delete_podgroups(client, namespace)
    await measure.delete_namespace(client, namespace, None)


async def make_namespace(client: ApiClient, prefix: str) -> str:
    import uuid

    ns = f"{prefix}-{uuid.uuid4().hex[:5]}"
    await client.post(
        "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}
    )
    return ns


async def only_these_nodes(client: ApiClient, names: Iterable[str]) -> list[str]:
    """Delete every other node (a reused cluster may have more), so that a workload that
    fills "the cluster" fills all of it; returns the names deleted."""
    keep = set(names)
    listed = orjson.loads(await client.get("/api/v1/nodes"))
    extra = [
        n["metadata"]["name"] for n in listed.get("items", []) if n["metadata"]["name"] not in keep
    ]
    for name in extra:
        with contextlib.suppress(ApiError):
            await client.delete(f"/api/v1/nodes/{name}")
    return extra


# -- metrics ----------------------------------------------------------------------------------


def parse_metrics(text: str) -> Samples:
    return {
        (s.name, tuple(sorted(s.labels.items()))): float(s.value)
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def sample(samples: Samples, name: str, **labels: str) -> float:
    return sum(
        value
        for (n, ls), value in samples.items()
        if n == name and all((k, v) in ls for k, v in labels.items())
    )


async def scrape_http(url: str) -> Samples:
    """Our scheduler's plain-HTTP ``/metrics`` (``--no-secure-metrics``)."""
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session,
        session.get(url) as resp,
    ):
        return parse_metrics(await resp.text())


class KubeSchedulerMetrics:
    """kube-scheduler's HTTPS ``/metrics``, read with the admin kubeconfig's credentials
    (its delegated authorization lets ``system:masters`` in)."""

    def __init__(self, client: ApiClient) -> None:
        self.client = client

    @classmethod
    async def open(cls, admin_kubeconfig: str, port: int) -> KubeSchedulerMetrics:
        connection = await asyncio.to_thread(load_connection, admin_kubeconfig)
        connection = dataclasses.replace(connection, server=f"https://127.0.0.1:{port}")
        client = ApiClient(connection, qps=measure.UNLIMITED_QPS, burst=10**9)
        client.open()
        return cls(client)

    async def scrape(self) -> Samples:
        return parse_metrics((await self.client.get("/metrics")).decode())

    async def close(self) -> None:
        await self.client.close()


async def wait_for_counter(
    scrape: Callable[[], Any], name: str, above: float, timeout: float, **labels: str
) -> float | None:
    """Poll until counter ``name`` passes ``above``; the monotonic time it did, or None."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(aiohttp.ClientError, ApiError, TimeoutError):
            if sample(await scrape(), name, **labels) > above:
                return time.monotonic()
        await asyncio.sleep(0.25)
    return None
