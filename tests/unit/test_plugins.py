"""Filter and score plugins against kube-scheduler's behaviour and wording."""

from __future__ import annotations

from typing import Any

import pytest
from factories import affinity, expr, make_pod, node_info, pod_info, term
from hypothesis import given, settings
from hypothesis import strategies as st

from scheduler.framework.nodeinfo import add_pod
from scheduler.framework.plugins import (
    ImageLocality,
    InterPodAffinity,
    NodeAffinity,
    NodeName,
    NodePorts,
    NodeResourcesBalancedAllocation,
    NodeResourcesFit,
    NodeUnschedulable,
    PodTopologySpread,
    TaintToleration,
    UnsupportedFeatures,
    default_filters,
    default_pre_filters,
    default_pre_scores,
    default_scores,
)
from scheduler.framework.plugins.node_resources_fit import (
    Strategy,
    least_requested_score,
    most_requested_score,
)
from scheduler.framework.plugins.taint_toleration import tolerates
from scheduler.framework.types import (
    FilterPlugin,
    PodInfo,
    PreFilterPlugin,
    PreScorePlugin,
    ScorePlugin,
)
from scheduler.model.objects import Taint, Toleration


def taint(key: str, effect: str = "NoSchedule", value: str = "") -> dict[str, str]:
    return {"key": key, "value": value, "effect": effect}


# -- registry -------------------------------------------------------------------------------


def test_default_filters_in_upstream_order() -> None:
    assert [p.name for p in default_filters()] == [
        "NodeUnschedulable",
        "NodeName",
        "TaintToleration",
        "NodeAffinity",
        "NodePorts",
        "NodeResourcesFit",
    ]
    # Their filters run after the ones above, in this order.
    assert [p.name for p in default_pre_filters()] == [
        "UnsupportedFeatures",
        "PodTopologySpread",
        "InterPodAffinity",
    ]


def test_default_scores_and_weights() -> None:
    scores = default_scores()
    assert [(p.name, p.weight) for p in scores] == [
        ("TaintToleration", 3),
        ("NodeAffinity", 2),
        ("NodeResourcesFit", 1),
        ("NodeResourcesBalancedAllocation", 1),
        ("ImageLocality", 1),
    ]
    assert [(p.name, p.weight) for p in default_pre_scores()] == [
        ("PodTopologySpread", 2),
        ("InterPodAffinity", 2),
    ]
    fit = scores[2]
    assert isinstance(fit, NodeResourcesFit)
    assert fit.strategy == "LeastAllocated"
    most = default_scores("MostAllocated")[2]
    assert isinstance(most, NodeResourcesFit)
    assert most.strategy == "MostAllocated"


def test_plugins_satisfy_protocols() -> None:
    filters: list[FilterPlugin] = [
        NodeUnschedulable(),
        NodeName(),
        TaintToleration(),
        NodeAffinity(),
        NodePorts(),
        NodeResourcesFit(),
    ]
    scores: list[ScorePlugin] = [
        TaintToleration(),
        NodeAffinity(),
        NodeResourcesFit(),
        NodeResourcesBalancedAllocation(),
        ImageLocality(),
    ]
    pre_filters: list[PreFilterPlugin] = [
        UnsupportedFeatures(),
        PodTopologySpread(),
        InterPodAffinity(),
    ]
    pre_scores: list[PreScorePlugin] = [PodTopologySpread(), InterPodAffinity()]
    assert len(filters) + len(scores) + len(pre_filters) + len(pre_scores) == 16


def test_unknown_strategy_rejected() -> None:
    with pytest.raises(ValueError, match="scoring strategy"):
        NodeResourcesFit("Balanced")  # type: ignore[arg-type]


# -- NodeUnschedulable -----------------------------------------------------------------------


def test_unschedulable_node_rejected() -> None:
    plugin = NodeUnschedulable()
    assert plugin.filter(pod_info(), node_info(unschedulable=True)) == (
        "node(s) were unschedulable",
    )
    assert plugin.filter(pod_info(), node_info()) is None


@pytest.mark.parametrize(
    "toleration",
    [
        {"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"},
        {"key": "node.kubernetes.io/unschedulable", "operator": "Exists"},
        {"key": "node.kubernetes.io/unschedulable"},  # Equal with empty value
        {"operator": "Exists"},
    ],
)
def test_unschedulable_node_tolerated(toleration: dict[str, str]) -> None:
    pod = pod_info(tolerations=[toleration])
    assert NodeUnschedulable().filter(pod, node_info(unschedulable=True)) is None


@pytest.mark.parametrize(
    "toleration",
    [
        {"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoExecute"},
        {"key": "node.kubernetes.io/unschedulable", "value": "true"},
        {"key": "other", "operator": "Exists"},
    ],
)
def test_unschedulable_node_not_tolerated(toleration: dict[str, str]) -> None:
    pod = pod_info(tolerations=[toleration])
    assert NodeUnschedulable().filter(pod, node_info(unschedulable=True)) is not None


# -- NodeName ----------------------------------------------------------------------------------


def test_node_name() -> None:
    plugin = NodeName()
    assert plugin.filter(pod_info(), node_info("a")) is None
    assert plugin.filter(pod_info(node_name="a"), node_info("a")) is None
    assert plugin.filter(pod_info(node_name="a"), node_info("b")) == (
        "node(s) didn't match the requested node name",
    )


# -- TaintToleration -----------------------------------------------------------------------


def tol(**kwargs: Any) -> Toleration:
    return Toleration(**kwargs)


@pytest.mark.parametrize(
    ("toleration", "the_taint", "expected"),
    [
        (tol(operator="Exists"), Taint(key="a", value="x", effect="NoExecute"), True),
        (tol(key="a", operator="Exists"), Taint(key="a", value="x", effect="NoSchedule"), True),
        (tol(key="b", operator="Exists"), Taint(key="a", effect="NoSchedule"), False),
        (tol(key="a", value="x"), Taint(key="a", value="x", effect="NoSchedule"), True),
        (
            tol(key="a", operator="Equal", value="x"),
            Taint(key="a", value="x", effect="NoSchedule"),
            True,
        ),
        (tol(key="a", value="y"), Taint(key="a", value="x", effect="NoSchedule"), False),
        (tol(key="a"), Taint(key="a", effect="NoSchedule"), True),
        (tol(key="a"), Taint(key="a", value="x", effect="NoSchedule"), False),
        (
            tol(key="a", operator="Exists", effect="NoSchedule"),
            Taint(key="a", effect="NoExecute"),
            False,
        ),
        (
            tol(key="a", operator="Exists", effect="PreferNoSchedule"),
            Taint(key="a", effect="PreferNoSchedule"),
            True,
        ),
        (tol(operator="Exists", effect="NoExecute"), Taint(key="z", effect="NoExecute"), True),
        # Gt/Lt are alpha (off by default) in v1.35: they tolerate nothing.
        (
            tol(key="a", operator="Gt", value="1"),
            Taint(key="a", value="5", effect="NoSchedule"),
            False,
        ),
        (tol(key="a", operator="Bogus"), Taint(key="a", effect="NoSchedule"), False),
    ],
)
def test_toleration_matching(toleration: Toleration, the_taint: Taint, expected: bool) -> None:
    assert tolerates(toleration, the_taint) is expected


def test_untolerated_taint_message() -> None:
    plugin = TaintToleration()
    node = node_info(taints=[taint("dedicated", value="gpu")])
    assert plugin.filter(pod_info(), node) == ("node(s) had untolerated taint(s)",)
    node = node_info(taints=[taint("dedicated")])
    assert plugin.filter(pod_info(), node) == ("node(s) had untolerated taint(s)",)


def test_only_first_untolerated_taint_is_reported() -> None:
    node = node_info(
        taints=[taint("soft", "PreferNoSchedule"), taint("a", "NoExecute", "1"), taint("b")]
    )
    assert TaintToleration().filter(pod_info(), node) == ("node(s) had untolerated taint(s)",)


def test_prefer_no_schedule_does_not_filter() -> None:
    node = node_info(taints=[taint("soft", "PreferNoSchedule")])
    assert TaintToleration().filter(pod_info(), node) is None


def test_all_taints_tolerated() -> None:
    node = node_info(taints=[taint("a", value="1"), taint("b", "NoExecute")])
    pod = pod_info(
        tolerations=[
            {"key": "a", "operator": "Equal", "value": "1", "effect": "NoSchedule"},
            {"key": "b", "operator": "Exists"},
        ]
    )
    assert TaintToleration().filter(pod, node) is None
    assert TaintToleration().filter(pod_info(), node_info()) is None


def test_taint_score_counts_untolerated_prefer_no_schedule() -> None:
    plugin = TaintToleration()
    node = node_info(
        taints=[
            taint("a", "PreferNoSchedule"),
            taint("b", "PreferNoSchedule"),
            taint("c", "NoSchedule"),
        ]
    )
    assert plugin.score(pod_info(), node) == 2
    tolerant = pod_info(tolerations=[{"key": "a", "operator": "Exists"}])
    assert plugin.score(tolerant, node) == 1
    # A NoSchedule toleration does not cover a PreferNoSchedule taint.
    wrong_effect = pod_info(
        tolerations=[{"key": "b", "operator": "Exists", "effect": "NoSchedule"}]
    )
    assert plugin.score(wrong_effect, node) == 2
    assert plugin.score(pod_info(), node_info()) == 0


def test_taint_normalize_is_reversed() -> None:
    plugin = TaintToleration()
    scores = [0, 1, 3, 2]
    plugin.normalize(scores)
    # 100 - 100*s//max, as upstream: 1 of 3 gives 67, not 66.
    assert scores == [100, 67, 0, 34]
    zeros = [0, 0]
    plugin.normalize(zeros)
    assert zeros == [100, 100]
    empty: list[int] = []
    plugin.normalize(empty)
    assert empty == []


# -- NodeAffinity ------------------------------------------------------------------------------


def affinity_filter(pod: PodInfo, labels: dict[str, str], name: str = "node") -> bool:
    return NodeAffinity().filter(pod, node_info(name, labels=labels)) is None


def test_no_constraints_match_everything() -> None:
    assert affinity_filter(pod_info(), {})


def test_node_selector_all_must_match() -> None:
    pod = pod_info(node_selector={"zone": "a", "disk": "ssd"})
    assert affinity_filter(pod, {"zone": "a", "disk": "ssd", "other": "x"})
    assert not affinity_filter(pod, {"zone": "a"})
    assert not affinity_filter(pod, {"zone": "b", "disk": "ssd"})
    assert NodeAffinity().filter(pod, node_info()) == (
        "node(s) didn't match Pod's node affinity/selector",
    )


def test_node_selector_empty_value_needs_the_label() -> None:
    pod = pod_info(node_selector={"flag": ""})
    assert affinity_filter(pod, {"flag": ""})
    assert not affinity_filter(pod, {})


@pytest.mark.parametrize(
    ("requirement", "labels", "expected"),
    [
        (expr("zone", "In", "a", "b"), {"zone": "b"}, True),
        (expr("zone", "In", "a", "b"), {"zone": "c"}, False),
        (expr("zone", "In", "a"), {}, False),
        (expr("zone", "NotIn", "a"), {"zone": "b"}, True),
        (expr("zone", "NotIn", "a"), {"zone": "a"}, False),
        (expr("zone", "NotIn", "a"), {}, True),
        (expr("gpu", "Exists"), {"gpu": ""}, True),
        (expr("gpu", "Exists"), {}, False),
        (expr("gpu", "DoesNotExist"), {}, True),
        (expr("gpu", "DoesNotExist"), {"gpu": "x"}, False),
        (expr("cores", "Gt", "8"), {"cores": "16"}, True),
        (expr("cores", "Gt", "8"), {"cores": "8"}, False),
        (expr("cores", "Gt", "8"), {"cores": "+9"}, True),
        (expr("cores", "Gt", "-1"), {"cores": "0"}, True),
        (expr("cores", "Gt", "8"), {"cores": "many"}, False),
        (expr("cores", "Gt", "8"), {"cores": " 9"}, False),
        (expr("cores", "Gt", "8"), {"cores": "1_0"}, False),
        (expr("cores", "Gt", "8"), {}, False),
        (expr("cores", "Lt", "8"), {"cores": "7"}, True),
        (expr("cores", "Lt", "8"), {"cores": "8"}, False),
        (expr("cores", "Lt", "8"), {"cores": "99999999999999999999"}, False),  # not int64
        # Invalid requirements make the term match nothing.
        (expr("zone", "In"), {"zone": ""}, False),
        (expr("zone", "NotIn"), {}, False),
        (expr("gpu", "Exists", "x"), {"gpu": "x"}, False),
        (expr("cores", "Gt", "8", "9"), {"cores": "10"}, False),
        (expr("cores", "Gt", "eight"), {"cores": "10"}, False),
        (expr("zone", "Equals", "a"), {"zone": "a"}, False),
    ],
)
def test_required_affinity_operators(
    requirement: dict[str, Any], labels: dict[str, str], expected: bool
) -> None:
    pod = pod_info(affinity=affinity(required=[term(requirement)]))
    assert affinity_filter(pod, labels) is expected


def test_required_terms_or_expressions_and() -> None:
    pod = pod_info(
        affinity=affinity(
            required=[
                term(expr("zone", "In", "a"), expr("disk", "In", "ssd")),
                term(expr("gpu", "Exists")),
            ]
        )
    )
    assert affinity_filter(pod, {"zone": "a", "disk": "ssd"})
    assert not affinity_filter(pod, {"zone": "a", "disk": "hdd"})
    assert affinity_filter(pod, {"gpu": "1"})


def test_invalid_term_does_not_spoil_the_others() -> None:
    pod = pod_info(
        affinity=affinity(required=[term(expr("zone", "In")), term(expr("gpu", "Exists"))])
    )
    assert affinity_filter(pod, {"gpu": "1"})
    assert not affinity_filter(pod, {"zone": "a"})


def test_required_without_terms_matches_nothing() -> None:
    pod = pod_info(affinity=affinity(required=[]))
    assert not affinity_filter(pod, {})


def test_empty_term_matches_nothing() -> None:
    pod = pod_info(affinity=affinity(required=[term()]))
    assert not affinity_filter(pod, {"any": "label"})
    pod = pod_info(affinity=affinity(required=[term(), term(expr("a", "Exists"))]))
    assert affinity_filter(pod, {"a": "1"})


def test_node_selector_and_affinity_both_apply() -> None:
    pod = pod_info(
        node_selector={"zone": "a"},
        affinity=affinity(required=[term(expr("disk", "In", "ssd"))]),
    )
    assert affinity_filter(pod, {"zone": "a", "disk": "ssd"})
    assert not affinity_filter(pod, {"zone": "b", "disk": "ssd"})
    assert not affinity_filter(pod, {"zone": "a"})


@pytest.mark.parametrize(
    ("field", "node_name", "expected"),
    [
        (expr("metadata.name", "In", "n1"), "n1", True),
        (expr("metadata.name", "In", "n1"), "n2", False),
        (expr("metadata.name", "NotIn", "n1"), "n2", True),
        (expr("metadata.name", "NotIn", "n1"), "n1", False),
        # Only one value, only metadata.name, only In/NotIn.
        (expr("metadata.name", "In", "n1", "n2"), "n1", False),
        (expr("metadata.uid", "In", "n1"), "n1", False),
        (expr("metadata.name", "Exists"), "n1", False),
    ],
)
def test_match_fields(field: dict[str, Any], node_name: str, expected: bool) -> None:
    pod = pod_info(affinity=affinity(required=[term(fields=[field])]))
    assert affinity_filter(pod, {}, name=node_name) is expected


def test_match_fields_and_expressions_together() -> None:
    pod = pod_info(
        affinity=affinity(
            required=[term(expr("zone", "In", "a"), fields=[expr("metadata.name", "In", "n1")])]
        )
    )
    assert affinity_filter(pod, {"zone": "a"}, name="n1")
    assert not affinity_filter(pod, {"zone": "b"}, name="n1")
    assert not affinity_filter(pod, {"zone": "a"}, name="n2")


def test_preferred_affinity_score_and_normalize() -> None:
    plugin = NodeAffinity()
    pod = pod_info(
        affinity=affinity(
            preferred=[
                (10, term(expr("zone", "In", "a"))),
                (5, term(expr("disk", "In", "ssd"))),
                (0, term(expr("zone", "In", "a"))),  # weight 0: ignored
                (50, term()),  # empty preference: ignored
            ]
        )
    )
    nodes = [
        node_info("n1", labels={"zone": "a", "disk": "ssd"}),
        node_info("n2", labels={"zone": "a"}),
        node_info("n3", labels={"disk": "ssd"}),
        node_info("n4"),
    ]
    scores = [plugin.score(pod, n) for n in nodes]
    assert scores == [15, 10, 5, 0]
    plugin.normalize(scores)
    assert scores == [100, 66, 33, 0]


def test_affinity_score_without_preferences() -> None:
    plugin = NodeAffinity()
    scores = [plugin.score(pod_info(), node_info(labels={"a": "b"})) for _ in range(2)]
    assert scores == [0, 0]
    plugin.normalize(scores)
    assert scores == [0, 0]


def test_affinity_compiled_lazily_for_hand_built_pod_info() -> None:
    pod = make_pod(node_selector={"zone": "a"})
    info = PodInfo(pod=pod, requests={}, non_zero_requests={})
    assert NodeAffinity().filter(info, node_info(labels={"zone": "b"})) is not None
    assert info.node_affinity is not None
    assert NodeAffinity().score(info, node_info()) == 0
    assert info.node_preference is not None


# -- NodePorts ---------------------------------------------------------------------------------


def node_with_ports(*ports: tuple[str, str, int]) -> Any:
    node = node_info()
    node.used_ports.update(ports)
    return node


@pytest.mark.parametrize(
    ("wanted", "used", "conflict"),
    [
        (("0.0.0.0", "TCP", 80), ("0.0.0.0", "TCP", 80), True),
        (("0.0.0.0", "TCP", 80), ("10.0.0.1", "TCP", 80), True),
        (("10.0.0.1", "TCP", 80), ("0.0.0.0", "TCP", 80), True),
        (("10.0.0.1", "TCP", 80), ("10.0.0.1", "TCP", 80), True),
        (("10.0.0.1", "TCP", 80), ("10.0.0.2", "TCP", 80), False),
        (("0.0.0.0", "UDP", 80), ("0.0.0.0", "TCP", 80), False),
        (("0.0.0.0", "TCP", 81), ("0.0.0.0", "TCP", 80), False),
    ],
)
def test_port_conflicts(
    wanted: tuple[str, str, int], used: tuple[str, str, int], conflict: bool
) -> None:
    pod = pod_info()
    pod.host_ports = frozenset({wanted})
    result = NodePorts().filter(pod, node_with_ports(used))
    if conflict:
        assert result == ("node(s) didn't have free ports for the requested pod ports",)
    else:
        assert result is None


def test_ports_from_pods_on_node() -> None:
    node = node_info()
    add_pod(node, pod_info("web", host_ports=[8080]))
    assert NodePorts().filter(pod_info("other", host_ports=[8080]), node) is not None
    assert NodePorts().filter(pod_info("other", host_ports=[9090]), node) is None
    assert NodePorts().filter(pod_info("plain"), node) is None


# -- NodeResourcesFit filter ---------------------------------------------------------------


def test_fits() -> None:
    node = node_info(cpu="2", memory="4Gi")
    add_pod(node, pod_info("a", cpu="1", memory="1Gi"))
    assert NodeResourcesFit().filter(pod_info("b", cpu="1", memory="3Gi"), node) is None


def test_insufficient_resources_all_reported() -> None:
    node = node_info(
        cpu="2", memory="4Gi", allocatable={"ephemeral-storage": "10Gi", "nvidia.com/gpu": "1"}
    )
    add_pod(node, pod_info("a", cpu="1500m", memory="1Gi", gpu="1"))
    pod = pod_info(
        "b",
        requests={
            "cpu": "1",
            "memory": "3Gi",
            "ephemeral-storage": "20Gi",
            "nvidia.com/gpu": "1",
            "hugepages-2Mi": "2Mi",
        },
    )
    assert NodeResourcesFit().filter(pod, node) == (
        "Insufficient cpu",
        "Insufficient ephemeral-storage",
        "Insufficient hugepages-2Mi",
        "Insufficient nvidia.com/gpu",
    )


def test_resource_missing_on_node_is_insufficient() -> None:
    assert NodeResourcesFit().filter(pod_info(gpu="1"), node_info()) == (
        "Insufficient nvidia.com/gpu",
    )


def test_too_many_pods() -> None:
    node = node_info(pods=2)
    add_pod(node, pod_info("a"))
    assert NodeResourcesFit().filter(pod_info("b"), node) is None
    add_pod(node, pod_info("b"))
    assert NodeResourcesFit().filter(pod_info("c", cpu="100"), node) == (
        "Too many pods",
        "Insufficient cpu",
    )


def test_best_effort_pod_fits_full_node() -> None:
    node = node_info(cpu="1", memory="1Gi")
    add_pod(node, pod_info("hog", cpu="1", memory="1Gi"))
    assert NodeResourcesFit().filter(pod_info("be"), node) is None


# -- NodeResourcesFit score ------------------------------------------------------------------


def fit_score(strategy: Any, pod: PodInfo, **node_kwargs: Any) -> int:
    node = node_info(**node_kwargs)
    return NodeResourcesFit(strategy).score(pod, node)


def test_least_allocated() -> None:
    pod = pod_info(cpu="1", memory="2Gi")
    # cpu: (4000-1000)*100//4000 = 75; memory: (8-2)*100//8 = 75
    assert fit_score("LeastAllocated", pod, cpu="4", memory="8Gi") == 75
    # cpu: (3000-1000)*100//3000 = 66; memory: (10-2)*100//10 = 80 -> (66+80)//2 = 73
    assert fit_score("LeastAllocated", pod, cpu="3", memory="10Gi") == 73


def test_least_allocated_over_capacity_scores_zero() -> None:
    pod = pod_info(cpu="8", memory="1Gi")
    # cpu over capacity: 0; memory (16-1)*100//16 = 93 -> 46
    assert fit_score("LeastAllocated", pod, cpu="4", memory="16Gi") == 46


def test_most_allocated() -> None:
    pod = pod_info(cpu="1", memory="2Gi")
    assert fit_score("MostAllocated", pod, cpu="4", memory="8Gi") == 25
    # cpu 1000*100//3000 = 33; memory 2*100//10 = 20 -> 26
    assert fit_score("MostAllocated", pod, cpu="3", memory="10Gi") == 26
    # over capacity is capped at 100
    assert fit_score("MostAllocated", pod_info(cpu="8", memory="8Gi"), cpu="4", memory="8Gi") == 100


def test_fit_score_uses_non_zero_requests() -> None:
    node = node_info(cpu="1", memory="1000Mi")
    add_pod(node, pod_info("existing"))  # counts 100m / 200Mi
    pod = pod_info("new")  # counts 100m / 200Mi too
    # cpu (1000-200)*100//1000 = 80; memory (1000-400)*100//1000 = 60
    assert NodeResourcesFit("LeastAllocated").score(pod, node) == 70
    assert NodeResourcesFit("MostAllocated").score(pod, node) == 30


def test_fit_score_skips_resources_the_node_lacks() -> None:
    pod = pod_info(cpu="1", memory="1Gi")
    assert fit_score("LeastAllocated", pod, cpu="0", memory="4Gi") == 75
    assert fit_score("LeastAllocated", pod, cpu="0", memory="0") == 0


def test_fit_normalize_is_noop() -> None:
    scores = [10, 90]
    NodeResourcesFit().normalize(scores)
    assert scores == [10, 90]


# -- NodeResourcesBalancedAllocation --------------------------------------------------------------


def test_balanced_allocation() -> None:
    plugin = NodeResourcesBalancedAllocation()
    pod = pod_info(cpu="1", memory="2Gi")
    # Both at 25%: std 0.
    assert plugin.score(pod, node_info(cpu="4", memory="8Gi")) == 100
    # cpu 1/2 = 0.5, memory 2/16 = 0.125: std 0.1875 -> 81
    assert plugin.score(pod, node_info(cpu="2", memory="16Gi")) == 81


def test_balanced_allocation_counts_existing_requests_and_caps_fractions() -> None:
    plugin = NodeResourcesBalancedAllocation()
    node = node_info(cpu="2", memory="8Gi")
    add_pod(node, pod_info("a", cpu="2"))
    # cpu (2+1)/2 capped at 1, memory 2/8 = 0.25: std 0.375 -> 62
    assert plugin.score(pod_info("b", cpu="1", memory="2Gi"), node) == 62


def test_balanced_allocation_uses_real_requests() -> None:
    plugin = NodeResourcesBalancedAllocation()
    node = node_info(cpu="4", memory="8Gi")
    add_pod(node, pod_info("best-effort"))  # counts nothing here
    assert plugin.score(pod_info("p", cpu="1", memory="2Gi"), node) == 100


def test_balanced_allocation_skips_best_effort_pods() -> None:
    assert NodeResourcesBalancedAllocation().score(pod_info(), node_info()) == 0
    # Requests of other resources only: still skipped, as upstream.
    assert NodeResourcesBalancedAllocation().score(pod_info(gpu="1"), node_info()) == 0


def test_balanced_allocation_single_resource_node() -> None:
    pod = pod_info(cpu="1", memory="1Gi")
    assert NodeResourcesBalancedAllocation().score(pod, node_info(cpu="0")) == 100


# -- a whole pass --------------------------------------------------------------------------


def test_first_failing_filter_decides() -> None:
    pod = pod_info(cpu="100", node_selector={"zone": "a"})
    node = node_info(taints=[taint("dedicated", value="infra")], labels={"zone": "b"})
    reasons = None
    for plugin in default_filters():
        reasons = plugin.filter(pod, node)
        if reasons is not None:
            break
    assert reasons == ("node(s) had untolerated taint(s)",)


# -- score properties ----------------------------------------------------------------------

_cpu = st.integers(min_value=0, max_value=64_000)
_mem = st.integers(min_value=0, max_value=2**40)


@settings(max_examples=200, deadline=None)
@given(
    strategy=st.sampled_from(["LeastAllocated", "MostAllocated"]),
    cpu_capacity=_cpu,
    mem_capacity=_mem,
    cpu_used=_cpu,
    mem_used=_mem,
    cpu_wanted=_cpu,
    mem_wanted=_mem,
)
def test_fit_score_matches_reference(
    *,
    strategy: Strategy,
    cpu_capacity: int,
    mem_capacity: int,
    cpu_used: int,
    mem_used: int,
    cpu_wanted: int,
    mem_wanted: int,
) -> None:
    node = node_info()
    node.allocatable = {"cpu": cpu_capacity, "memory": mem_capacity}
    node.non_zero_requested = {"cpu": cpu_used, "memory": mem_used}
    pod = pod_info()
    pod.non_zero_requests = {"cpu": cpu_wanted, "memory": mem_wanted}
    per_resource = most_requested_score if strategy == "MostAllocated" else least_requested_score
    parts = [
        per_resource(used + wanted, capacity)
        for used, wanted, capacity in (
            (cpu_used, cpu_wanted, cpu_capacity),
            (mem_used, mem_wanted, mem_capacity),
        )
        if capacity
    ]
    expected = sum(parts) // len(parts) if parts else 0
    score = NodeResourcesFit(strategy).score(pod, node)
    assert score == expected
    assert 0 <= score <= 100


@settings(max_examples=200, deadline=None)
@given(
    cpu_capacity=st.integers(min_value=1, max_value=64_000),
    mem_capacity=st.integers(min_value=1, max_value=2**40),
    cpu=_cpu,
    mem=_mem,
)
def test_balanced_score_matches_formula(
    cpu_capacity: int, mem_capacity: int, cpu: int, mem: int
) -> None:
    node = node_info()
    node.allocatable = {"cpu": cpu_capacity, "memory": mem_capacity}
    pod = pod_info()
    pod.requests = {"cpu": cpu, "memory": mem}
    fractions = [min(cpu / cpu_capacity, 1.0), min(mem / mem_capacity, 1.0)]
    std = abs((fractions[0] - fractions[1]) / 2)
    expected = 0 if not cpu and not mem else int((1 - std) * 100)
    score = NodeResourcesBalancedAllocation().score(pod, node)
    assert score == expected
    assert 0 <= score <= 100
