"""The scheduler through real outages of its API server, on a control plane of its own
(these tests restart kube-apiserver, which the session's other tests must not see)."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from devcluster import ClusterInfo, ControlPlane
from devcluster.nodes import node_manifest
from tests.e2e.conftest import (
    KubeRequest,
    _create_node,
    _raw_request,
    delete_namespace,
    install_crds,
    new_namespace,
)
from tests.e2e.k8s import pod_manifest, wait_until
from tests.e2e.outage import PodWatchOutage, restart_apiserver
from tests.e2e.scheduler_process import SchedulerProcess


@dataclass
class Plane:
    info: ClusterInfo
    core: client.CoreV1Api
    request: KubeRequest
    nodes: list[str] = field(default_factory=list)

    def node(self, name: str, **kwargs: Any) -> None:
        _create_node(self.core, node_manifest(name, **kwargs))
        self.nodes.append(name)


def _progress(message: str) -> None:
    print(f"[devcluster] {message}", file=sys.__stderr__, flush=True)


@pytest.fixture(scope="module")
def plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Plane]:
    state_dir = tmp_path_factory.mktemp("controlplane-outages")
    control_plane = ControlPlane(progress=_progress)
    info = control_plane.up(state_dir)
    api: client.ApiClient = config.new_client_from_config(  # type: ignore[no-untyped-call]
        config_file=str(info.kubeconfig)
    )
    try:
        install_crds(str(info.kubeconfig))
        yield Plane(info, client.CoreV1Api(api), _raw_request(api))
    finally:
        api.close()  # type: ignore[no-untyped-call]
        control_plane.down(state_dir)


@pytest.fixture
def ns(plane: Plane) -> Iterator[str]:
    name = new_namespace(plane.core)
    yield name
    delete_namespace(plane.core, name)
    for node in plane.nodes:
        try:
            plane.core.delete_node(node)
        except ApiException as exc:
            if exc.status != 404:
                raise
    plane.nodes.clear()


def _metric(proc: SchedulerProcess, name: str, labels: str) -> float:
    for line in proc.metrics().splitlines():
        if line.startswith((f"{name}{{", f"{name} ")) and labels in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def _node_of(plane: Plane, ns: str, pod: str) -> str:
    return plane.core.read_namespaced_pod(pod, ns).spec.node_name or ""


def test_a_long_pod_watch_outage_overcommits_nothing(plane: Plane, ns: str, tmp_path: Path) -> None:
    """Bound during a 40 s pod-watch outage, pod a is never confirmed by the watch; it must
    keep its node's capacity all along (an assumption that expired after 30 s let b onto the
    same full node). Deleted during the outage, a lets go once the watch is back."""
    outage = PodWatchOutage(plane.request, str(plane.info.kubeconfig), tmp_path)
    name = "outage-scheduler"
    proc = SchedulerProcess(outage.kubeconfig, tmp_path, name=name).start()
    try:
        for pod in ("a", "b"):  # known to the scheduler, unschedulable: no node yet
            plane.core.create_namespaced_pod(ns, pod_manifest(pod, cpu="1500m", scheduler=name))
        wait_until(
            lambda: (
                _metric(proc, "scheduler_schedule_attempts_total", 'result="unschedulable"') >= 2
            ),
            what="both pods tried",
        )
        with outage.pods_unwatchable(plane.info) as plane.info:
            plane.node("only", cpu="2", memory="4Gi")
            first = wait_until(
                lambda: _node_of(plane, ns, "a") or _node_of(plane, ns, "b"),
                timeout=60,
                what="one pod bound during the outage",
            )
            assert first == "only"
            placed, other = ("a", "b") if _node_of(plane, ns, "a") else ("b", "a")
            time.sleep(40)
            assert _node_of(plane, ns, other) == "", f"{other} over-commits node 'only'"
            assumed = _metric(proc, "scheduler_cache_size", 'type="assumed_pods"')
            assert assumed == 1, "the outage was real: the binding was never confirmed"
            plane.core.delete_namespaced_pod(placed, ns, grace_period_seconds=0)
        # Once the watch is back (the reflector's next retry: its back-off is at most 45 s),
        # the deletion is seen and the node is free for the other pod.
        wait_until(lambda: _node_of(plane, ns, other) == "only", timeout=90, what=f"{other} bound")
    finally:
        proc.stop()


def test_events_and_conditions_are_written_after_an_api_outage(
    plane: Plane, ns: str, tmp_path: Path
) -> None:
    """Reports queue behind a small request budget (4/s) when kube-apiserver restarts:
    the ones due while it is away are retried, none is lost."""
    name = "outage-reports"
    budget = ("--kube-api-qps", "4", "--kube-api-burst", "4")
    proc = SchedulerProcess(str(plane.info.kubeconfig), tmp_path, *budget, name=name).start()
    names = [f"r-{i}" for i in range(20)]
    try:
        for pod in names:  # no node at all: each gets a FailedScheduling event and condition
            plane.core.create_namespaced_pod(ns, pod_manifest(pod, scheduler=name))
        wait_until(
            lambda: (
                _metric(proc, "scheduler_schedule_attempts_total", 'result="unschedulable"')
                >= len(names)
            ),
            what="every pod tried (its report queued)",
        )
        plane.info = restart_apiserver(plane.info)

        def missing() -> list[str]:
            events = plane.core.list_namespaced_event(ns).items
            told = {e.involved_object.name for e in events if e.reason == "FailedScheduling"}
            missed = []
            for pod in names:
                obj = plane.core.read_namespaced_pod(pod, ns)
                condition = next(
                    (c for c in obj.status.conditions or [] if c.type == "PodScheduled"), None
                )
                if condition is None or condition.status != "False" or pod not in told:
                    missed.append(pod)
            return missed

        # Within the minute in which a repeat of the same message is held back: what
        # arrives was retried, not reported anew.
        try:
            wait_until(lambda: not missing(), timeout=45, interval=1, what="every report")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; never written: {missing()}") from None
        assert _metric(proc, "workload_scheduler_reports_dropped_total", "") == 0
    finally:
        proc.stop()


def test_a_relist_drops_gang_members_deleted_while_not_watching(
    plane: Plane, ns: str, tmp_path: Path
) -> None:
    """A member of another scheduler, deleted during a pod-watch outage, must not keep
    counting towards the gang's quorum after the relist (it let the gang's own members pass
    their gate with 1 real pod of 2)."""
    outage = PodWatchOutage(plane.request, str(plane.info.kubeconfig), tmp_path)
    name = "outage-gangs"
    labels = {"workload-scheduler.io/workload": "w", "workload-scheduler.io/pod-group": "g"}
    plane.request(
        "POST",
        f"/apis/workload-scheduler.io/v1alpha1/namespaces/{ns}/workloads",
        {
            "apiVersion": "workload-scheduler.io/v1alpha1",
            "kind": "Workload",
            "metadata": {"name": "w"},
            "spec": {"podGroups": [{"name": "g", "policy": {"gang": {"minCount": 2}}}]},
        },
    )
    plane.core.create_namespaced_pod(
        ns, pod_manifest("theirs", scheduler="someone-else", labels=labels)
    )
    proc = SchedulerProcess(outage.kubeconfig, tmp_path, name=name).start()
    try:
        with outage.pods_unwatchable(plane.info) as plane.info:
            plane.core.delete_namespaced_pod("theirs", ns, grace_period_seconds=0)
        plane.core.create_namespaced_pod(ns, pod_manifest("ours", scheduler=name, labels=labels))

        def message() -> str:
            events = plane.core.list_namespaced_event(ns).items
            notes = [
                e.message
                for e in events
                if e.involved_object.name == "ours" and e.reason == "FailedScheduling"
            ]
            return notes[-1] if notes else ""

        # Seen once the watch is back (its next retry, at most 45 s away).
        text = wait_until(message, timeout=90, interval=1, what="why 'ours' waits")
        assert "1 of 2 pods exist" in text, text
    finally:
        proc.stop()
