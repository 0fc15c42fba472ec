"""Policy checks the scheduler repeats for every API (an older CRD schema may let more in)."""

from __future__ import annotations

import msgspec
import pytest

from scheduler.api.sources.policies import MAX_MIN_COUNT, label_key_problem, workload_object
from scheduler.api.sources.shapes import Workload
from scheduler.gang.model import CRD_WORKLOAD


def crd_workload(min_count: object, key: str | None = None) -> Workload:
    entry: dict[str, object] = {"name": "g", "policy": {"gang": {"minCount": min_count}}}
    if key is not None:
        entry["schedulingConstraints"] = {"topology": [{"key": key}]}
    return msgspec.convert(
        {"metadata": {"name": "w", "namespace": "ns"}, "spec": {"podGroups": [entry]}}, Workload
    )


@pytest.mark.parametrize(
    "key", ["rack", "topology.kubernetes.io/zone", "example.com/Rack_1", "x" * 63]
)
def test_valid_label_keys(key: str) -> None:
    assert label_key_problem(key) is None


@pytest.mark.parametrize(
    ("key", "problem"),
    [
        ("", "is empty"),
        ("a/b/c", "prefix"),
        ("/rack", "prefix"),
        ("UPPER.com/rack", "prefix"),
        ("-rack", "name"),
        ("x" * 64, "name"),
        ("example.com/", "name"),
    ],
)
def test_invalid_label_keys(key: str, problem: str) -> None:
    message = label_key_problem(key)
    assert message is not None and problem in message


def test_an_empty_topology_key_is_refused_not_ignored() -> None:
    obj = workload_object(crd_workload(2, ""), kind=CRD_WORKLOAD, api_version="x/v1")
    assert obj.invalid is not None
    assert "spec.podGroups[0].schedulingConstraints.topology[0].key '' is empty" in obj.invalid


def test_min_count_is_bounded() -> None:
    ok = workload_object(crd_workload(MAX_MIN_COUNT), kind=CRD_WORKLOAD, api_version="x/v1")
    assert ok.invalid is None
    big = workload_object(crd_workload(10**12), kind=CRD_WORKLOAD, api_version="x/v1")
    assert big.invalid is not None and "from 1 to 100000, not 1000000000000" in big.invalid


def test_half_labelled_pods_are_held_with_a_message() -> None:
    from factories import make_pod

    from scheduler.framework.podinfo import make_pod_info
    from scheduler.gang.membership import label_problem, pod_group_key
    from scheduler.gang.registry import GangRegistry

    only_group = make_pod("a", labels={"workload-scheduler.io/pod-group": "g"})
    only_workload = make_pod("b", labels={"workload-scheduler.io/workload": "w"})
    assert pod_group_key(only_group) is None and pod_group_key(only_workload) is None
    problem = label_problem(only_workload)
    assert problem is not None and problem.workload == (CRD_WORKLOAD, "default", "w")
    registry = GangRegistry()
    message = registry.gate(make_pod_info(only_group))
    assert message is not None and message.startswith(
        "pod has label workload-scheduler.io/pod-group=g but no workload-scheduler.io/workload"
    )
    assert label_problem(make_pod("plain")) is None
