"""``kubectl get workloads.workload-scheduler.io`` on the real API server: the CRD's printer
columns, as the server renders them into a ``meta.k8s.io/v1`` Table (what kubectl prints),
filled in for a gang that was scheduled and one that cannot be."""

from __future__ import annotations

import json
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.e2e.conftest import NodeFactory
from tests.e2e.gang_modes import GangMode
from tests.e2e.k8s import wait_until
from tests.e2e.scheduler_process import SchedulerProcess

TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io"
WORKLOADS = "/apis/workload-scheduler.io/v1alpha1/namespaces/{ns}/workloads"


def get_table(api_client: client.ApiClient, path: str) -> dict[str, Any]:
    """GET ``path`` as kubectl does for ``kubectl get`` (server-side printing)."""
    serialized = api_client.param_serialize(
        "GET", path, header_params={"Accept": TABLE}, auth_settings=["BearerToken"]
    )
    response = api_client.call_api(*serialized)
    data = response.read()  # type: ignore[no-untyped-call]
    if not 200 <= response.status <= 299:
        raise ApiException(http_resp=response)
    table: dict[str, Any] = json.loads(data)
    return table


def test_kubectl_get_shows_groups_min_count_scheduled_and_reason(
    api_client: client.ApiClient,
    kube_request: Any,
    namespace: str,
    node_factory: NodeFactory,
    workload_scheduler: SchedulerProcess,
) -> None:
    zone = {"columns-test": namespace}
    for i in range(2):
        node_factory(f"{namespace}-n{i}", cpu="2", memory="4Gi", labels=zone)
    crd = GangMode("crd", kube_request)
    crd.create_workload(namespace, "train", {"workers": 2})
    crd.create_workload(namespace, "huge", {"leaders": 2})
    pods = [
        crd.member(f"w-{i}", "train", "workers", scheduler=workload_scheduler.name, cpu="1")
        for i in range(2)
    ] + [
        crd.member(f"h-{i}", "huge", "leaders", scheduler=workload_scheduler.name, cpu="8")
        for i in range(2)
    ]
    for pod in pods:
        pod["spec"]["nodeSelector"] = zone
        crd.create_pod(namespace, pod)
    wait_until(
        lambda: crd.scheduled_status(namespace, "train", "workers") == "True",
        timeout=20,
        what="the scheduled gang's status",
    )
    wait_until(
        lambda: crd.scheduled_status(namespace, "huge", "leaders") == "False",
        timeout=20,
        what="the unschedulable gang's status",
    )

    table = get_table(api_client, WORKLOADS.format(ns=namespace))
    assert table["kind"] == "Table"
    columns = [c["name"] for c in table["columnDefinitions"]]
    assert columns == ["Name", "Group", "MinCount", "Scheduled", "Reason", "Age", "Gang", "Message"]
    wide = {c["name"] for c in table["columnDefinitions"] if c["priority"] > 0}
    assert wide == {"Gang", "Message"}, "kubectl shows these with -o wide only"
    rows = {row["cells"][0]: dict(zip(columns, row["cells"], strict=True)) for row in table["rows"]}
    train, huge = rows["train"], rows["huge"]
    assert (train["Group"], train["MinCount"], train["Scheduled"], train["Reason"]) == (
        "workers",
        2,
        True,
        "Scheduled",
    )
    assert (huge["Group"], huge["MinCount"], huge["Scheduled"], huge["Reason"]) == (
        "leaders",
        2,
        False,
        "Unschedulable",
    )
    assert train["Gang"] == "workers" and huge["Gang"] == "leaders"
    assert "Insufficient cpu" in huge["Message"], huge["Message"]
    assert train["Age"] and huge["Age"]  # e.g. "5s": the API server's human-readable age


def test_every_gang_keeps_its_status_entry(
    kube_request: Any,
    namespace: str,
    node_factory: NodeFactory,
    workload_scheduler: SchedulerProcess,
) -> None:
    """Two gangs of one Workload: the report on the second leaves the first's entry alone
    (each entry has a field manager of its own; with one manager for all, server-side apply
    removed the entry that the newest apply left out)."""
    zone = {"status-entries-test": namespace}
    for i in range(2):
        node_factory(f"{namespace}-n{i}", cpu="4", memory="8Gi", labels=zone)
    crd = GangMode("crd", kube_request)
    crd.create_workload(namespace, "train", {"workers": 2, "leaders": 2})
    for group in ("workers", "leaders"):
        for i in range(2):
            pod = crd.member(
                f"{group}-{i}", "train", group, scheduler=workload_scheduler.name, cpu="1"
            )
            pod["spec"]["nodeSelector"] = zone
            crd.create_pod(namespace, pod)
        wait_until(
            lambda group=group: crd.scheduled_status(namespace, "train", group) == "True",
            timeout=20,
            what=f"gang {group} reported scheduled",
        )
    assert crd.scheduled_status(namespace, "train", "workers") == "True"
    assert crd.scheduled_status(namespace, "train", "leaders") == "True"
