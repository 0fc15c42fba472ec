"""Pods using what we do not implement are refused out loud, never placed as if unconstrained
(what remains: resource claims; volumes have their own tests in test_volumes.py)."""

from __future__ import annotations

import re
import time
from typing import Any

from tests.e2e.k8s import failed_scheduling_message, pod_manifest, pods_by_name, wait_until
from tests.e2e.scheduler_process import SchedulerProcess


def refused_condition(core: Any, ns: str, name: str) -> str | None:
    pod = pods_by_name(core, ns).get(name)
    for c in (pod.status.conditions or []) if pod else []:
        if c.type == "PodScheduled" and c.status == "False" and c.reason == "Unschedulable":
            return str(c.message)
    return None


def test_unsupported_features_are_refused_with_event_and_condition(
    core_api: Any, namespace: str, node_factory: Any, workload_scheduler: SchedulerProcess
) -> None:
    node_factory("unsup-a", cpu="4", memory="8Gi")
    node_factory("unsup-b", cpu="4", memory="8Gi")
    pods = {
        "with-claim": (
            "resource claims (DRA)",
            {"resourceClaims": [{"name": "gpu", "resourceClaimName": "gpu-claim"}]},
        ),
    }
    for name, (_, extra) in pods.items():
        core_api.create_namespaced_pod(namespace, pod_manifest(name, extra_spec=extra))
    core_api.create_namespaced_pod(namespace, pod_manifest("plain"))
    wait_until(
        lambda: pods_by_name(core_api, namespace)["plain"].spec.node_name, what="plain pod bound"
    )
    for name, (feature, _) in pods.items():
        text = f"workload-scheduler does not support {feature} yet"
        condition = wait_until(
            lambda name=name: refused_condition(core_api, namespace, name), what=f"{name} refused"
        )
        # Then kube-scheduler's preemption tail: removing pods cannot help a refused pod.
        assert re.fullmatch(
            rf"0/\d+ nodes are available: {re.escape(text)}\. no new claims to deallocate, "
            r"preemption: 0/\d+ nodes are available: \d+ Preemption is not helpful for "
            r"scheduling\.",
            condition,
        ), condition
        event = wait_until(
            lambda name=name: failed_scheduling_message(core_api, namespace, name),
            what=f"FailedScheduling event for {name}",
        )
        assert text in event
    time.sleep(1.0)  # a retry (on the next cluster event) must not bind them either
    current = pods_by_name(core_api, namespace)
    assert all(not current[name].spec.node_name for name in pods)


# Every top-level pod field the dev cluster's API server takes without other objects
# (not: nodeName, priority and priorityClassName, preemptionPolicy, runtimeClassName and
# overhead, which admission fills or checks against objects; schedulingGates, which gate;
# resourceClaims, refused above; workloadRef / schedulingGroup, which need a gang;
# ephemeralContainers, which only the subresource sets).
EVERY_KNOWN_FIELD = {
    "restartPolicy": "Always",
    "activeDeadlineSeconds": 3600,
    "dnsPolicy": "None",
    "dnsConfig": {"nameservers": ["10.0.0.10"]},
    "serviceAccountName": "default",
    "automountServiceAccountToken": False,
    "hostNetwork": False,
    "hostPID": False,
    "hostIPC": False,
    "shareProcessNamespace": False,
    "securityContext": {"runAsNonRoot": False},
    "imagePullSecrets": [{"name": "none"}],
    "hostname": "every-field",
    "subdomain": "sub",
    "hostAliases": [{"ip": "10.0.0.1", "hostnames": ["alias"]}],
    "readinessGates": [{"conditionType": "example.com/ready"}],
    "enableServiceLinks": False,
    "setHostnameAsFQDN": False,
    "os": {"name": "linux"},
    "hostUsers": True,
    "hostnameOverride": "every-field",
    "volumes": [{"name": "scratch", "emptyDir": {}}],
    "resources": {"requests": {"cpu": "200m", "memory": "64Mi"}},
    "affinity": {
        "nodeAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {
                    "weight": 1,
                    "preference": {
                        "matchExpressions": [{"key": "kubernetes.io/os", "operator": "Exists"}]
                    },
                }
            ]
        }
    },
    "topologySpreadConstraints": [
        {
            "maxSkew": 1,
            "topologyKey": "kubernetes.io/hostname",
            "whenUnsatisfiable": "ScheduleAnyway",
            "labelSelector": {"matchLabels": {"app": "every-field"}},
        }
    ],
}


def test_a_pod_using_every_field_the_api_server_takes_is_bound(
    core_api: Any, namespace: str, node_factory: Any, workload_scheduler: SchedulerProcess
) -> None:
    """The known-field check (scheduler/model/pod_fields.py) refuses nothing the API
    server serves today: a pod with all of them, as the server returns them, binds."""
    node_factory("fields-a", cpu="4", memory="8Gi")
    manifest = pod_manifest(
        "every-field",
        labels={"app": "every-field"},
        tolerations=[{"key": "example.com/none", "operator": "Exists"}],
        extra_spec=EVERY_KNOWN_FIELD,
    )
    manifest["spec"]["containers"][0]["ports"] = [{"containerPort": 8080, "name": "http"}]
    core_api.create_namespaced_pod(namespace, manifest)
    node = wait_until(
        lambda: pods_by_name(core_api, namespace)["every-field"].spec.node_name,
        what="pod with every field bound",
    )
    assert node == "fields-a"
    assert refused_condition(core_api, namespace, "every-field") is None
