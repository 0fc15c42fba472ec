"""The dev control plane is the real thing: the pinned version, with the alpha Workload API
served and the gates on that make pods keep their workload reference."""

from __future__ import annotations

import ssl
import urllib.request
from collections.abc import Callable
from typing import Any, cast

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from devcluster import ClusterInfo, get_release

GROUP, VERSION = "scheduling.k8s.io", "v1alpha1"


def test_apiserver_reports_pinned_version(api_client: client.ApiClient) -> None:
    version = client.VersionApi(api_client).get_code()
    assert version.git_version == get_release().kubernetes == "v1.35.4"


def test_workload_api_is_served(api_client: client.ApiClient, namespace: str) -> None:
    objects = client.CustomObjectsApi(api_client)
    workload = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Workload",
        "metadata": {"name": "training"},
        "spec": {"podGroups": [{"name": "workers", "policy": {"gang": {"minCount": 4}}}]},
    }
    objects.create_namespaced_custom_object(GROUP, VERSION, namespace, "workloads", workload)

    stored = cast(
        dict[str, Any],
        objects.get_namespaced_custom_object(GROUP, VERSION, namespace, "workloads", "training"),
    )
    assert stored["spec"]["podGroups"] == [{"name": "workers", "policy": {"gang": {"minCount": 4}}}]


def test_node_factory_sets_allocatable(
    core_api: client.CoreV1Api, node_factory: Callable[..., client.V1Node]
) -> None:
    made = node_factory(
        cpu="8",
        memory="32Gi",
        pods=20,
        extra={"nvidia.com/gpu": "2"},
        labels={"topology.kubernetes.io/zone": "zone-a"},
        taints=[{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}],
    )

    assert made.metadata is not None and made.metadata.name is not None
    node = core_api.read_node(made.metadata.name)
    assert node.status is not None and node.spec is not None and node.metadata is not None
    expected = {"cpu": "8", "memory": "32Gi", "pods": "20", "nvidia.com/gpu": "2"}
    assert node.status.allocatable == expected
    assert node.status.capacity == expected
    assert (node.metadata.labels or {})["topology.kubernetes.io/zone"] == "zone-a"
    # Exactly the requested taint: the not-ready taint admission would add is disabled.
    taints = [(t.key, t.effect) for t in node.spec.taints or []]
    assert taints == [("nvidia.com/gpu", "NoSchedule")]


def test_pod_keeps_workload_reference(
    kube_request: Callable[..., dict[str, Any]], namespace: str
) -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "worker-0"},
        "spec": {
            "schedulerName": "workload-scheduler",
            "workloadRef": {"name": "training", "podGroup": "workers"},
            "containers": [{"name": "main", "image": "registry.k8s.io/pause:3.10"}],
        },
    }
    path = f"/api/v1/namespaces/{namespace}/pods"
    kube_request("POST", path, pod)

    stored = kube_request("GET", f"{path}/worker-0")
    # With GenericWorkload off the apiserver silently drops the field.
    assert stored["spec"]["workloadRef"] == {"name": "training", "podGroup": "workers"}


def test_rbac_refuses_unauthenticated_requests(control_plane: ClusterInfo | None) -> None:
    if control_plane is None:
        pytest.skip("needs the devcluster's CA (external kubeconfig in use)")
    anonymous = client.Configuration()
    anonymous.host = control_plane.server
    anonymous.ssl_ca_cert = str(control_plane.ca_file)
    with client.ApiClient(anonymous) as api, pytest.raises(ApiException) as refused:
        client.CoreV1Api(api).list_namespace()
    assert refused.value.status == 403  # system:anonymous is authenticated, not authorized


def test_readyz_needs_only_the_ca(control_plane: ClusterInfo | None) -> None:
    if control_plane is None:
        pytest.skip("needs the devcluster's CA (external kubeconfig in use)")
    context = ssl.create_default_context(cafile=str(control_plane.ca_file))
    with urllib.request.urlopen(control_plane.server + "/readyz", context=context) as response:
        assert response.read() == b"ok"


def test_service_account_token_is_subject_to_rbac(
    control_plane: ClusterInfo | None, core_api: client.CoreV1Api, namespace: str
) -> None:
    if control_plane is None:
        pytest.skip("needs the devcluster's CA (external kubeconfig in use)")
    account = client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="robot"))
    core_api.create_namespaced_service_account(namespace, account)
    request = client.AuthenticationV1TokenRequest(
        spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=600)
    )
    token = core_api.create_namespaced_service_account_token("robot", namespace, request)
    assert token.status is not None and token.status.token

    as_robot = client.Configuration()
    as_robot.host = control_plane.server
    as_robot.ssl_ca_cert = str(control_plane.ca_file)
    as_robot.api_key = {"BearerToken": token.status.token}
    as_robot.api_key_prefix = {"BearerToken": "Bearer"}
    with client.ApiClient(as_robot) as api, pytest.raises(ApiException) as refused:
        client.CoreV1Api(api).list_namespaced_pod(namespace)
    assert refused.value.status == 403
    assert f"system:serviceaccount:{namespace}:robot" in str(refused.value.body)
