"""The dev cluster's simulated nodes and kwok configuration, without a cluster."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from devcluster import build, kwok
from devcluster.controlplane import CONTROLLERS, Components
from devcluster.nodes import (
    NodeShape,
    ShapeError,
    is_kwok_managed,
    next_names,
    node_manifest,
    parse_label,
    parse_resource,
    parse_taint,
)
from scheduler.cli.main import build_parser

REPO = Path(__file__).resolve().parents[2]


def test_nodes_are_kwok_managed_unless_asked_not_to() -> None:
    managed = node_manifest("n1")
    assert managed["metadata"]["annotations"] == {"kwok.x-k8s.io/node": "fake"}
    assert is_kwok_managed(managed)
    bare = node_manifest("n2", kwok=False)
    assert "annotations" not in bare["metadata"]
    assert not is_kwok_managed(bare)


def test_shape_makes_the_node_asked_for() -> None:
    shape = NodeShape(
        cpu="8",
        memory="32Gi",
        gpus=2,
        resources={"example.com/fpga": "1"},
        labels={"topology.kubernetes.io/zone": "a"},
        taints=[{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}],
    )
    node = shape.manifest("sim-node-001")
    assert node["status"]["allocatable"] == {
        "cpu": "8",
        "memory": "32Gi",
        "pods": "110",
        "example.com/fpga": "1",
        "nvidia.com/gpu": "2",
    }
    assert node["status"]["capacity"] == node["status"]["allocatable"]
    assert node["metadata"]["labels"] == {
        "kubernetes.io/hostname": "sim-node-001",
        "topology.kubernetes.io/zone": "a",
    }
    assert node["spec"]["taints"] == [
        {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}
    ]
    assert is_kwok_managed(node)


@pytest.mark.parametrize(
    ("text", "taint"),
    [
        ("nvidia.com/gpu=present:NoSchedule", {"key": "nvidia.com/gpu", "value": "present",
                                               "effect": "NoSchedule"}),
        ("dedicated:NoExecute", {"key": "dedicated", "effect": "NoExecute"}),
        ("a=b:c:PreferNoSchedule", {"key": "a", "value": "b:c", "effect": "PreferNoSchedule"}),
    ],
)  # fmt: skip
def test_parse_taint(text: str, taint: dict[str, str]) -> None:
    assert parse_taint(text) == taint


@pytest.mark.parametrize(
    "text", ["gpu=present", "gpu=present:Sometimes", ":NoSchedule", "bad key:NoSchedule"]
)
def test_parse_taint_refuses_what_the_api_would(text: str) -> None:
    with pytest.raises(ShapeError, match="taint"):
        parse_taint(text)


def test_parse_label_and_resource() -> None:
    assert parse_label("topology.kubernetes.io/zone=a") == ("topology.kubernetes.io/zone", "a")
    assert parse_label("empty=") == ("empty", "")
    assert parse_resource("example.com/fpga=2") == ("example.com/fpga", "2")
    for bad in ("novalue", "=x", "-x=1"):
        with pytest.raises(ShapeError, match="label"):
            parse_label(bad)
    with pytest.raises(ShapeError, match="resource"):
        parse_resource("example.com/fpga=")


def test_next_names_continue_the_numbering() -> None:
    assert next_names("sim", [], 2) == ["sim-001", "sim-002"]
    existing = ["sim-001", "sim-007", "other-009", "sim-x", "simulated-100"]
    assert next_names("sim", existing, 2) == ["sim-008", "sim-009"]


def test_cli_parses_nodes_add() -> None:
    args = build_parser().parse_args(
        ["dev-cluster", "nodes", "add", "--count", "8", "--cpu", "8", "--memory", "32Gi",
         "--gpus", "1", "--label", "topology.kubernetes.io/zone=a",
         "--taint", "nvidia.com/gpu=present:NoSchedule"]
    )  # fmt: skip
    assert (args.action, args.nodes_action, args.count, args.gpus) == ("nodes", "add", 8, 1)
    assert args.label == ["topology.kubernetes.io/zone=a"]
    assert args.taint == ["nvidia.com/gpu=present:NoSchedule"]
    assert args.wait is True
    up = build_parser().parse_args(["dev-cluster", "up", "--no-kwok"])
    assert (up.kwok, up.controller_manager) == (False, True)


# -- kwok --------------------------------------------------------------------------------


def _stages() -> dict[str, dict[str, Any]]:
    docs = list(yaml.safe_load_all(kwok.STAGES_FILE.read_text()))
    assert all(d["apiVersion"] == "kwok.x-k8s.io/v1alpha1" and d["kind"] == "Stage" for d in docs)
    return {d["metadata"]["name"]: d for d in docs}


def test_kwok_stages_cover_the_node_and_pod_lifecycle() -> None:
    stages = _stages()
    assert set(stages) == {
        "node-initialize",
        "node-heartbeat-with-lease",
        "pod-ready",
        "pod-complete",
        "pod-fail",
        "pod-terminate",
        "pod-delete",
    }
    # The completion annotations the stages read are the ones devcluster.kwok documents.
    text = kwok.STAGES_FILE.read_text()
    for annotation in (kwok.COMPLETE_AFTER, kwok.FAIL_AFTER, kwok.EXIT_CODE):
        assert annotation in text
    # A deleted pod ends at its deletionTimestamp (its grace period), not before.
    terminate = stages["pod-terminate"]["spec"]["delay"]
    assert terminate["durationFrom"]["expressionFrom"] == ".metadata.deletionTimestamp"
    # Nodes are taken over only once their shape is written (see kwok_stages.yaml).
    keys = [e["key"] for e in stages["node-initialize"]["spec"]["selector"]["matchExpressions"]]
    assert ".status.allocatable" in keys


def test_kwok_is_pinned_and_told_which_nodes_to_manage(tmp_path: Path) -> None:
    version = kwok.kwok_version(REPO)
    assert version == "v0.8.0"
    assert kwok.KWOK.path(REPO).parent.name == f"kwok-{version}"
    assert (REPO / "hack" / "kwok" / "go.sum").is_file()
    assert kwok.KWOK.ldflags("", version) == [f"-X sigs.k8s.io/kwok/pkg/consts.Version={version}"]
    args = kwok.kwok_args(tmp_path / "kwok.kubeconfig", 1234)
    assert "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake" in args
    assert "--server-address=127.0.0.1:1234" in args


# -- the control plane's shape --------------------------------------------------------------


def test_controller_manager_is_built_with_the_control_plane() -> None:
    assert "kube-controller-manager" in build.BINARIES
    for minor in ("1.35", "1.37"):
        tools = (REPO / "hack" / "controlplane" / f"k8s-{minor}" / "tools.go").read_text()
        assert '"k8s.io/kubernetes/cmd/kube-controller-manager/app"' in tools


def test_only_missing_binaries_are_built(tmp_path: Path) -> None:
    release = build.get_release("1.35")
    command = build._build_command(
        Path("go"), release, tmp_path, ["k8s.io/kubernetes/cmd/kube-controller-manager"]
    )
    assert command[-1] == "k8s.io/kubernetes/cmd/kube-controller-manager"
    assert f"-X k8s.io/component-base/version.gitVersion={release.kubernetes}" in command[5]


def test_controllers_skip_only_node_lifecycle() -> None:
    assert CONTROLLERS == ("*", "-node-lifecycle-controller")
    assert Components().describe() == (
        "kube-scheduler: no, kube-controller-manager: yes, kwok: yes"
    )
