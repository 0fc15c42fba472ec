"""Fixtures for end-to-end tests against a real kube-apiserver + etcd on 127.0.0.1, with
kube-controller-manager (Jobs, namespaces, PodGC, ...) and kwok, which plays the kubelet of
the nodes ``node_factory`` makes (they become Ready, the pods bound to them Running).

The control plane is started once per test run (the first run builds it from source, which
takes long; later runs start in seconds).  To run against one that is already up, e.g. the
demo's, point ``WORKLOAD_SCHEDULER_KUBECONFIG`` at its kubeconfig; it is then left running.
"""

from __future__ import annotations

import json
import os
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from devcluster import ClusterInfo, ControlPlane, load_cluster_info
from devcluster.nodes import node_manifest
from tests.e2e.gang_modes import GangMode
from tests.e2e.scheduler_process import SchedulerProcess

KUBECONFIG_ENV = "WORKLOAD_SCHEDULER_KUBECONFIG"
NodeFactory = Callable[..., client.V1Node]
KubeRequest = Callable[..., dict[str, Any]]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test under tests/e2e as ``e2e`` (deselect them with ``-m 'not e2e'``)."""
    here = Path(__file__).parent
    for item in items:
        if here in item.path.parents:
            item.add_marker(pytest.mark.e2e)


def _progress(message: str) -> None:
    # Straight to the terminal: pytest captures stdout, and a cold build is silent for long.
    print(f"[devcluster] {message}", file=sys.__stderr__, flush=True)


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterInfo | None]:
    """The running control plane; None when an external kubeconfig without devcluster state
    (``state.json`` next to it) is used via ``WORKLOAD_SCHEDULER_KUBECONFIG``."""
    external = os.environ.get(KUBECONFIG_ENV)
    if external:
        yield load_cluster_info(Path(external).resolve().parent)
        return
    state_dir = tmp_path_factory.mktemp("controlplane")
    plane = ControlPlane(progress=_progress)
    # The real kube-scheduler runs beside ours: tests compare the two.
    info = plane.up(state_dir, with_kube_scheduler=True)
    try:
        install_crds(str(info.kubeconfig))
        yield info
    finally:
        plane.down(state_dir)


@pytest.fixture(scope="session")
def kubeconfig(control_plane: ClusterInfo | None) -> str:
    """Path of an admin kubeconfig for the cluster under test."""
    external = os.environ.get(KUBECONFIG_ENV)
    if external:
        return external
    assert control_plane is not None
    return str(control_plane.kubeconfig)


@pytest.fixture(scope="session")
def api_client(kubeconfig: str) -> Iterator[client.ApiClient]:
    """The official (sync) client, as admin."""
    api: client.ApiClient = config.new_client_from_config(  # type: ignore[no-untyped-call]
        config_file=kubeconfig
    )
    try:
        yield api
    finally:
        api.close()  # type: ignore[no-untyped-call]


@pytest.fixture(scope="session")
def core_api(api_client: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(api_client)


@pytest.fixture(scope="session")
def kube_request(api_client: client.ApiClient) -> KubeRequest:
    """``kube_request(method, path, body=None) -> dict``: a raw JSON call as admin.

    For fields the client's models do not know: they are validated (pydantic) and reject
    unknown fields on input and drop them on output, e.g. ``spec.workloadRef`` of v1.35 pods.
    Non-2xx responses raise ``ApiException`` like the typed calls.
    """

    return _raw_request(api_client)


def _raw_request(api_client: client.ApiClient) -> KubeRequest:
    def request(method: str, path: str, body: Any = None) -> dict[str, Any]:
        headers = {"Accept": "application/json", "Content-Type": "application/json"}
        serialized = api_client.param_serialize(
            method.upper(), path, header_params=headers, body=body, auth_settings=["BearerToken"]
        )
        response = api_client.call_api(*serialized)
        data = response.read()  # type: ignore[no-untyped-call]
        if not 200 <= response.status <= 299:
            raise ApiException(http_resp=response)
        result: dict[str, Any] = json.loads(data) if data else {}
        return result

    return request


@pytest.fixture
def namespace(core_api: client.CoreV1Api) -> Iterator[str]:
    """A fresh namespace per test.  Deleted afterwards without waiting (kube-controller-
    manager's namespace controller finishes the deletion in the background)."""
    name = new_namespace(core_api)
    yield name
    delete_namespace(core_api, name)


def new_namespace(core_api: client.CoreV1Api) -> str:
    name = f"e2e-{uuid.uuid4().hex[:8]}"
    core_api.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    return name


def delete_namespace(core_api: client.CoreV1Api, name: str) -> None:
    # Force-deleted at once: the namespace controller would delete them with their grace
    # period, and pods on nodes kwok does not manage would hold node capacity until PodGC.
    core_api.delete_collection_namespaced_pod(name, grace_period_seconds=0)
    _ignore_not_found(core_api.delete_namespace, name)


@pytest.fixture
def node_factory(core_api: client.CoreV1Api) -> Iterator[NodeFactory]:
    """Create Nodes with allocatable resources; every one is deleted after the test.

    Takes the keyword arguments of :func:`devcluster.nodes.node_manifest` (cpu,
    memory, pods, extra, labels, taints, unschedulable); the name defaults to a unique one.
    """
    created: list[str] = []

    def make(name: str | None = None, **kwargs: Any) -> client.V1Node:
        node_name = name or f"node-{uuid.uuid4().hex[:8]}"
        node = _create_node(core_api, node_manifest(node_name, **kwargs))
        created.append(node_name)
        return node

    yield make
    for name in created:
        _ignore_not_found(core_api.delete_node, name)


def _create_node(core_api: client.CoreV1Api, manifest: dict[str, Any]) -> client.V1Node:
    # One call, status included, as a kubelet registers its Node (the API keeps a Node's
    # status on create): kwok takes the node over as soon as it sees status.allocatable,
    # and a second status write would race with it.
    node = client.V1Node.from_dict(manifest)
    assert node is not None
    return core_api.create_node(node)


def _ignore_not_found(delete: Callable[[str], object], name: str) -> None:
    try:
        delete(name)
    except ApiException as error:
        if error.status != 404:
            raise


# -- our scheduler, the CRD, and the gang modes -------------------------------------------

REPO = Path(__file__).resolve().parents[2]


def install_crds(kubeconfig: str) -> None:
    """Apply deploy/crds and wait until the API server serves them."""
    import time

    import yaml

    api: client.ApiClient = config.new_client_from_config(  # type: ignore[no-untyped-call]
        config_file=kubeconfig
    )
    ext = client.ApiextensionsV1Api(api)
    names = []
    for path in sorted((REPO / "deploy" / "crds").glob("*.yaml")):
        manifest = yaml.safe_load(path.read_text())
        try:
            ext.create_custom_resource_definition(manifest)
        except ApiException as exc:
            if exc.status != 409:
                raise
        names.append(manifest["metadata"]["name"])
    deadline = time.monotonic() + 30
    for name in names:
        while True:
            crd = ext.read_custom_resource_definition(name)
            conditions = (crd.status.conditions or []) if crd.status else []
            if any(c.type == "Established" and c.status == "True" for c in conditions):
                break
            if time.monotonic() > deadline:
                raise AssertionError(f"CRD {name} not established")
            time.sleep(0.2)
    api.close()  # type: ignore[no-untyped-call]


@pytest.fixture(scope="session")
def scheduler_logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("scheduler-logs")


@pytest.fixture(scope="session")
def workload_scheduler(kubeconfig: str, scheduler_logs: Path) -> Iterator[SchedulerProcess]:
    """Our scheduler, run as users run it (``workload-scheduler run``), for the whole session."""
    proc = SchedulerProcess(kubeconfig, scheduler_logs).start()
    try:
        yield proc
    finally:
        proc.stop()
        print(f"\nscheduler log: {proc.log_path}", file=sys.__stderr__)


@dataclass
class ClusterEnv:
    """One control plane with our scheduler on it, as the gang tests need it."""

    kubeconfig: str
    core: client.CoreV1Api
    request: KubeRequest
    scheduler: SchedulerProcess
    podgroup_version: str = ""


@pytest.fixture(scope="session")
def cluster_135(
    kubeconfig: str,
    core_api: client.CoreV1Api,
    kube_request: KubeRequest,
    workload_scheduler: SchedulerProcess,
) -> ClusterEnv:
    return ClusterEnv(kubeconfig, core_api, kube_request, workload_scheduler)


@pytest.fixture(scope="session")
def cluster_137(
    tmp_path_factory: pytest.TempPathFactory, scheduler_logs: Path
) -> Iterator[ClusterEnv]:
    """A Kubernetes 1.37 control plane (the PodGroup API) with our scheduler on it."""
    state_dir = tmp_path_factory.mktemp("controlplane-137")
    plane = ControlPlane(progress=_progress)
    info = plane.up(state_dir, "1.37")
    api: client.ApiClient = config.new_client_from_config(  # type: ignore[no-untyped-call]
        config_file=str(info.kubeconfig)
    )
    proc = SchedulerProcess(str(info.kubeconfig), scheduler_logs, name="workload-scheduler")
    try:
        proc.start()
        core = client.CoreV1Api(api)
        request = _raw_request(api)
        groups = request("GET", "/apis/scheduling.k8s.io")
        versions = [v["version"] for v in groups["versions"]]
        version = next(v for v in ("v1beta1", "v1alpha3", "v1alpha2") if v in versions)
        yield ClusterEnv(str(info.kubeconfig), core, request, proc, podgroup_version=version)
    finally:
        proc.stop()
        api.close()  # type: ignore[no-untyped-call]
        plane.down(state_dir)


@dataclass
class GangEnv:
    mode: GangMode
    ns: str
    cluster: ClusterEnv
    nodes: list[str]

    @property
    def core(self) -> client.CoreV1Api:
        return self.cluster.core

    @property
    def kubeconfig(self) -> str:
        return self.cluster.kubeconfig

    @property
    def scheduler(self) -> SchedulerProcess:
        return self.cluster.scheduler

    @property
    def scheduler_name(self) -> str:
        return self.cluster.scheduler.name

    def node(self, name: str, **kwargs: Any) -> client.V1Node:
        node = _create_node(self.core, node_manifest(name, **kwargs))
        self.nodes.append(name)
        return node


@pytest.fixture(params=["v1alpha1", "v1beta1", "crd"])
def gang(request: pytest.FixtureRequest) -> Iterator[GangEnv]:
    """Each gang test once per API mode, on the control plane that serves that mode."""
    mode_name = request.param
    cluster: ClusterEnv = request.getfixturevalue(
        "cluster_137" if mode_name == "v1beta1" else "cluster_135"
    )
    mode = GangMode(mode_name, cluster.request, cluster.podgroup_version or "v1beta1")
    env = GangEnv(mode, new_namespace(cluster.core), cluster, [])
    try:
        yield env
    finally:
        delete_namespace(cluster.core, env.ns)
        for name in env.nodes:
            _ignore_not_found(cluster.core.delete_node, name)
