"""``python -m bench.pod_fields``: what checking a pending pod's fields costs.

A micro-measure of the hot-path price of ``scheduler.model.pod_fields`` (a pending pod
that uses a field we do not know is refused): the watch decodes every pod event into
``Pod``; for a pending pod it also runs the check, a second decode of the same bytes
that keeps nothing. Printed: microseconds per pod for each, best of five rounds, on a
pod as a Deployment's ReplicaSet makes it (managed fields, service account volume, the
default tolerations) and on the same pod with affinity and spread constraints.
"""

from __future__ import annotations

import argparse
import timeit
from typing import Any

import msgspec

from scheduler.model.objects import decode_pod
from scheduler.model.pod_fields import unknown_field

_FIELDS_V1 = {
    "f:metadata": {"f:generateName": {}, "f:labels": {".": {}, "f:app": {}}},
    "f:spec": {
        "f:containers": {'k:{"name":"web"}': {".": {}, "f:image": {}, "f:resources": {}}},
        "f:dnsPolicy": {},
        "f:restartPolicy": {},
        "f:schedulerName": {},
        "f:securityContext": {},
        "f:terminationGracePeriodSeconds": {},
    },
}
_TOLERATIONS = [
    {"key": f"node.kubernetes.io/{k}", "operator": "Exists", "effect": "NoExecute"}
    for k in ("not-ready", "unreachable")
]


def deployment_pod(constrained: bool) -> bytes:
    spec: dict[str, Any] = {
        "volumes": [
            {
                "name": "kube-api-access",
                "projected": {
                    "sources": [
                        {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                        {"configMap": {"name": "kube-root-ca.crt"}},
                    ],
                    "defaultMode": 420,
                },
            }
        ],
        "containers": [
            {
                "name": "web",
                "image": "nginx:1.27",
                "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
                "volumeMounts": [{"name": "kube-api-access", "mountPath": "/var/run/secrets"}],
                "terminationMessagePath": "/dev/termination-log",
                "imagePullPolicy": "IfNotPresent",
            }
        ],
        "restartPolicy": "Always",
        "terminationGracePeriodSeconds": 30,
        "dnsPolicy": "ClusterFirst",
        "serviceAccountName": "default",
        "securityContext": {},
        "schedulerName": "workload-scheduler",
        "tolerations": _TOLERATIONS,
        "priority": 0,
        "enableServiceLinks": True,
        "preemptionPolicy": "PreemptLowerPriority",
    }
    if constrained:
        term = {
            "labelSelector": {"matchLabels": {"app": "web"}},
            "topologyKey": "kubernetes.io/hostname",
        }
        spec["affinity"] = {
            "podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [term]}
        }
        spec["topologySpreadConstraints"] = [
            {
                "maxSkew": 1,
                "topologyKey": "topology.kubernetes.io/zone",
                "whenUnsatisfiable": "DoNotSchedule",
                "labelSelector": {"matchLabels": {"app": "web"}},
            }
        ]
    pod = {
        "metadata": {
            "name": "web-7d9f8b6c4-abcde",
            "generateName": "web-7d9f8b6c4-",
            "namespace": "default",
            "uid": "0f8e3a4c-1111-2222-3333-444455556666",
            "resourceVersion": "123456",
            "labels": {"app": "web", "pod-template-hash": "7d9f8b6c4"},
            "ownerReferences": [
                {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web", "uid": "a"}
            ],
            "managedFields": [
                {"manager": "kube-controller-manager", "fieldsType": "FieldsV1"}
                | {"fieldsV1": _FIELDS_V1}
            ],
        },
        "spec": spec,
        "status": {"phase": "Pending", "qosClass": "Burstable"},
    }
    return msgspec.json.encode(pod)


def per_pod_us(work: Any, number: int) -> float:
    return min(timeit.repeat(work, number=number, repeat=5)) / number * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--number", type=int, default=20_000, help="pods per round")
    args = parser.parse_args()
    for name, constrained in (("plain", False), ("affinity+spread", True)):
        raw = deployment_pod(constrained)
        assert unknown_field(raw) is None
        decode = per_pod_us(lambda raw=raw: decode_pod(raw), args.number)
        check = per_pod_us(lambda raw=raw: unknown_field(raw), args.number)
        print(
            f"{name:16} {len(raw):5} bytes  decode {decode:6.2f} us  check {check:6.2f} us  "
            f"(+{check / decode:.0%} of the decode, pending pods only)"
        )


if __name__ == "__main__":
    main()
