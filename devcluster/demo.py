"""``workload-scheduler demo``: the whole path on one screen.

Starts the dev cluster (unless ``--kubeconfig`` names one), creates a few
nodes, runs the scheduler in this process, submits ``examples/basic`` and
prints where every pod landed or why it could not.
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

from devcluster.nodes import node_manifest
from scheduler.api.client import MERGE_PATCH, ApiClient, ApiError
from scheduler.api.connection import load_connection
from scheduler.app import App
from scheduler.config import Settings
from scheduler.model.objects import Pod

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "basic"
COLLECTIONS = {
    "Pod": "/api/v1/namespaces/{ns}/pods",
    "Workload": "/apis/scheduling.k8s.io/v1alpha1/namespaces/{ns}/workloads",
}
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
        for node in DEMO_NODES:
            await ensure_node(client, node)
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
        stop.set()
        await runner
    print()
    print(f"{'POD':<16} {'NODE':<10} WHY")
    for pod in pods:
        where = pod.spec.node_name or "-"
        why = ""
        for cond in pod.status.conditions:
            if cond.type == "PodScheduled" and cond.status == "False":
                why = cond.message
        print(f"{pod.metadata.name:<16} {where:<10} {why}")
    return 0


async def ensure_node(client: ApiClient, manifest: dict[str, Any]) -> None:
    name = manifest["metadata"]["name"]
    with contextlib.suppress(ApiError):
        await client.post("/api/v1/nodes", manifest)
    await client.patch(f"/api/v1/nodes/{name}/status", {"status": manifest["status"]}, MERGE_PATCH)


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
