"""Pod signatures: equal exactly when filters and scores cannot tell pods apart."""

from __future__ import annotations

from typing import Any

import pytest
from factories import affinity, container, expr, make_pod, pod_info, term

from scheduler.framework.podinfo import host_ports, make_pod_info, non_zero_requests, pod_requests
from scheduler.framework.signature import batchable, signature_of
from scheduler.model.objects import Pod


def pod_signature(pod: Pod) -> bytes | None:
    """The signature from requests and ports computed one by one (not by make_pod_info)."""
    return signature_of(pod, pod_requests(pod), non_zero_requests(pod), host_ports(pod))


def sig(**kwargs: Any) -> bytes | None:
    return pod_signature(make_pod(**kwargs))


def test_signature_is_16_bytes_and_stable() -> None:
    first = sig(cpu="1")
    assert isinstance(first, bytes)
    assert len(first) == 16
    assert sig(cpu="1") == first


def test_make_pod_info_uses_the_same_signature() -> None:
    pod = make_pod(cpu="1", tolerations=[{"key": "a", "operator": "Exists"}])
    assert make_pod_info(pod).signature == pod_signature(pod)


def test_name_labels_namespace_and_workload_do_not_matter() -> None:
    base = sig(name="a", cpu="1", memory="1Gi")
    assert base == sig(
        name="b",
        namespace="other",
        labels={"app": "x"},
        cpu="1",
        memory="1Gi",
        workloadRef={"name": "job", "podGroup": "workers"},
    )
    assert base == sig(name="c", cpu="1", memory="1Gi", schedulingGroup={"podGroupName": "g"})


def test_equal_totals_from_different_container_layouts_match() -> None:
    even = sig(
        containers=[
            container("a", cpu="1", memory="512Mi"),
            container("b", cpu="1", memory="512Mi"),
        ]
    )
    uneven = sig(
        containers=[
            container("x", cpu="1500m", memory="768Mi"),
            container("y", cpu="500m", memory="256Mi"),
        ]
    )
    assert even == uneven
    # The images (and so how many containers there are) count: ImageLocality reads them.
    assert sig(containers=[container("a", cpu="2", memory="1Gi")]) != even


@pytest.mark.parametrize(
    "changes",
    [
        {"cpu": "2"},
        {"memory": "2Gi"},
        {"gpu": "1"},
        {"overhead": {"cpu": "10m"}},
        {"node_selector": {"zone": "a"}},
        {"affinity": affinity(required=[term(expr("zone", "In", "a"))])},
        {"affinity": affinity(preferred=[(5, term(expr("zone", "In", "a")))])},
        {"tolerations": [{"key": "a", "operator": "Exists"}]},
        {"node_name": "n1"},
        {"host_ports": [80]},
        {"priority": 10},
        {"schedulerName": "other-scheduler"},
    ],
)
def test_anything_plugins_read_changes_the_signature(changes: dict[str, Any]) -> None:
    base: dict[str, Any] = {"cpu": "1", "memory": "1Gi"}
    assert sig(**base) != sig(**{**base, **changes})


def test_non_zero_defaults_change_the_signature() -> None:
    # Same effective requests ({}), but the second counts two default containers in scores.
    one = sig(containers=[container("a")])
    two = sig(containers=[container("a"), container("b")])
    assert one != two


def test_toleration_order_and_spelling_do_not_matter() -> None:
    a = {"key": "a", "operator": "Exists", "effect": "NoSchedule"}
    b = {"key": "b", "value": "x", "effect": "NoExecute"}
    b_equal = {**b, "operator": "Equal", "tolerationSeconds": 30}
    assert sig(tolerations=[a, b]) == sig(tolerations=[b_equal, a])


def test_node_selector_order_does_not_matter() -> None:
    assert sig(node_selector={"a": "1", "b": "2"}) == sig(node_selector={"b": "2", "a": "1"})


@pytest.mark.parametrize(
    "spec",
    [
        {"affinity": {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": []}}},
        {"affinity": {"podAntiAffinity": {}}},
        {
            "topologySpreadConstraints": [
                {"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule"}
            ]
        },
        {"resourceClaims": [{"name": "gpu", "resourceClaimName": "c"}]},
        {"volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "d"}}]},
        {"volumes": [{"name": "scratch", "ephemeral": {}}]},
        {"volumes": [{"name": "h", "hostPath": {"path": "/x"}}]},
    ],
)
def test_unbatchable_pods_have_no_signature(spec: dict[str, Any]) -> None:
    pod = make_pod(cpu="1", **spec)
    assert not batchable(pod)
    assert pod_signature(pod) is None
    assert make_pod_info(pod).signature is None


def test_simple_volumes_are_batchable() -> None:
    volumes = [
        {"name": "cfg", "configMap": {"name": "c"}},
        {"name": "sec", "secret": {"secretName": "s"}},
        {"name": "tmp", "emptyDir": {}},
        {"name": "info", "downwardAPI": {"items": []}},
        {"name": "kube-api-access", "projected": {"sources": []}},
    ]
    assert pod_signature(make_pod(cpu="1", volumes=volumes)) == sig(cpu="1")


def test_node_affinity_alone_stays_batchable() -> None:
    info = pod_info(affinity=affinity(required=[term(expr("zone", "In", "a"))]))
    assert info.signature is not None
