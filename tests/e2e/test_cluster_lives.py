"""The dev cluster lives: kube-controller-manager runs its controllers, and kwok plays the
kubelet for annotated nodes (pods run, finish, honour their grace period).

Each test puts its pods on its own nodes (a unique label and nodeSelector), because the
session's scheduler places pods of every test.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from devcluster import ClusterInfo, get_release
from devcluster.kwok import COMPLETE_AFTER, EXIT_CODE, FAIL_AFTER, NODE_LEASE_SECONDS
from scheduler.cli.main import main as cli_main
from tests.e2e.conftest import KubeRequest, NodeFactory
from tests.e2e.gang_modes import GangMode
from tests.e2e.k8s import SCHEDULER, job_manifest, pod_manifest, wait_until
from tests.e2e.scheduler_process import SchedulerProcess

POOL = "e2e.workload-scheduler.io/pool"


def _pool() -> dict[str, str]:
    return {POOL: uuid.uuid4().hex[:8]}


def _phase(kube_request: KubeRequest, ns: str, name: str) -> str:
    try:
        pod = kube_request("GET", f"/api/v1/namespaces/{ns}/pods/{name}")
    except ApiException as exc:
        if exc.status == 404:
            return "Gone"
        raise
    return str(pod.get("status", {}).get("phase", ""))


def _job_conditions(kube_request: KubeRequest, ns: str, name: str) -> set[str]:
    job = kube_request("GET", f"/apis/batch/v1/namespaces/{ns}/jobs/{name}")
    conditions = job.get("status", {}).get("conditions", [])
    return {c["type"] for c in conditions if c["status"] == "True"}


# -- kube-controller-manager -------------------------------------------------------------


def test_controller_manager_runs_with_the_release_gates(control_plane: ClusterInfo | None) -> None:
    if control_plane is None:
        pytest.skip("external cluster: its controller manager is not ours to inspect")
    assert control_plane.with_controller_manager and control_plane.with_kwok
    proc = control_plane.processes["kube-controller-manager"]
    args = Path(f"/proc/{proc.pid}/cmdline").read_bytes().decode().split("\0")
    release = get_release(control_plane.release)
    assert f"--feature-gates={release.feature_gates_flag()}" in args
    assert "--use-service-account-credentials=true" in args


def test_indexed_job_runs_as_one_gang_and_completes(
    kube_request: KubeRequest,
    namespace: str,
    node_factory: NodeFactory,
    workload_scheduler: SchedulerProcess,
) -> None:
    """The Job controller creates the pods, our scheduler binds them as one gang of our
    Workload CRD, kwok runs them and completes them, and the Job is Complete."""
    pool = _pool()
    for _ in range(2):
        node_factory(cpu="2", memory="4Gi", labels=pool)
    crd = GangMode("crd", kube_request)
    crd.create_workload(namespace, "train", {"workers": 4})
    member = crd.member("unused", "train", "workers", cpu="500m", node_selector=pool)
    member["metadata"]["annotations"][COMPLETE_AFTER] = "2s"
    job = job_manifest("train", member, completions=4)
    kube_request("POST", f"/apis/batch/v1/namespaces/{namespace}/jobs", job)

    def all_running() -> list[dict[str, Any]]:
        items = kube_request("GET", f"/api/v1/namespaces/{namespace}/pods")["items"]
        running = [p for p in items if p.get("status", {}).get("phase") == "Running"]
        return running if len(running) == 4 else []

    pods = wait_until(all_running, timeout=60, what="the 4 pods Running")
    assert {p["spec"]["schedulerName"] for p in pods} == {SCHEDULER}
    assert all(p["status"].get("podIP") for p in pods)
    wait_until(
        lambda: "Complete" in _job_conditions(kube_request, namespace, "train"),
        timeout=60,
        what="the Job to complete",
    )
    job = kube_request("GET", f"/apis/batch/v1/namespaces/{namespace}/jobs/train")
    assert job["status"]["succeeded"] == 4
    assert job["status"]["completedIndexes"] == "0-3"


def test_namespace_deletion_completes(
    core_api: client.CoreV1Api, kube_request: KubeRequest
) -> None:
    """The namespace controller empties and removes a namespace; the serviceaccount and
    root-CA controllers have filled it first."""
    name = f"e2e-gone-{uuid.uuid4().hex[:6]}"
    core_api.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    wait_until(
        lambda: _exists(lambda: core_api.read_namespaced_service_account("default", name)),
        timeout=30,
        what="the default ServiceAccount",
    )
    wait_until(
        lambda: _exists(lambda: core_api.read_namespaced_config_map("kube-root-ca.crt", name)),
        timeout=30,
        what="kube-root-ca.crt",
    )
    core_api.create_namespaced_config_map(
        name, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="data"), data={"k": "v"})
    )
    core_api.delete_namespace(name)
    wait_until(
        lambda: not _exists(lambda: core_api.read_namespace(name)),
        timeout=60,
        what=f"namespace {name} to be removed",
    )


def test_tokens_controller_fills_service_account_token_secrets(
    core_api: client.CoreV1Api, namespace: str
) -> None:
    account = client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="robot"))
    core_api.create_namespaced_service_account(namespace, account)
    secret = client.V1Secret(
        metadata=client.V1ObjectMeta(
            name="robot-token", annotations={"kubernetes.io/service-account.name": "robot"}
        ),
        type="kubernetes.io/service-account-token",
    )
    core_api.create_namespaced_secret(namespace, secret)

    def filled() -> bool:
        data = core_api.read_namespaced_secret("robot-token", namespace).data or {}
        return {"token", "ca.crt"} <= set(data)

    wait_until(filled, timeout=30, what="the token controller to fill the Secret")


# -- kwok ----------------------------------------------------------------------------------


def test_kwok_keeps_nodes_ready_with_a_lease(
    core_api: client.CoreV1Api, node_factory: NodeFactory
) -> None:
    made = node_factory(cpu="8", memory="32Gi", extra={"nvidia.com/gpu": "1"}, labels=_pool())
    assert made.metadata is not None and made.metadata.name is not None
    name = made.metadata.name

    def taken_over() -> client.V1Node | None:
        node = core_api.read_node(name)
        return node if node.status is not None and node.status.phase == "Running" else None

    node = wait_until(taken_over, timeout=30, what="kwok to initialise the node")
    assert node is not None and node.status is not None
    ready = [c for c in node.status.conditions or [] if c.type == "Ready"]
    assert ready and ready[0].status == "True" and ready[0].reason == "KubeletReady"
    # The shape written by node_manifest is kept, not replaced by kwok's defaults.
    assert node.status.allocatable == {
        "cpu": "8",
        "memory": "32Gi",
        "pods": "110",
        "nvidia.com/gpu": "1",
    }
    assert node.status.node_info is not None
    assert node.status.node_info.kubelet_version.startswith("kwok-")
    leases = client.CoordinationV1Api(core_api.api_client)
    lease = wait_until(
        lambda: _exists(lambda: leases.read_namespaced_lease(name, "kube-node-lease")),
        timeout=30,
        what="the node Lease",
    )
    assert lease.spec.lease_duration_seconds == NODE_LEASE_SECONDS
    first = lease.spec.renew_time
    # The heartbeat: renewed every quarter of its duration, as a kubelet does.
    wait_until(
        lambda: leases.read_namespaced_lease(name, "kube-node-lease").spec.renew_time != first,
        timeout=NODE_LEASE_SECONDS,
        what="the node Lease to be renewed",
    )


def test_kwok_runs_bound_pods_and_finishes_them_on_request(
    kube_request: KubeRequest, namespace: str, node_factory: NodeFactory
) -> None:
    pool = _pool()
    node_factory(labels=pool)
    pods = {
        "runs": {},
        "succeeds": {COMPLETE_AFTER: "1s"},
        "fails": {FAIL_AFTER: "1s", EXIT_CODE: "3"},
    }
    for name, extra in pods.items():
        manifest = pod_manifest(name, node_selector=pool, annotations=extra)
        manifest["spec"]["restartPolicy"] = "Never"
        kube_request("POST", f"/api/v1/namespaces/{namespace}/pods", manifest)

    wanted = {"runs": "Running", "succeeds": "Succeeded", "fails": "Failed"}
    wait_until(
        lambda: {n: _phase(kube_request, namespace, n) for n in wanted} == wanted,
        timeout=60,
        what=f"phases {wanted}",
    )
    failed = kube_request("GET", f"/api/v1/namespaces/{namespace}/pods/fails")
    terminated = failed["status"]["containerStatuses"][0]["state"]["terminated"]
    assert terminated["exitCode"] == 3


def test_kwok_honours_the_deletion_grace_period(
    kube_request: KubeRequest, namespace: str, node_factory: NodeFactory
) -> None:
    pool = _pool()
    node_factory(labels=pool)
    manifest = pod_manifest("graceful", node_selector=pool)
    manifest["spec"]["terminationGracePeriodSeconds"] = 8
    kube_request("POST", f"/api/v1/namespaces/{namespace}/pods", manifest)
    wait_until(
        lambda: _phase(kube_request, namespace, "graceful") == "Running",
        timeout=30,
        what="Running",
    )
    kube_request("DELETE", f"/api/v1/namespaces/{namespace}/pods/graceful")
    # Within its grace period the pod is still there, terminating but running.
    pod = kube_request("GET", f"/api/v1/namespaces/{namespace}/pods/graceful")
    assert pod["metadata"].get("deletionTimestamp")
    assert pod["status"]["phase"] == "Running"
    wait_until(
        lambda: _phase(kube_request, namespace, "graceful") == "Gone",
        timeout=40,
        what="the pod to be removed after its grace period",
    )


def test_podgc_removes_pods_of_a_deleted_node(
    core_api: client.CoreV1Api,
    kube_request: KubeRequest,
    namespace: str,
    node_factory: NodeFactory,
) -> None:
    """A pod bound to a node that is deleted is removed by PodGC (after its 40 s
    quarantine), as on a real cluster: the repair path for a lost gang member."""
    pool = _pool()
    node = node_factory(labels=pool)
    assert node.metadata is not None and node.metadata.name is not None
    kube_request(
        "POST",
        f"/api/v1/namespaces/{namespace}/pods",
        pod_manifest("orphan", node_selector=pool),
    )
    wait_until(
        lambda: _phase(kube_request, namespace, "orphan") == "Running",
        timeout=30,
        what="Running",
    )
    core_api.delete_node(node.metadata.name)
    wait_until(
        lambda: _phase(kube_request, namespace, "orphan") == "Gone",
        timeout=120,
        what="PodGC to remove the pod of the deleted node",
    )


# -- dev-cluster nodes add -----------------------------------------------------------------


def test_nodes_add_makes_ready_nodes_of_the_shape(
    core_api: client.CoreV1Api, kubeconfig: str
) -> None:
    prefix = f"shape-{uuid.uuid4().hex[:6]}"
    zone = "topology.kubernetes.io/zone=a"
    args = ["dev-cluster", "nodes", "add", "--count", "3", "--cpu", "8", "--memory", "32Gi"]
    args += ["--gpus", "1", "--label", zone, "--taint", "nvidia.com/gpu=present:NoSchedule"]
    args += ["--name-prefix", prefix, "--kubeconfig", kubeconfig]
    assert cli_main(args) == 0
    names = [f"{prefix}-{i:03d}" for i in (1, 2, 3)]
    try:
        for name in names:
            node = core_api.read_node(name)
            assert node.status is not None and node.spec is not None and node.metadata is not None
            assert node.status.phase == "Running"  # kwok took it over
            assert node.status.allocatable == {
                "cpu": "8",
                "memory": "32Gi",
                "pods": "110",
                "nvidia.com/gpu": "1",
            }
            assert (node.metadata.labels or {})["topology.kubernetes.io/zone"] == "a"
            taints = [(t.key, t.value, t.effect) for t in node.spec.taints or []]
            assert taints == [("nvidia.com/gpu", "present", "NoSchedule")]
        # A second call continues the numbering.
        assert cli_main([*args[:4], "1", *args[5:]]) == 0
        names.append(f"{prefix}-004")
        assert core_api.read_node(names[-1]).metadata is not None
    finally:
        assert cli_main(["dev-cluster", "nodes", "delete", *names, "--kubeconfig", kubeconfig]) == 0
    assert not any(_exists(lambda n=n: core_api.read_node(n)) for n in names)


def _exists(read: Any) -> Any:
    try:
        return read()
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
