"""Jobs as gangs on a real API server: the annotation, the kopf Job controller, membership.

Each test runs on the 1.35 control plane (native v1alpha1 Workload, and our CRD when a
topology key is asked for) and on the 1.37 one (PodGroups). Where the control plane runs
kube-controller-manager (its Lease exists), the Job controller makes the pods; where it
does not, the test makes them as the Job controller would (owned by the Job, its
selector labels, no gang fields), which is all the scheduler looks at.
"""

from __future__ import annotations

import signal
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from kubernetes import client

from tests.e2e.conftest import (
    ClusterEnv,
    GangEnv,
    _ignore_not_found,
    delete_namespace,
    new_namespace,
)
from tests.e2e.gang_modes import GangMode
from tests.e2e.jobs import controller_manager_runs, create_job, job_pods
from tests.e2e.k8s import wait_until
from tests.e2e.scheduler_process import SchedulerProcess

GANG = "workload-scheduler.io/gang"
REPLACED = 150.0
"""Seconds to wait for replacements: kube-controller-manager backs off after failures."""
RECORDED = "workload-scheduler.io/group-object"


@dataclass
class JobEnv(GangEnv):
    release: str = "1.35"
    label: str = field(default_factory=lambda: f"jobs-{uuid.uuid4().hex[:6]}")
    """Every node of this test carries it, and every pod selects it (no stray nodes)."""

    @property
    def request(self) -> Any:
        return self.cluster.request

    def node(self, name: str, **kwargs: Any) -> Any:
        labels = {**kwargs.pop("labels", {}), "e2e-jobs": self.label}
        return super().node(f"{self.label}-{name}", labels=labels, **kwargs)

    @property
    def controller_manager(self) -> bool:
        return controller_manager_runs(self.request)

    def create_job(
        self,
        name: str,
        count: int,
        annotations: dict[str, str] | None = None,
        *,
        cpu: str = "1",
        scheduling: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        return create_job(
            self.request,
            self.ns,
            name,
            count,
            annotations,
            scheduler=self.scheduler_name,
            node_selector={"e2e-jobs": self.label},
            cpu=cpu,
            scheduling=scheduling,
        )

    def job(self, name: str) -> dict[str, Any]:
        return self.request("GET", f"/apis/batch/v1/namespaces/{self.ns}/jobs/{name}")

    def job_pods(self, job: dict[str, Any], indexes: range | list[int]) -> None:
        job_pods(self.request, job, indexes)

    def pods(self, job: str) -> list[Any]:
        return [
            p
            for p in self.core.list_namespaced_pod(self.ns).items
            if (p.metadata.labels or {}).get("batch.kubernetes.io/job-name") == job
            and not p.metadata.deletion_timestamp
        ]

    def bound(self, job: str) -> dict[str, str]:
        return {p.metadata.name: p.spec.node_name for p in self.pods(job) if p.spec.node_name}

    def job_events(self, name: str) -> list[dict[str, Any]]:
        items = self.request("GET", f"/apis/events.k8s.io/v1/namespaces/{self.ns}/events")["items"]
        return [e for e in items if e.get("regarding", {}).get("name") == name]


def job_env(release: str, cluster: ClusterEnv) -> JobEnv:
    mode = GangMode("v1beta1" if release == "1.37" else "v1alpha1", cluster.request)
    return JobEnv(mode, new_namespace(cluster.core), cluster, [], release)


@pytest.fixture(params=["1.35", "1.37"])
def jobs(request: pytest.FixtureRequest) -> Iterator[JobEnv]:
    cluster: ClusterEnv = request.getfixturevalue(
        "cluster_137" if request.param == "1.37" else "cluster_135"
    )
    env = job_env(request.param, cluster)
    try:
        yield env
    finally:
        delete_namespace(cluster.core, env.ns)
        for name in env.nodes:
            _ignore_not_found(cluster.core.delete_node, name)


def expected_group(env: JobEnv, name: str, *, topology: bool = False) -> str:
    if env.release == "1.37":
        return f"podgroups.scheduling.k8s.io/{name}"
    if topology:  # v1alpha1 Workloads have no constraints: our CRD carries it
        return f"workloads.workload-scheduler.io/{name}"
    return f"workloads.scheduling.k8s.io/{name}"


def group_path(env: JobEnv, recorded: str) -> str:
    resource, name = recorded.split("/")
    plural, group = resource.split(".", 1)
    version = {
        "scheduling.k8s.io": env.cluster.podgroup_version or "v1alpha1",
        "workload-scheduler.io": "v1alpha1",
    }[group]
    if plural == "workloads" and group == "scheduling.k8s.io":
        version = "v1alpha1"
    return f"/apis/{group}/{version}/namespaces/{env.ns}/{plural}/{name}"


def recorded_group(env: JobEnv, name: str) -> str:
    return wait_until(
        lambda: env.job(name)["metadata"].get("annotations", {}).get(RECORDED),
        what=f"the group object recorded on Job {name}",
    )


def settle(seconds: float = 2.0) -> None:
    time.sleep(seconds)


def test_an_annotated_job_becomes_a_gang_owned_by_the_job(jobs: JobEnv) -> None:
    for i in range(3):
        jobs.node(f"n{i}", cpu="1", memory="4Gi")
    job = jobs.create_job("train", 4, {GANG: "true"})
    recorded = recorded_group(jobs, "train")
    assert recorded == expected_group(jobs, "train")
    group = jobs.request("GET", group_path(jobs, recorded))
    (owner,) = group["metadata"]["ownerReferences"]
    assert owner["uid"] == job["metadata"]["uid"] and owner["controller"] is True
    # kopf's bookkeeping stays under our prefix, and it adds no finalizer to the Job.
    meta = jobs.job("train")["metadata"]
    assert not meta.get("finalizers")
    assert all(k.startswith("workload-scheduler.io/") for k in meta["annotations"]), meta
    assert any(e["reason"] == "GangCreated" for e in jobs.job_events("train"))

    # Room for 3 of 4: nothing is bound, however long we wait.
    jobs.job_pods(job, range(4))
    wait_until(lambda: len(jobs.pods("train")) == 4, what="4 pods of the Job")
    settle()
    assert jobs.bound("train") == {}
    jobs.node("n3", cpu="1", memory="4Gi")
    placed = wait_until(
        lambda: len(jobs.bound("train")) == 4 and jobs.bound("train"), what="all 4 bound"
    )
    assert len(set(placed.values())) == 4


def test_pods_of_a_job_without_the_annotation_are_ordinary_pods(jobs: JobEnv) -> None:
    jobs.node("n0", cpu="2", memory="4Gi")
    job = jobs.create_job("plain", 3)
    jobs.job_pods(job, range(3))
    wait_until(lambda: len(jobs.bound("plain")) == 2, what="2 of 3 bound one by one")
    settle(1)
    assert len(jobs.bound("plain")) == 2
    assert "annotations" not in jobs.job("plain")["metadata"] or not any(
        k.startswith("workload-scheduler.io/") for k in jobs.job("plain")["metadata"]["annotations"]
    )


def test_bad_annotations_are_an_event_on_the_job_and_its_pods_wait(jobs: JobEnv) -> None:
    jobs.node("n0", cpu="4", memory="4Gi")
    job = jobs.create_job("bad", 2, {GANG: "true", "workload-scheduler.io/min-count": "3"})
    event = wait_until(
        lambda: next(
            (e for e in jobs.job_events("bad") if e["reason"] == "InvalidGangAnnotation"), None
        ),
        what="the InvalidGangAnnotation event",
    )
    assert event["type"] == "Warning"
    assert event["note"] == (
        "annotation workload-scheduler.io/min-count must be a whole number from 1 to 2 "
        "(the Job's parallelism), not '3'"
    )
    assert RECORDED not in jobs.job("bad")["metadata"].get("annotations", {})
    jobs.job_pods(job, range(2))
    wait_until(lambda: len(jobs.pods("bad")) == 2, what="the Job's pods")
    settle()
    assert jobs.bound("bad") == {}
    pod = jobs.pods("bad")[0]
    message = wait_until(
        lambda: next(
            (
                c.message
                for c in (
                    jobs.core.read_namespaced_pod(pod.metadata.name, jobs.ns).status.conditions
                    or []
                )
                if c.type == "PodScheduled"
            ),
            None,
        ),
        what="the pod's PodScheduled condition",
    )
    assert message.startswith("Job " + jobs.ns + "/bad: annotation workload-scheduler.io/min-count")


def test_replacements_join_their_gang_in_its_domain_and_a_new_gang_is_all_or_nothing(
    jobs: JobEnv,
) -> None:
    for rack in ("a", "b"):
        for i in range(3):
            jobs.node(f"{rack}{i}", cpu="1", memory="4Gi", labels={"rack": rack})
    annotations = {GANG: "true", "workload-scheduler.io/topology-key": "rack"}
    job = jobs.create_job("tp", 3, annotations)
    assert recorded_group(jobs, "tp") == expected_group(jobs, "tp", topology=True)
    jobs.job_pods(job, range(3))
    placed = wait_until(lambda: len(jobs.bound("tp")) == 3 and jobs.bound("tp"), what="gang bound")
    racks = {n.split("-")[-1][0] for n in placed.values()}
    assert len(racks) == 1, placed
    (rack,) = racks

    # A member fails: its replacement joins the running gang, in the same rack. (The Job
    # controller waits out its pod-failure back-off before it replaces a pod.)
    victim = next(iter(placed))
    jobs.core.delete_namespaced_pod(victim, jobs.ns, grace_period_seconds=0)
    wait_until(lambda: victim not in {p.metadata.name for p in jobs.pods("tp")}, what="victim gone")
    jobs.job_pods(job, [0])
    wait_until(lambda: len(jobs.bound("tp")) == 3, timeout=REPLACED, what="the replacement bound")
    assert {n.split("-")[-1][0] for n in jobs.bound("tp").values()} == {rack}

    # Every pod recreated, with room for only 2 in any rack: all or nothing again.
    other = "b" if rack == "a" else "a"
    jobs.core.delete_node(f"{jobs.label}-{other}0")
    jobs.core.patch_node(f"{jobs.label}-{rack}0", {"spec": {"unschedulable": True}})
    old = {pod.metadata.name for pod in jobs.pods("tp")}
    for name in old:
        jobs.core.delete_namespaced_pod(name, jobs.ns, grace_period_seconds=0)
    wait_until(lambda: not old & {p.metadata.name for p in jobs.pods("tp")}, what="old pods gone")
    jobs.job_pods(job, range(3))
    wait_until(lambda: len(jobs.pods("tp")) == 3, timeout=REPLACED, what="3 new pods")
    settle()
    assert jobs.bound("tp") == {}
    jobs.core.patch_node(f"{jobs.label}-{rack}0", {"spec": {"unschedulable": False}})
    placed = wait_until(lambda: len(jobs.bound("tp")) == 3 and jobs.bound("tp"), what="regang")
    assert {n.split("-")[-1][0] for n in placed.values()} == {rack}


def test_workload_with_job_on_1_37_gets_its_podgroup_from_the_job_controller(
    cluster_137: ClusterEnv,
) -> None:
    """Kubernetes 1.37's own path (``WorkloadWithJob``): the Job says ``.spec.scheduling``,
    kube-controller-manager's Job controller makes the Workload and PodGroup and puts
    ``spec.schedulingGroup`` on the pods, and our scheduler places the gang. No
    hand-written group object, no annotation."""
    env = job_env("1.37", cluster_137)
    try:
        if not env.controller_manager:
            pytest.skip("this control plane runs no kube-controller-manager")
        for i in range(2):
            env.node(f"n{i}", cpu="1", memory="4Gi")
        scheduling = {"schedulingPolicy": {"gang": {"minCount": 3}}}
        job = env.create_job("wwj", 3, scheduling=scheduling)
        if job["spec"].get("scheduling") is None:
            pytest.skip("kube-apiserver dropped .spec.scheduling (WorkloadWithJob gate off)")
        pods = wait_until(lambda: len(env.pods("wwj")) == 3 and env.pods("wwj"), what="3 pods")
        group = {p.metadata.name: (p.spec.scheduling_group or {}) for p in pods}
        assert all(group.values()), f"no spec.schedulingGroup on the Job's pods: {group}"
        assert RECORDED not in env.job("wwj")["metadata"].get("annotations", {})
        settle()
        assert env.bound("wwj") == {}  # room for 2 of 3: all or nothing
        env.node("n2", cpu="1", memory="4Gi")
        placed = wait_until(lambda: len(env.bound("wwj")) == 3 and env.bound("wwj"), what="gang")
        assert len(set(placed.values())) == 3
    finally:
        delete_namespace(env.core, env.ns)
        for name in env.nodes:
            _ignore_not_found(env.core.delete_node, name)


def test_sigterm_stops_the_scheduler_with_its_job_controller(
    cluster_135: ClusterEnv, scheduler_logs: Any
) -> None:
    """kopf sets SIGTERM/SIGINT handlers of its own when it starts; ours must win, so a
    SIGTERM stops the whole scheduler at once and cleanly."""
    proc = SchedulerProcess(cluster_135.kubeconfig, scheduler_logs, name="jobs-sigterm").start()
    try:
        wait_until(lambda: "job controller started" in proc.log_tail(), what="kopf running")
        assert proc.proc is not None
        started = time.monotonic()
        proc.proc.send_signal(signal.SIGTERM)
        assert proc.proc.wait(10) == 0, proc.log_tail()
        assert time.monotonic() - started < 5, proc.log_tail()
        assert '"event": "stopped"' in proc.log_tail()
    finally:
        proc.stop()


def test_a_job_annotated_after_creation_gets_its_gang(jobs: JobEnv) -> None:
    jobs.create_job("late", 2)
    settle(1)
    assert RECORDED not in jobs.job("late")["metadata"].get("annotations", {})
    batch = client.BatchV1Api(jobs.core.api_client)
    batch.patch_namespaced_job("late", jobs.ns, {"metadata": {"annotations": {GANG: "true"}}})
    assert recorded_group(jobs, "late") == expected_group(jobs, "late")
