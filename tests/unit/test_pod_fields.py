"""Pod fields we do not know, where placement may read them, refuse the pod in words."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from scheduler.api.watch import Reflector
from scheduler.framework.cycle import NodesView
from scheduler.framework.plugins import UnsupportedFeatures
from scheduler.framework.podinfo import make_pod_info
from scheduler.framework.signature import batchable
from scheduler.framework.types import Unresolvable
from scheduler.model import pod_fields
from scheduler.model.objects import Pod, decode_pod

# kubernetes/api core/v1 PodSpec at master after v0.37.0-beta.0 (json names, in order).
UPSTREAM_POD_SPEC = (
    "volumes",
    "initContainers",
    "containers",
    "ephemeralContainers",
    "restartPolicy",
    "terminationGracePeriodSeconds",
    "activeDeadlineSeconds",
    "dnsPolicy",
    "nodeSelector",
    "serviceAccountName",
    "serviceAccount",
    "automountServiceAccountToken",
    "nodeName",
    "hostNetwork",
    "hostPID",
    "hostIPC",
    "shareProcessNamespace",
    "securityContext",
    "imagePullSecrets",
    "hostname",
    "subdomain",
    "affinity",
    "schedulerName",
    "tolerations",
    "hostAliases",
    "priorityClassName",
    "priority",
    "dnsConfig",
    "readinessGates",
    "runtimeClassName",
    "enableServiceLinks",
    "preemptionPolicy",
    "overhead",
    "topologySpreadConstraints",
    "setHostnameAsFQDN",
    "os",
    "hostUsers",
    "schedulingGates",
    "resourceClaims",
    "resources",
    "hostnameOverride",
    "schedulingGroup",
    "evictionResponders",
    "workloadRef",  # 1.35 only
)

TERM = {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}
SELECTOR = {"matchLabels": {"app": "x"}, "matchExpressions": [{"key": "a", "operator": "Exists"}]}
POD_TERM = {
    "labelSelector": SELECTOR,
    "namespaces": ["default"],
    "topologyKey": "kubernetes.io/hostname",
    "namespaceSelector": {},
    "matchLabelKeys": ["pod-template-hash"],
    "mismatchLabelKeys": ["tenant"],
}
FULL: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "p", "namespace": "default", "uid": "u", "newMetaField": 1},
    "spec": {
        "containers": [
            {
                "name": "app",
                "image": "busybox",
                "resources": {
                    "requests": {"cpu": "1"},
                    "limits": {"cpu": "1"},
                    "claims": [{"name": "c", "request": "r"}],
                },
                "ports": [
                    {
                        "name": "http",
                        "containerPort": 80,
                        "hostPort": 8080,
                        "hostIP": "0.0.0.0",
                        "protocol": "TCP",
                    }
                ],
                "livenessProbe": {"exec": {"command": ["true"]}},
                "aNewContainerField": {"anything": True},  # not read by placement: fine
            }
        ],
        "initContainers": [{"name": "init", "image": "busybox", "restartPolicy": "Always"}],
        "affinity": {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [TERM]},
                "preferredDuringSchedulingIgnoredDuringExecution": [
                    {"weight": 1, "preference": TERM}
                ],
            },
            "podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [POD_TERM]},
            "podAntiAffinity": {
                "preferredDuringSchedulingIgnoredDuringExecution": [
                    {"weight": 10, "podAffinityTerm": POD_TERM}
                ]
            },
        },
        "topologySpreadConstraints": [
            {
                "maxSkew": 1,
                "topologyKey": "zone",
                "whenUnsatisfiable": "DoNotSchedule",
                "labelSelector": SELECTOR,
                "minDomains": 2,
                "nodeAffinityPolicy": "Honor",
                "nodeTaintsPolicy": "Ignore",
                "matchLabelKeys": ["pod-template-hash"],
            }
        ],
        "tolerations": [
            {"key": "k", "operator": "Equal", "value": "v", "effect": "NoExecute"},
            {"operator": "Exists", "tolerationSeconds": 300},
        ],
        "resources": {"requests": {"cpu": "2"}},
        "resourceClaims": [{"name": "c", "resourceClaimTemplateName": "t"}],
        "schedulingGates": [{"name": "wait"}],
        "schedulingGroup": {"podGroupName": "train"},
        "workloadRef": {"name": "w", "podGroup": "g", "podGroupReplicaKey": "0"},
        "nodeSelector": {"zone": "a"},
        "nodeName": "",
        "schedulerName": "workload-scheduler",
        "restartPolicy": "Always",
        "terminationGracePeriodSeconds": 30,
        "activeDeadlineSeconds": 60,
        "dnsPolicy": "None",
        "dnsConfig": {"nameservers": ["1.1.1.1"]},
        "serviceAccountName": "default",
        "serviceAccount": "default",
        "automountServiceAccountToken": False,
        "hostNetwork": False,
        "hostPID": False,
        "hostIPC": False,
        "shareProcessNamespace": False,
        "securityContext": {"runAsNonRoot": True},
        "imagePullSecrets": [{"name": "s"}],
        "hostname": "h",
        "subdomain": "s",
        "hostAliases": [{"ip": "10.0.0.1", "hostnames": ["x"]}],
        "priorityClassName": "high",
        "priority": 1000,
        "readinessGates": [{"conditionType": "x"}],
        "runtimeClassName": "rc",
        "enableServiceLinks": False,
        "preemptionPolicy": "Never",
        "overhead": {"cpu": "10m"},
        "setHostnameAsFQDN": False,
        "os": {"name": "linux"},
        "hostUsers": True,
        "hostnameOverride": "h",
        "ephemeralContainers": [{"name": "debug", "image": "busybox"}],
        "evictionResponders": [],
        "volumes": [{"name": "v", "emptyDir": {}}],
    },
    "status": {"phase": "Pending", "aNewStatusField": 1},
}


def raw(data: dict[str, Any]) -> bytes:
    return msgspec.json.encode(data)


def with_field(path: list[str | int], name: str) -> dict[str, Any]:
    data: dict[str, Any] = msgspec.json.decode(raw(FULL))  # no shared sub-objects
    where: Any = data["spec"]
    for step in path:
        where = where[step]
    where[name] = {"x": 1}
    return data


def test_every_upstream_pod_spec_field_is_known() -> None:
    known = {f.encode_name for f in msgspec.structs.fields(pod_fields._PodSpec)}
    assert known == set(UPSTREAM_POD_SPEC)
    assert set(FULL["spec"]) == known  # the pod below uses every one of them


def test_a_pod_using_every_known_field_passes() -> None:
    assert pod_fields.unknown_field(raw(FULL)) is None


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ([], "spec.futurePlacement"),
        (["affinity"], "spec.affinity.futurePlacement"),
        (
            ["affinity", "nodeAffinity", "requiredDuringSchedulingIgnoredDuringExecution"],
            "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution"
            ".futurePlacement",
        ),
        (
            [
                "affinity",
                "nodeAffinity",
                "requiredDuringSchedulingIgnoredDuringExecution",
                "nodeSelectorTerms",
                0,
                "matchExpressions",
                0,
            ],
            "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution"
            ".nodeSelectorTerms[0].matchExpressions[0].futurePlacement",
        ),
        (
            ["affinity", "podAffinity", "requiredDuringSchedulingIgnoredDuringExecution", 0],
            "spec.affinity.podAffinity.requiredDuringSchedulingIgnoredDuringExecution[0]"
            ".futurePlacement",
        ),
        (
            [
                "affinity",
                "podAntiAffinity",
                "preferredDuringSchedulingIgnoredDuringExecution",
                0,
                "podAffinityTerm",
                "labelSelector",
            ],
            "spec.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0]"
            ".podAffinityTerm.labelSelector.futurePlacement",
        ),
        (["topologySpreadConstraints", 0], "spec.topologySpreadConstraints[0].futurePlacement"),
        (["tolerations", 1], "spec.tolerations[1].futurePlacement"),
        (["resources"], "spec.resources.futurePlacement"),
        (["containers", 0, "resources"], "spec.containers[0].resources.futurePlacement"),
        (["containers", 0, "ports", 0], "spec.containers[0].ports[0].futurePlacement"),
        (["initContainers", 0], None),  # a container's own new fields: not placement
        (["resourceClaims", 0], "spec.resourceClaims[0].futurePlacement"),
        (["schedulingGates", 0], "spec.schedulingGates[0].futurePlacement"),
        (["schedulingGroup"], "spec.schedulingGroup.futurePlacement"),
        (["securityContext"], None),  # not read by placement
        (["os"], None),
    ],
)
def test_unknown_field_is_found_where_placement_reads(
    path: list[str | int], expected: str | None
) -> None:
    assert pod_fields.unknown_field(raw(with_field(path, "futurePlacement"))) == expected


def test_malformed_values_are_left_to_the_main_decode() -> None:
    assert pod_fields.unknown_field(b'{"spec": {"tolerations": [{"key": 1}]}}') is None
    assert pod_fields.unknown_field(b'{"spec": {"affinity": []}}') is None


def pod_with(data: dict[str, Any]) -> Pod:
    encoded = raw(data)
    pod = decode_pod(encoded)
    pod_fields.inspect_pod(msgspec.Raw(encoded), pod)
    return pod


def test_refused_out_loud_and_never_batched() -> None:
    data = with_field([], "futurePlacement")
    del data["spec"]["resourceClaims"], data["spec"]["affinity"]
    del data["spec"]["topologySpreadConstraints"]
    pod = pod_with(data)
    assert pod.unknown_field == "spec.futurePlacement"
    assert not batchable(pod)
    info = make_pod_info(pod)
    assert info.signature is None
    verdict = UnsupportedFeatures().pre_filter(info, NodesView([]))
    assert verdict == Unresolvable(
        "UnsupportedFeatures",
        "workload-scheduler does not support pod field spec.futurePlacement yet",
    )


def test_known_fields_only_change_nothing() -> None:
    plain = {"metadata": {"name": "p", "uid": "u"}, "spec": {"containers": [{"name": "a"}]}}
    pod = pod_with(plain)
    assert pod.unknown_field == ""
    info = make_pod_info(pod)
    assert info.signature is not None
    assert UnsupportedFeatures().pre_filter(info, NodesView([])) is None


def test_assigned_pods_are_not_checked() -> None:
    data = with_field([], "futurePlacement")
    data["spec"]["nodeName"] = "n1"
    assert pod_with(data).unknown_field == ""


class _Client:
    def __init__(self, page: bytes) -> None:
        self.page = page

    async def get(self, path: str, params: dict[str, str]) -> bytes:
        return self.page


class _Recorder:
    def __init__(self) -> None:
        self.items: list[Pod] = []

    def replace(self, items: list[Pod]) -> None:
        self.items = items

    def apply(self, event_type: str, obj: Pod) -> None:
        self.items.append(obj)


async def test_reflector_inspects_listed_pods() -> None:
    odd = with_field(["tolerations", 0], "futurePlacement")
    page = raw({"metadata": {"resourceVersion": "7"}, "items": [odd, FULL]})
    recorder = _Recorder()
    reflector = Reflector(
        _Client(page),  # type: ignore[arg-type]
        "/api/v1/pods",
        Pod,
        recorder,
        inspect=pod_fields.inspect_pod,
    )
    await reflector._list()
    assert [p.unknown_field for p in recorder.items] == ["spec.tolerations[0].futurePlacement", ""]
    assert reflector.resource_version == "7"
