"""Pod request math, host ports, PodInfo/NodeInfo bookkeeping."""

from __future__ import annotations

import msgspec
import pytest
from factories import container, make_node, make_pod, node_info, pod_info
from hypothesis import given, settings
from hypothesis import strategies as st

from scheduler.framework.nodeinfo import add_pod, make_node_info, remove_pod, update_node
from scheduler.framework.podinfo import (
    DEFAULT_MEMORY_REQUEST,
    InvalidPodError,
    host_ports,
    make_pod_info,
    non_zero_requests,
    pod_requests,
)
from scheduler.model.objects import Pod

Mi = 2**20
Gi = 2**30


# -- pod_requests ----------------------------------------------------------------------


def test_containers_add_up() -> None:
    pod = make_pod(
        containers=[container("a", cpu="500m", memory="1Gi"), container("b", cpu="1", gpu="1")]
    )
    assert pod_requests(pod) == {"cpu": 1500, "memory": Gi, "nvidia.com/gpu": 1}


def test_no_requests_is_empty() -> None:
    assert pod_requests(make_pod()) == {}


def test_zero_amounts_are_omitted() -> None:
    assert pod_requests(make_pod(cpu="0", memory="1Gi")) == {"memory": Gi}


def test_init_container_peak_wins_over_containers() -> None:
    pod = make_pod(
        cpu="1",
        memory="1Gi",
        init_containers=[container("init1", cpu="2"), container("init2", memory="512Mi")],
    )
    # cpu: init1 alone (2) beats the app (1); memory: the app (1Gi) beats init2.
    assert pod_requests(pod) == {"cpu": 2000, "memory": Gi}


def test_init_containers_do_not_add_up() -> None:
    pod = make_pod(
        cpu="100m",
        init_containers=[container("i1", cpu="1"), container("i2", cpu="1")],
    )
    assert pod_requests(pod) == {"cpu": 1000}


def test_sidecars_add_to_containers() -> None:
    pod = make_pod(
        cpu="1",
        init_containers=[container("proxy", cpu="250m", memory="64Mi", restart_policy="Always")],
    )
    assert pod_requests(pod) == {"cpu": 1250, "memory": 64 * Mi}


def test_init_step_counts_the_sidecars_started_before_it() -> None:
    pod = make_pod(
        cpu="1",
        init_containers=[
            container("early-sidecar", cpu="500m", restart_policy="Always"),
            container("migrate", cpu="2"),
            container("late-sidecar", cpu="300m", restart_policy="Always"),
        ],
    )
    # steady state: 1 + 0.5 + 0.3 = 1.8; the migrate step: 2 + 0.5 (early sidecar only).
    assert pod_requests(pod) == {"cpu": 2500}


def test_steady_state_with_sidecars_beats_smaller_init_step() -> None:
    pod = make_pod(
        cpu="1",
        init_containers=[
            container("sidecar", cpu="1", restart_policy="Always"),
            container("init", cpu="500m"),
        ],
    )
    assert pod_requests(pod) == {"cpu": 2000}


def test_overhead_is_added() -> None:
    pod = make_pod(
        cpu="1",
        init_containers=[container("init", cpu="2")],
        overhead={"cpu": "250m", "memory": "120Mi"},
    )
    assert pod_requests(pod) == {"cpu": 2250, "memory": 120 * Mi}


def test_pod_level_requests_replace_container_sum() -> None:
    pod = make_pod(
        containers=[container("a", cpu="1", memory="1Gi", gpu="1"), container("b", cpu="1")],
        pod_requests={"cpu": "3"},
        overhead={"cpu": "100m"},
    )
    # cpu from the pod level plus overhead; memory and gpu still from containers.
    assert pod_requests(pod) == {"cpu": 3100, "memory": Gi, "nvidia.com/gpu": 1}


def test_pod_level_ignores_unsupported_resources() -> None:
    pod = make_pod(gpu="1", pod_requests={"memory": "2Gi", "nvidia.com/gpu": "4"})
    assert pod_requests(pod) == {"memory": 2 * Gi, "nvidia.com/gpu": 1}


def test_requests_are_ordered_for_messages() -> None:
    pod = make_pod(
        requests={
            "nvidia.com/gpu": "1",
            "example.com/foo": "2",
            "ephemeral-storage": "1Gi",
            "memory": "1Gi",
            "cpu": "1",
            "hugepages-2Mi": "4Mi",
        }
    )
    assert list(pod_requests(pod)) == [
        "cpu",
        "memory",
        "ephemeral-storage",
        "example.com/foo",
        "hugepages-2Mi",
        "nvidia.com/gpu",
    ]


# -- non_zero_requests -------------------------------------------------------------------


def test_non_zero_defaults_per_container() -> None:
    pod = make_pod(containers=[container("a", cpu="1"), container("b", memory="1Gi")])
    assert non_zero_requests(pod) == {"cpu": 1100, "memory": DEFAULT_MEMORY_REQUEST + Gi}


def test_non_zero_for_best_effort_pod() -> None:
    assert non_zero_requests(make_pod()) == {"cpu": 100, "memory": 200 * Mi}


def test_non_zero_keeps_explicit_zero() -> None:
    # Only a missing request gets the default.
    assert non_zero_requests(make_pod(cpu="0", memory="0")) == {"cpu": 0, "memory": 0}


def test_non_zero_includes_init_containers_and_overhead() -> None:
    pod = make_pod(
        cpu="100m",
        memory="100Mi",
        init_containers=[container("init")],  # no requests: 100m / 200Mi
        overhead={"cpu": "50m"},
    )
    assert non_zero_requests(pod) == {"cpu": 150, "memory": 200 * Mi}


def test_non_zero_with_pod_level_requests_defaults_only_unnamed_resources() -> None:
    pod = make_pod(
        containers=[container("a", cpu="500m"), container("b")],
        pod_requests={"memory": "1Gi"},
    )
    # cpu is named by a container, so b adds no default; memory comes from the pod level.
    assert non_zero_requests(pod) == {"cpu": 500, "memory": Gi}
    pod = make_pod(containers=[container("a"), container("b")], pod_requests={"memory": "1Gi"})
    assert non_zero_requests(pod) == {"cpu": 200, "memory": Gi}


# -- host ports ---------------------------------------------------------------------------


def test_host_ports_defaults_and_sidecars() -> None:
    data = {
        "metadata": {"name": "p", "namespace": "ns"},
        "spec": {
            "containers": [
                {
                    "name": "app",
                    "ports": [
                        {"containerPort": 80, "hostPort": 8080},
                        {"containerPort": 53, "hostPort": 53, "protocol": "UDP"},
                        {"containerPort": 9090},  # no host port
                        {"containerPort": 70, "hostPort": 7070, "protocol": ""},
                    ],
                }
            ],
            "initContainers": [
                {"name": "init", "ports": [{"containerPort": 1, "hostPort": 1111}]},
                {
                    "name": "sidecar",
                    "restartPolicy": "Always",
                    "ports": [{"containerPort": 2, "hostPort": 2222}],
                },
            ],
        },
    }
    pod = msgspec.convert(data, Pod)
    # Set on the struct: the test is about our defaults, not about JSON field names.
    pod.spec.containers[0].ports[1].host_ip = "10.0.0.1"
    assert host_ports(pod) == {
        ("0.0.0.0", "TCP", 8080),
        ("10.0.0.1", "UDP", 53),
        ("0.0.0.0", "TCP", 7070),
        ("0.0.0.0", "TCP", 2222),
    }


# -- make_pod_info ------------------------------------------------------------------------


def test_make_pod_info_fills_everything() -> None:
    info = make_pod_info(make_pod("web", cpu="1", memory="1Gi", host_ports=[80]))
    assert info.key == "default/web"
    assert info.uid == "uid-default-web"
    assert info.requests == {"cpu": 1000, "memory": Gi}
    assert info.non_zero_requests == {"cpu": 1000, "memory": Gi}
    assert info.host_ports == {("0.0.0.0", "TCP", 80)}
    assert info.signature is not None
    assert info.node_affinity is not None
    assert info.node_preference is not None


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"cpu": "lots"}, "spec.containers[0].resources.requests[cpu]"),
        (
            {"init_containers": [container("i", memory="1 Gi")]},
            "spec.initContainers[0].resources.requests[memory]",
        ),
        ({"overhead": {"cpu": "x"}}, "spec.overhead[cpu]"),
        ({"pod_requests": {"memory": "?"}}, "spec.resources.requests[memory]"),
    ],
)
def test_invalid_quantity_is_reported(kwargs: dict[str, object], field: str) -> None:
    pod = make_pod("bad", namespace="team", **kwargs)  # type: ignore[arg-type]
    with pytest.raises(InvalidPodError) as caught:
        make_pod_info(pod)
    assert caught.value.pod_key == "team/bad"
    assert caught.value.field == field
    assert str(caught.value).startswith(f"pod team/bad: {field}: invalid quantity")
    assert isinstance(caught.value, ValueError)


# -- NodeInfo -----------------------------------------------------------------------------


def test_make_node_info_parses_allocatable() -> None:
    info = node_info(
        "n1",
        cpu="3500m",
        memory="8Gi",
        pods=30,
        allocatable={"nvidia.com/gpu": "2", "hugepages-2Mi": "0"},
    )
    assert info.name == "n1"
    assert info.allocatable == {
        "cpu": 3500,
        "memory": 8 * Gi,
        "pods": 30,
        "nvidia.com/gpu": 2,
        "hugepages-2Mi": 0,
    }
    assert info.pods == {}
    assert info.requested == {}


def test_bad_node_quantity_is_skipped() -> None:
    info = node_info(cpu="four", allocatable={"nvidia.com/gpu": "1"})
    assert "cpu" not in info.allocatable
    assert info.allocatable["nvidia.com/gpu"] == 1


def test_add_and_remove_pod() -> None:
    node = node_info()
    start = node.generation
    a = pod_info("a", cpu="1", memory="1Gi", host_ports=[80])
    b = pod_info("b", gpu="1")
    add_pod(node, a)
    add_pod(node, b)
    assert node.requested == {"cpu": 1000, "memory": Gi, "nvidia.com/gpu": 1}
    assert node.non_zero_requested == {"cpu": 1100, "memory": Gi + 200 * Mi}
    assert set(node.pods) == {a.uid, b.uid}
    assert node.used_ports == {("0.0.0.0", "TCP", 80)}
    assert node.generation > start

    before = node.generation
    assert remove_pod(node, a.uid)
    assert node.generation > before
    assert node.requested == {"nvidia.com/gpu": 1}
    assert node.non_zero_requested == {"cpu": 100, "memory": 200 * Mi}
    assert node.used_ports == set()
    assert not remove_pod(node, a.uid)


def test_add_same_pod_twice_replaces_it() -> None:
    node = node_info()
    add_pod(node, pod_info("a", cpu="1"))
    add_pod(node, pod_info("a", cpu="2"))
    assert node.requested == {"cpu": 2000}
    assert len(node.pods) == 1


def test_removing_one_holder_keeps_a_shared_port_in_use() -> None:
    node = node_info()
    add_pod(node, pod_info("a", host_ports=[80]))
    add_pod(node, pod_info("b", host_ports=[80, 443]))
    remove_pod(node, "uid-default-b")
    assert node.used_ports == {("0.0.0.0", "TCP", 80)}


def test_update_node_keeps_pods() -> None:
    node = node_info(cpu="4")
    add_pod(node, pod_info("a", cpu="1"))
    before = node.generation
    update_node(node, make_node(cpu="8", labels={"zone": "b"}))
    assert node.allocatable["cpu"] == 8000
    assert node.node.metadata.labels == {"zone": "b"}
    assert node.requested == {"cpu": 1000}
    assert len(node.pods) == 1
    assert node.generation > before


def test_generations_never_repeat_across_nodes() -> None:
    first = make_node_info(make_node("n"))
    second = make_node_info(make_node("n"))
    assert second.generation != first.generation


_amount = st.sampled_from(["0", "1", "100m", "250m", "1.5", "3"])
_memory = st.sampled_from(["0", "1Mi", "64Mi", "1Gi", "1.5Gi"])


@settings(max_examples=50, deadline=None)
@given(
    base=st.lists(st.tuples(_amount, _memory), max_size=4),
    extra=st.lists(st.tuples(_amount, _memory, st.booleans()), min_size=1, max_size=4),
)
def test_add_then_remove_restores_node(
    base: list[tuple[str, str]], extra: list[tuple[str, str, bool]]
) -> None:
    node = node_info()
    for i, (cpu, memory) in enumerate(base):
        add_pod(node, pod_info(f"base-{i}", cpu=cpu, memory=memory, host_ports=[i + 1]))
    snapshot = (dict(node.requested), dict(node.non_zero_requested), set(node.used_ports))
    added = []
    for i, (cpu, memory, gpu) in enumerate(extra):
        info = pod_info(
            f"extra-{i}", cpu=cpu, memory=memory, gpu="1" if gpu else None, host_ports=[1, 100 + i]
        )
        add_pod(node, info)
        added.append(info.uid)
    for uid in added:
        assert remove_pod(node, uid)
    assert (node.requested, node.non_zero_requested, node.used_ports) == snapshot
    assert len(node.pods) == len(base)
