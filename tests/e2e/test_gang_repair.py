"""Binding repair inside a gang, with refusals from a real admission policy."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from tests.e2e.k8s import placements, wait_until

ADMISSION = "/apis/admissionregistration.k8s.io/v1"


@pytest.fixture
def refuse_binding_to(gang: Any) -> Iterator[Any]:
    """``refuse_binding_to(node)``: a ValidatingAdmissionPolicy that refuses every Binding
    to that node (as a policy engine or a quota webhook may), removed afterwards."""
    made: list[str] = []

    def refuse(node: str) -> None:
        name = f"refuse-{node}"
        gang.cluster.request(
            "POST",
            f"{ADMISSION}/validatingadmissionpolicies",
            {
                "metadata": {"name": name},
                "spec": {
                    "failurePolicy": "Fail",
                    "matchConstraints": {
                        "resourceRules": [
                            {
                                "apiGroups": [""],
                                "apiVersions": ["v1"],
                                "operations": ["CREATE"],
                                "resources": ["pods/binding"],
                            }
                        ]
                    },
                    "validations": [
                        {
                            "expression": f"object.target.name != '{node}'",
                            "message": f"no bindings to {node} (test policy)",
                            "reason": "Forbidden",
                        }
                    ],
                },
            },
        )
        made.append(name)
        gang.cluster.request(
            "POST",
            f"{ADMISSION}/validatingadmissionpolicybindings",
            {
                "metadata": {"name": name},
                "spec": {"policyName": name, "validationActions": ["Deny"]},
            },
        )
        time.sleep(2)  # the policy is enforced once the API server's informer has it

    yield refuse
    for name in made:
        for kind in ("validatingadmissionpolicybindings", "validatingadmissionpolicies"):
            try:
                gang.cluster.request("DELETE", f"{ADMISSION}/{kind}/{name}")
            except ApiException as exc:
                if exc.status != 404:
                    raise


def _bind(gang: Any, pod: str, node: str) -> None:
    gang.cluster.request(
        "POST",
        f"/api/v1/namespaces/{gang.ns}/pods/{pod}/binding",
        {
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": pod},
            "target": {"apiVersion": "v1", "kind": "Node", "name": node},
        },
    )


@pytest.mark.parametrize("gang", ["crd"], indirect=True)
def test_gang_repair_tolerates_a_member_bound_meanwhile(gang: Any, refuse_binding_to: Any) -> None:
    """One member's bind is refused again and again (its node forbids bindings); while our
    scheduler repairs it, someone else binds it. The repair must count it as bound (it
    crashed trying to assume it a second time, and the gang was never reported)."""
    prefix = gang.ns[-8:]
    a, b, c = (f"{prefix}-{n}" for n in "abc")
    gang.node(a, cpu="2", memory="4Gi")
    gang.node(b, cpu="2", memory="4Gi")
    # Out of our scheduler's reach (untolerated taint), not of an admin's Binding.
    gang.node(c, cpu="2", memory="4Gi", taints=[{"key": "x", "effect": "NoSchedule"}])
    refuse_binding_to(b)
    gang.mode.create_workload(gang.ns, "w", {"g": 2})
    for i in range(2):
        gang.mode.create_pod(
            gang.ns,
            gang.mode.member(f"m-{i}", "w", "g", scheduler=gang.scheduler_name, cpu="1500m"),
        )
    wait_until(
        lambda: len([n for n in placements(gang.core, gang.ns).values() if n]) == 1,
        what="one member bound, the other refused",
    )
    time.sleep(1)  # a few refused repairs
    stuck = next(p for p, node in placements(gang.core, gang.ns).items() if not node)
    _bind(gang, stuck, c)
    wait_until(
        lambda: gang.mode.scheduled_status(gang.ns, "w", "g") == "True",
        timeout=20,
        what="the gang reported scheduled",
    )
    assert gang.scheduler.proc is not None and gang.scheduler.proc.poll() is None
