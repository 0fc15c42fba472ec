"""``workload-scheduler demo``: the whole path on one screen.

Starts the dev cluster (unless ``--kubeconfig`` names one), creates a few
simulated (kwok) nodes, runs the scheduler in this process, submits
``examples/basic`` and prints where every pod landed or why it could not.  Then it
runs ``examples/gang-crd``, a real Indexed Job of 4 whose pods form one gang of our
Workload CRD: the Job controller creates the pods, the scheduler binds all four
at once, kwok runs them and completes them, and the Job reports Complete.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from pathlib import Path
from typing import Any

import msgspec
import orjson
import yaml

from devcluster.kwok import COMPLETE_AFTER
from devcluster.nodes import create_nodes, node_manifest
from scheduler.api.client import ApiClient, ApiError
from scheduler.api.connection import load_connection
from scheduler.app import App
from scheduler.config import Settings
from scheduler.model.objects import Pod

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples" / "basic"
JOB_EXAMPLE = REPO / "examples" / "gang-crd"
CRDS = REPO / "deploy" / "crds"
COLLECTIONS = {
    "Pod": "/api/v1/namespaces/{ns}/pods",
    "Workload": "/apis/scheduling.k8s.io/v1alpha1/namespaces/{ns}/workloads",
}
JOB_COLLECTIONS = {
    "Job": "/apis/batch/v1/namespaces/{ns}/jobs",
    "Workload": "/apis/workload-scheduler.io/v1alpha1/namespaces/{ns}/workloads",
}
JOB_RUNS_FOR = "5s"
"""How long kwok lets each of the Job's pods run before it succeeds."""
DEMO_NODES = [
    node_manifest(
        "node-a1", cpu="4", memory="16Gi", labels={"topology.kubernetes.io/zone": "zone-a"}
    ),
    node_manifest(
        "node-a2", cpu="4", memory="16Gi", labels={"topology.kubernetes.io/zone": "zone-a"}
    ),
    node_manifest(
        "node-b1", cpu="8", memory="32Gi", labels={"topology.kubernetes.io/zone": "zone-b"}
    ),
    node_manifest(
        "gpu-b2",
        cpu="16",
        memory="64Gi",
        extra={"nvidia.com/gpu": "4"},
        labels={"topology.kubernetes.io/zone": "zone-b"},
        taints=[{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}],
    ),
]


def run_demo(*, kubeconfig: str | None, state_dir: Path, keep: bool) -> int:
    started_cluster = False
    if kubeconfig is None:
        from devcluster.controlplane import up

        print(f"starting the dev cluster in {state_dir} (the first run builds it from source)")
        info = up(state_dir, progress=print)
        kubeconfig = str(info.kubeconfig)
        started_cluster = True
    try:
        return asyncio.run(_demo(kubeconfig))
    finally:
        if started_cluster and not keep:
            from devcluster.controlplane import down

            down(state_dir)
            print("dev cluster stopped (use --keep to leave it running)")


async def _demo(kubeconfig: str) -> int:
    from scheduler import logs

    logs.configure("console", "warning")
    connection = load_connection(kubeconfig)
    settings = Settings(
        kubeconfig=kubeconfig, metrics_bind_address="127.0.0.1:0", health_bind_address="127.0.0.1:0"
    )
    namespace = f"demo-{uuid.uuid4().hex[:6]}"
    async with ApiClient(connection) as client:
        await client.post("/api/v1/namespaces", {"metadata": {"name": namespace}})
        await create_nodes(client, DEMO_NODES)
        # Before the scheduler starts: it looks up which gang APIs are served once.
        await install_crds(client)
        app = App(settings, connection)
        stop = asyncio.Event()
        runner = asyncio.create_task(app.run(until=stop, serve_http=False))
        names = []
        for path in (EXAMPLES / "pods.yaml", EXAMPLES / "gangs.yaml"):
            for doc in yaml.safe_load_all(path.read_text()):
                if not doc or doc.get("kind") not in COLLECTIONS:
                    continue
                collection = COLLECTIONS[doc["kind"]].format(ns=namespace)
                await client.post(collection, doc)
                if doc["kind"] == "Pod":
                    names.append(doc["metadata"]["name"])
        print(f"submitted {len(names)} pods to namespace {namespace}; scheduling...")
        pods = await wait_settled(client, namespace, names, timeout=30)
        print()
        print(f"{'POD':<16} {'NODE':<10} WHY")
        for pod in pods:
            where = pod.spec.node_name or "-"
            why = ""
            for cond in pod.status.conditions:
                if cond.type == "PodScheduled" and cond.status == "False":
                    why = cond.message
            print(f"{pod.metadata.name:<16} {where:<10} {why}")
        try:
            ok = await run_indexed_job(client, f"{namespace}-job")
        finally:
            stop.set()
            await runner
    return 0 if ok else 1


async def install_crds(client: ApiClient, timeout: float = 30.0) -> None:
    """Create deploy/crds (if missing) and wait until each is Established."""
    names = []
    for path in sorted(CRDS.glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        with contextlib.suppress(ApiError):  # already installed
            await client.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)
        names.append(crd["metadata"]["name"])
    deadline = time.monotonic() + timeout
    for name in names:
        url = f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}"
        while "Established" not in _true_conditions(orjson.loads(await client.get(url))):
            if time.monotonic() > deadline:
                raise RuntimeError(f"CRD {name} not Established after {timeout:.0f}s")
            await asyncio.sleep(0.2)


async def run_indexed_job(client: ApiClient, namespace: str, timeout: float = 90.0) -> bool:
    """Submit examples/gang-crd (its pods kwok-completed after :data:`JOB_RUNS_FOR`), show
    its pods Running and the Job completing; False if that does not happen in time."""
    await client.post("/api/v1/namespaces", {"metadata": {"name": namespace}})
    job_name = ""
    for path in sorted(JOB_EXAMPLE.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc["kind"] == "Job":
                job_name = doc["metadata"]["name"]
                template = doc["spec"]["template"]["metadata"]
                template.setdefault("annotations", {})[COMPLETE_AFTER] = JOB_RUNS_FOR
            await client.post(JOB_COLLECTIONS[doc["kind"]].format(ns=namespace), doc)
    print()
    print(
        f"submitted Job {job_name} ({JOB_EXAMPLE.relative_to(REPO)}: Indexed, 4 pods, one "
        f"gang) to namespace {namespace}; kwok completes each pod {JOB_RUNS_FOR} after it runs"
    )
    started = time.monotonic()
    deadline = started + timeout
    shown_running = False
    job: dict[str, Any] = {}
    while time.monotonic() < deadline:
        pods = orjson.loads(await client.get(f"/api/v1/namespaces/{namespace}/pods"))["items"]
        running = [p for p in pods if p.get("status", {}).get("phase") == "Running"]
        if not shown_running and len(running) == 4:
            shown_running = True
            print(f"{'POD':<22} {'INDEX':<6} {'NODE':<10} PHASE")
            for pod in sorted(running, key=_completion_index):
                index = _completion_index(pod)
                node = pod["spec"].get("nodeName", "-")
                print(f"{pod['metadata']['name']:<22} {index:<6} {node:<10} Running")
        job = orjson.loads(
            await client.get(f"/apis/batch/v1/namespaces/{namespace}/jobs/{job_name}")
        )
        done = {
            c["type"] for c in job.get("status", {}).get("conditions", []) if c["status"] == "True"
        }
        if "Complete" in done or "Failed" in done:
            break
        await asyncio.sleep(0.5)
    status = job.get("status", {})
    elapsed = time.monotonic() - started
    if "Complete" in _true_conditions(job):
        print(
            f"Job {job_name}: Complete, {status.get('succeeded', 0)}/4 succeeded "
            f"(indexes {status.get('completedIndexes', '-')}) in {elapsed:.0f}s"
        )
        return True
    print(f"Job {job_name}: not complete after {elapsed:.0f}s; status: {status}")
    return False


def _true_conditions(obj: dict[str, Any]) -> set[str]:
    conditions = (obj.get("status") or {}).get("conditions") or []  # null on a new object
    return {c["type"] for c in conditions if c["status"] == "True"}


def _completion_index(pod: dict[str, Any]) -> str:
    annotations = pod["metadata"].get("annotations", {})
    return str(annotations.get("batch.kubernetes.io/job-completion-index", "?"))


async def wait_settled(
    client: ApiClient, namespace: str, names: list[str], timeout: float
) -> list[Pod]:
    """Until every pod is bound or has been told why not."""
    deadline = time.monotonic() + timeout
    while True:
        body = await client.get(f"/api/v1/namespaces/{namespace}/pods")
        pods = [msgspec.convert(item, Pod) for item in orjson.loads(body)["items"]]
        by_name = {p.metadata.name: p for p in pods}
        settled = [
            n
            for n in names
            if n in by_name
            and (
                by_name[n].spec.node_name
                or any(
                    c.type == "PodScheduled" and c.status == "False"
                    for c in by_name[n].status.conditions
                )
            )
        ]
        if len(settled) == len(names) or time.monotonic() > deadline:
            return [by_name[n] for n in names if n in by_name]
        await asyncio.sleep(0.5)
