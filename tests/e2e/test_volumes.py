"""Volumes end to end, with the dev cluster's real kube-controller-manager (its PV binder
controller) doing its part: missing claims wait with kube-scheduler's message, local PVs
(``kubernetes.io/no-provisioner``, ``WaitForFirstConsumer``) bring their pod to their node
and get bound by our PreBind, an unbound Immediate claim waits for the PV controller, a
dynamically provisioned claim gets the selected node and a PV from a small provisioner loop
in the test, and a ReadWriteOncePod claim is used by one pod at a time."""

from __future__ import annotations

import contextlib
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from tests.e2e.k8s import failed_scheduling_message, pod_manifest, pods_by_name, wait_until
from tests.e2e.scheduler_process import SchedulerProcess

SELECTED_NODE = "volume.kubernetes.io/selected-node"


@pytest.fixture
def storage(core_api: client.CoreV1Api, api_client: client.ApiClient) -> Iterator[Any]:
    """Creates cluster-scoped StorageClasses and PVs for one test and deletes them after."""
    storage_api = client.StorageV1Api(api_client)
    classes: list[str] = []
    volumes: list[str] = []

    class Storage:
        suffix = uuid.uuid4().hex[:6]

        def storage_class(self, name: str, provisioner: str, mode: str) -> str:
            full = f"{name}-{self.suffix}"
            storage_api.create_storage_class(
                {
                    "apiVersion": "storage.k8s.io/v1",
                    "kind": "StorageClass",
                    "metadata": {"name": full},
                    "provisioner": provisioner,
                    "volumeBindingMode": mode,
                }
            )
            classes.append(full)
            return full

        def volume(
            self,
            name: str,
            *,
            class_name: str = "",
            size: str = "1Gi",
            node: str | None = None,
            modes: tuple[str, ...] = ("ReadWriteOnce",),
            claim_ref: dict[str, str] | None = None,
        ) -> str:
            full = f"{name}-{self.suffix}"
            spec: dict[str, Any] = {
                "capacity": {"storage": size},
                "accessModes": list(modes),
                "storageClassName": class_name,
                "persistentVolumeReclaimPolicy": "Retain",
                "hostPath": {"path": f"/tmp/{full}"},
            }
            if node is not None:
                spec.pop("hostPath")
                spec["local"] = {"path": f"/mnt/{full}"}
                spec["nodeAffinity"] = {
                    "required": {
                        "nodeSelectorTerms": [
                            {
                                "matchExpressions": [
                                    {
                                        "key": "kubernetes.io/hostname",
                                        "operator": "In",
                                        "values": [node],
                                    }
                                ]
                            }
                        ]
                    }
                }
            if claim_ref is not None:
                spec["claimRef"] = claim_ref
            core_api.create_persistent_volume(
                {
                    "apiVersion": "v1",
                    "kind": "PersistentVolume",
                    "metadata": {"name": full},
                    "spec": spec,
                }
            )
            volumes.append(full)
            return full

    yield Storage()
    for name in volumes:
        with contextlib.suppress(client.ApiException):
            core_api.delete_persistent_volume(name)
    for name in classes:
        with contextlib.suppress(client.ApiException):
            storage_api.delete_storage_class(name)


def make_claim(
    core: client.CoreV1Api,
    namespace: str,
    name: str,
    class_name: str = "",
    modes: tuple[str, ...] = ("ReadWriteOnce",),
) -> None:
    core.create_namespaced_persistent_volume_claim(
        namespace,
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": name},
            "spec": {
                "accessModes": list(modes),
                "resources": {"requests": {"storage": "1Gi"}},
                "storageClassName": class_name,
            },
        },
    )


def claim_pod(name: str, *claims: str) -> dict[str, Any]:
    volumes = [{"name": c, "persistentVolumeClaim": {"claimName": c}} for c in claims]
    return pod_manifest(name, extra_spec={"volumes": volumes})


def node_of(core: client.CoreV1Api, namespace: str, name: str) -> str | None:
    pod = pods_by_name(core, namespace).get(name)
    return pod.spec.node_name if pod else None


def bound_volume(core: client.CoreV1Api, namespace: str, name: str) -> str | None:
    pvc = core.read_namespaced_persistent_volume_claim(name, namespace)
    return str(pvc.spec.volume_name) if pvc.status.phase == "Bound" else None


def test_missing_claim_waits_with_upstream_message_then_schedules(
    core_api: client.CoreV1Api,
    namespace: str,
    node_factory: Any,
    storage: Any,
    workload_scheduler: SchedulerProcess,
) -> None:
    node_factory("vol-miss-a")
    core_api.create_namespaced_pod(namespace, claim_pod("waits", "data"))
    message = wait_until(
        lambda: failed_scheduling_message(core_api, namespace, "waits"), what="FailedScheduling"
    )
    assert 'persistentvolumeclaim "data" not found' in message, message
    assert not node_of(core_api, namespace, "waits")
    # The claim and a volume for it come: the PV controller binds them (Immediate), the
    # claim's events requeue the pod.
    storage.volume("miss-pv")
    make_claim(core_api, namespace, "data")
    wait_until(lambda: node_of(core_api, namespace, "waits"), timeout=60, what="pod bound")
    assert bound_volume(core_api, namespace, "data")


def test_unbound_immediate_claim_waits_for_the_pv_controller(
    core_api: client.CoreV1Api,
    namespace: str,
    node_factory: Any,
    storage: Any,
    workload_scheduler: SchedulerProcess,
) -> None:
    node_factory("vol-imm-a")
    klass = storage.storage_class("imm", "kubernetes.io/no-provisioner", "Immediate")
    make_claim(core_api, namespace, "data", klass)
    core_api.create_namespaced_pod(namespace, claim_pod("waits", "data"))
    message = wait_until(
        lambda: failed_scheduling_message(core_api, namespace, "waits"), what="FailedScheduling"
    )
    assert "pod has unbound immediate PersistentVolumeClaims" in message, message
    storage.volume("imm-pv", class_name=klass)
    wait_until(lambda: node_of(core_api, namespace, "waits"), timeout=60, what="pod bound")


def test_local_volume_brings_the_pod_to_its_node_and_gets_bound(
    core_api: client.CoreV1Api,
    namespace: str,
    node_factory: Any,
    storage: Any,
    workload_scheduler: SchedulerProcess,
) -> None:
    for name in ("vol-local-a", "vol-local-b", "vol-local-c"):
        node_factory(name)
    klass = storage.storage_class("local", "kubernetes.io/no-provisioner", "WaitForFirstConsumer")
    pv = storage.volume("local-pv", class_name=klass, node="vol-local-b")
    storage.volume("local-small", class_name=klass, node="vol-local-c", size="100Mi")
    make_claim(core_api, namespace, "data", klass)
    core_api.create_namespaced_pod(namespace, claim_pod("local", "data"))
    node = wait_until(lambda: node_of(core_api, namespace, "local"), timeout=60, what="bound")
    assert node == "vol-local-b"
    assert wait_until(lambda: bound_volume(core_api, namespace, "data"), what="claim bound") == pv
    # A second claim of the class finds no volume left anywhere: it waits, worded as upstream.
    make_claim(core_api, namespace, "more", klass)
    core_api.create_namespaced_pod(namespace, claim_pod("more", "more"))
    message = wait_until(
        lambda: failed_scheduling_message(core_api, namespace, "more"), what="FailedScheduling"
    )
    assert "didn't find available persistent volumes to bind" in message, message


def test_dynamic_provisioning_gets_the_selected_node(
    core_api: client.CoreV1Api,
    namespace: str,
    node_factory: Any,
    storage: Any,
    workload_scheduler: SchedulerProcess,
) -> None:
    node_factory("vol-dyn-a")
    node_factory("vol-dyn-b")
    provisioner = f"e2e.example.com/{storage.suffix}"
    klass = storage.storage_class("dyn", provisioner, "WaitForFirstConsumer")
    make_claim(core_api, namespace, "data", klass)
    stop = threading.Event()
    provisioned: dict[str, str] = {}

    def provision() -> None:
        # The external provisioner's part: a claim with the selected-node annotation gets a
        # PV pre-bound to it, with node affinity to that node; the PV controller binds them.
        while not stop.is_set():
            for pvc in core_api.list_namespaced_persistent_volume_claim(namespace).items:
                node = (pvc.metadata.annotations or {}).get(SELECTED_NODE)
                if node and pvc.metadata.name not in provisioned:
                    storage.volume(
                        f"dyn-{pvc.metadata.name}",
                        class_name=klass,
                        node=node,
                        claim_ref={
                            "namespace": namespace,
                            "name": pvc.metadata.name,
                            "uid": pvc.metadata.uid,
                        },
                    )
                    provisioned[pvc.metadata.name] = node
            stop.wait(0.2)

    worker = threading.Thread(target=provision, daemon=True)
    worker.start()
    try:
        core_api.create_namespaced_pod(namespace, claim_pod("dyn", "data"))
        node = wait_until(lambda: node_of(core_api, namespace, "dyn"), timeout=60, what="bound")
        assert provisioned == {"data": node}
        assert bound_volume(core_api, namespace, "data")
    finally:
        stop.set()
        worker.join(5)


def test_read_write_once_pod_claim_is_used_by_one_pod_at_a_time(
    core_api: client.CoreV1Api,
    namespace: str,
    node_factory: Any,
    storage: Any,
    workload_scheduler: SchedulerProcess,
) -> None:
    node_factory("vol-rwop-a")
    node_factory("vol-rwop-b")
    storage.volume("rwop-pv", modes=("ReadWriteOncePod",))
    make_claim(core_api, namespace, "data", modes=("ReadWriteOncePod",))
    wait_until(lambda: bound_volume(core_api, namespace, "data"), timeout=60, what="claim bound")
    core_api.create_namespaced_pod(namespace, claim_pod("first", "data"))
    wait_until(lambda: node_of(core_api, namespace, "first"), what="first bound")
    core_api.create_namespaced_pod(namespace, claim_pod("second", "data"))
    message = wait_until(
        lambda: failed_scheduling_message(core_api, namespace, "second"), what="FailedScheduling"
    )
    assert (
        "node has pod using PersistentVolumeClaim with the same name and ReadWriteOncePod "
        "access mode" in message
    ), message
    core_api.delete_namespaced_pod("first", namespace, grace_period_seconds=0)
    wait_until(lambda: node_of(core_api, namespace, "second"), timeout=60, what="second bound")


# -- side by side with kube-scheduler v1.35 (the dev cluster's default-scheduler) -------------


def condition_message(core: client.CoreV1Api, namespace: str, name: str) -> str | None:
    pod = pods_by_name(core, namespace).get(name)
    for c in (pod.status.conditions or []) if pod else []:
        if c.type == "PodScheduled" and c.status == "False":
            return str(c.message)
    return None


def both_refuse(core: client.CoreV1Api, namespace: str, claim: str) -> tuple[str, str]:
    """A pod using ``claim`` for each scheduler (named after it); their PodScheduled=False
    messages, ours first."""
    for scheduler in ("workload-scheduler", "default-scheduler"):
        manifest = claim_pod(scheduler, claim)
        manifest["spec"]["schedulerName"] = scheduler
        core.create_namespaced_pod(namespace, manifest)
    ours = wait_until(lambda: condition_message(core, namespace, "workload-scheduler"))
    theirs = wait_until(lambda: condition_message(core, namespace, "default-scheduler"))
    return ours, theirs


def test_missing_claim_message_matches_kube_scheduler(
    core_api: client.CoreV1Api,
    namespace: str,
    node_factory: Any,
    workload_scheduler: SchedulerProcess,
) -> None:
    node_factory("vol-cmp-miss-a")
    node_factory("vol-cmp-miss-b")
    ours, theirs = both_refuse(core_api, namespace, "data")
    assert 'persistentvolumeclaim "data" not found' in theirs, theirs
    assert ours == theirs


def test_local_volume_choice_matches_kube_scheduler(
    core_api: client.CoreV1Api,
    namespace: str,
    node_factory: Any,
    storage: Any,
    workload_scheduler: SchedulerProcess,
) -> None:
    for name in ("vol-cmp-a", "vol-cmp-b", "vol-cmp-c"):
        node_factory(name)
    klass = storage.storage_class("cmp", "kubernetes.io/no-provisioner", "WaitForFirstConsumer")
    chosen: dict[str, tuple[str, str]] = {}
    for scheduler in ("workload-scheduler", "default-scheduler"):
        # Per round: a big and a small volume on one node, a too-small one on another.
        big = storage.volume(f"cmp-big-{scheduler}", class_name=klass, size="5Gi", node="vol-cmp-b")
        small = storage.volume(
            f"cmp-small-{scheduler}", class_name=klass, size="2Gi", node="vol-cmp-b"
        )
        tiny = storage.volume(
            f"cmp-tiny-{scheduler}", class_name=klass, size="10Mi", node="vol-cmp-c"
        )
        # The volumes exist before the pod, as a user's would: the PV controller has seen
        # them (phase Available), and so, with all but certainty, have both schedulers'
        # watches (each watch is its own stream: a PV created a moment before the pod can
        # still be on its way when the pod is judged, and a scheduler picks among those it
        # has seen).
        for volume in (big, small, tiny):
            wait_until(
                lambda v=volume: core_api.read_persistent_volume(v).status.phase == "Available",
                timeout=30,
                what=f"{volume} available",
            )
        make_claim(core_api, namespace, f"data-{scheduler}", klass)
        manifest = claim_pod(scheduler, f"data-{scheduler}")
        manifest["spec"]["schedulerName"] = scheduler
        core_api.create_namespaced_pod(namespace, manifest)
        node = wait_until(lambda s=scheduler: node_of(core_api, namespace, s), timeout=60)
        volume_name = wait_until(
            lambda s=scheduler: bound_volume(core_api, namespace, f"data-{s}"), timeout=60
        )
        label = "small" if volume_name == small else "big" if volume_name == big else volume_name
        chosen[scheduler] = (node, label)
    assert chosen["workload-scheduler"] == chosen["default-scheduler"] == ("vol-cmp-b", "small")


def test_bound_local_volume_message_matches_kube_scheduler(
    core_api: client.CoreV1Api,
    namespace: str,
    node_factory: Any,
    storage: Any,
    workload_scheduler: SchedulerProcess,
) -> None:
    """A claim bound to a local PV whose node is cordoned: the other node is worded by
    VolumeBinding (v1.35 no longer narrows the nodes with a PreFilterResult)."""
    node_factory("vol-cmp-bound-a")
    node_factory("vol-cmp-bound-b", unschedulable=True)
    klass = storage.storage_class("bound", "kubernetes.io/no-provisioner", "WaitForFirstConsumer")
    pv = storage.volume(
        "bound-pv",
        class_name=klass,
        node="vol-cmp-bound-b",
        claim_ref={"namespace": namespace, "name": "data"},
    )
    make_claim(core_api, namespace, "data", klass)
    wait_until(lambda: bound_volume(core_api, namespace, "data") == pv, timeout=60)
    ours, theirs = both_refuse(core_api, namespace, "data")
    assert "didn't match PersistentVolume's node affinity" in theirs, theirs
    assert ours == theirs
