"""Our Workload CRD's schema on a real API server: bad gangs are refused when written, with
a message that says what is wrong (not accepted and then placed as if unconstrained)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from tests.e2e.conftest import KubeRequest

API = "workload-scheduler.io/v1alpha1"


def _workload(name: str, min_count: int, key: str | None = None) -> dict[str, Any]:
    group: dict[str, Any] = {"name": "g", "policy": {"gang": {"minCount": min_count}}}
    if key is not None:
        group["schedulingConstraints"] = {"topology": [{"key": key}]}
    return {
        "apiVersion": API,
        "kind": "Workload",
        "metadata": {"name": name},
        "spec": {"podGroups": [group]},
    }


def _refusal(request: KubeRequest, namespace: str, body: dict[str, Any]) -> str:
    with pytest.raises(ApiException) as refused:
        request("POST", f"/apis/{API}/namespaces/{namespace}/workloads", body)
    assert refused.value.status == 422, refused.value.body
    return str(json.loads(refused.value.body)["message"])


def test_min_count_is_bounded(kube_request: KubeRequest, namespace: str) -> None:
    message = _refusal(kube_request, namespace, _workload("huge", 10**12))
    assert "spec.podGroups[0].policy.gang.minCount" in message, message
    assert "less than or equal to 100000" in message, message
    kube_request(
        "POST", f"/apis/{API}/namespaces/{namespace}/workloads", _workload("largest", 100000)
    )


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("", "must be a node label key such as topology.kubernetes.io/zone, not empty"),
        ("a/b/c", "must be a label key"),
        ("-rack", "must be a label key"),
        ("x" * 64, "must be a label key"),
    ],
)
def test_topology_key_must_be_a_label_key(
    kube_request: KubeRequest, namespace: str, key: str, expected: str
) -> None:
    message = _refusal(kube_request, namespace, _workload("bad-key", 2, key))
    assert "spec.podGroups[0].schedulingConstraints.topology[0].key" in message, message
    assert expected in message, message


def test_valid_topology_keys_are_accepted(kube_request: KubeRequest, namespace: str) -> None:
    for i, key in enumerate(("rack", "topology.kubernetes.io/zone", "example.com/Rack_1")):
        kube_request(
            "POST", f"/apis/{API}/namespaces/{namespace}/workloads", _workload(f"ok-{i}", 2, key)
        )


def test_priority_or_priority_class_name_not_both(
    kube_request: KubeRequest, namespace: str
) -> None:
    both = _workload("both", 2)
    both["spec"]["podGroups"][0].update({"priority": 5, "priorityClassName": "urgent"})
    message = _refusal(kube_request, namespace, both)
    assert "set priority or priorityClassName, not both" in message, message
    bad = _workload("bad-class", 2)
    bad["spec"]["podGroups"][0]["priorityClassName"] = "Not A Name"
    message = _refusal(kube_request, namespace, bad)
    assert "spec.podGroups[0].priorityClassName" in message, message
    named = _workload("named", 2)
    named["spec"]["podGroups"][0]["priorityClassName"] = "urgent"
    created = kube_request("POST", f"/apis/{API}/namespaces/{namespace}/workloads", named)
    assert created["spec"]["podGroups"][0]["priorityClassName"] == "urgent"  # not pruned
