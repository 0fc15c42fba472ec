"""Jobs as gangs: the annotations, the Job controller's decisions, and the Job index."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from scheduler.api.client import ApiError
from scheduler.api.sources.discovery import ServedApis
from scheduler.controllers.jobs import (
    JobGangController,
    Outcome,
    RetryLaterError,
    group_manifest,
    group_targets,
    kopf_registry,
    kopf_settings,
)
from scheduler.gang.jobs import (
    GROUP_OBJECT_ANNOTATION,
    JobEntry,
    JobGang,
    JobIndex,
    JobRefusal,
    JobState,
    JobWait,
    is_label_key,
    job_entry,
    parse_group_object,
    parse_job_gang,
)
from scheduler.gang.model import CRD_WORKLOAD, PODGROUP, WORKLOAD, GroupKey, ObjectKey
from scheduler.model.objects import OwnerReference, Pod
from scheduler.model.refs import ObjectRef

GANG = {"workload-scheduler.io/gang": "true"}


# -- annotations ------------------------------------------------------------------------


def test_not_annotated_or_false_is_not_a_gang() -> None:
    assert parse_job_gang({}, parallelism=4, completions=4) is None
    assert (
        parse_job_gang({"workload-scheduler.io/gang": "false"}, parallelism=4, completions=4)
        is None
    )


def test_min_count_defaults_to_the_pods_run_at_once() -> None:
    assert parse_job_gang(GANG, parallelism=4, completions=8) == JobGang(4)
    assert parse_job_gang(GANG, parallelism=4, completions=2) == JobGang(2)
    assert parse_job_gang(GANG, parallelism=None, completions=None) == JobGang(1)


def test_min_count_and_topology_key() -> None:
    annotations = {
        **GANG,
        "workload-scheduler.io/min-count": "3",
        "workload-scheduler.io/topology-key": "topology.kubernetes.io/zone",
        "workload-scheduler.io/gang-timeout-seconds": "60",
    }
    assert parse_job_gang(annotations, parallelism=4, completions=4) == JobGang(
        3, "topology.kubernetes.io/zone", "60"
    )


@pytest.mark.parametrize(
    ("annotations", "expected"),
    [
        ({"workload-scheduler.io/gang": "yes"}, 'must be "true" or "false", not \'yes\''),
        (
            {**GANG, "workload-scheduler.io/min-count": "five"},
            "from 1 to 4 (the Job's parallelism)",
        ),
        ({**GANG, "workload-scheduler.io/min-count": "0"}, "not '0'"),
        ({**GANG, "workload-scheduler.io/min-count": "5"}, "not '5'"),
        ({**GANG, "workload-scheduler.io/min-count": "1000000000000"}, "from 1 to 4"),
        ({**GANG, "workload-scheduler.io/min-count": "-1"}, "not '-1'"),
        ({**GANG, "workload-scheduler.io/min-count": "²"}, "not '²'"),
        ({**GANG, "workload-scheduler.io/min-count": " 2"}, "not ' 2'"),
        ({**GANG, "workload-scheduler.io/topology-key": ""}, "must be a node label key"),
        ({**GANG, "workload-scheduler.io/topology-key": "a b"}, "not 'a b'"),
    ],
)
def test_bad_annotations_are_refused_with_the_value(
    annotations: dict[str, str], expected: str
) -> None:
    result = parse_job_gang(annotations, parallelism=4, completions=4)
    assert isinstance(result, JobRefusal), result
    assert result.reason == "InvalidGangAnnotation"
    assert expected in result.message


def test_a_job_that_runs_no_pods_is_refused() -> None:
    result = parse_job_gang(GANG, parallelism=0, completions=4)
    assert isinstance(result, JobRefusal) and "runs no pods at once" in result.message


def test_spec_scheduling_wins_over_the_annotation() -> None:
    result = parse_job_gang(GANG, parallelism=4, completions=4, has_scheduling=True)
    assert isinstance(result, JobRefusal) and result.reason == "GangAnnotationIgnored"


@pytest.mark.parametrize(
    ("key", "valid"),
    [
        ("rack", True),
        ("topology.kubernetes.io/zone", True),
        ("example.com/rack_1.a-b", True),
        ("", False),
        ("/rack", False),
        ("Example.com/rack", False),
        ("rack-", False),
        ("a" * 64, False),
        ("a/b/c", False),
    ],
)
def test_label_keys(key: str, valid: bool) -> None:
    assert is_label_key(key) is valid


def test_group_object_annotation_round_trip() -> None:
    assert parse_group_object("ns", "podgroups.scheduling.k8s.io/train") == GroupKey(
        ObjectKey(PODGROUP, "ns", "train"), ""
    )
    assert parse_group_object("ns", "workloads.workload-scheduler.io/train") == GroupKey(
        ObjectKey(CRD_WORKLOAD, "ns", "train"), "job"
    )
    assert parse_group_object("ns", "workloads.scheduling.k8s.io/t") == GroupKey(
        ObjectKey(WORKLOAD, "ns", "t"), "job"
    )
    assert parse_group_object("ns", "deployments.apps/x") is None
    assert parse_group_object("ns", "podgroups.scheduling.k8s.io/") is None


# -- the controller -----------------------------------------------------------------------


class FakeApi:
    """Answers POST/GET like the API server would for a few objects."""

    def __init__(self, *, drops_topology: bool = False) -> None:
        self.objects: dict[str, dict[str, Any]] = {}
        self.calls: list[tuple[str, str, dict[str, str]]] = []
        self.drops_topology = drops_topology
        self.fail: ApiError | None = None

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Any = None,
        body: Any = None,
    ) -> bytes:
        self.calls.append((method, path, dict(params or {})))
        if self.fail is not None:
            raise self.fail
        if method == "GET":
            if path not in self.objects:
                raise ApiError(404, b'{"reason":"NotFound"}', method, path)
            return orjson.dumps(self.objects[path])
        stored = orjson.loads(orjson.dumps(body))
        if self.drops_topology and "podgroups" in path:
            stored["spec"].pop("schedulingConstraints", None)
        key = f"{path}/{body['metadata']['name']}"
        if key in self.objects:
            raise ApiError(409, b'{"reason":"AlreadyExists"}', method, path)
        if (params or {}).get("dryRun") != "All":
            self.objects[key] = stored
        return orjson.dumps(stored)


class Events:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, bool]] = []

    def event(
        self,
        ref: ObjectRef,
        reason: str,
        message: str,
        *,
        warning: bool = False,
        action: str = "Scheduling",
    ) -> None:
        assert ref.kind == "Job" and ref.api_version == "batch/v1"
        self.events.append((reason, message, warning))


def job(annotations: dict[str, str], *, parallelism: int = 4, **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "train", "namespace": "ns", "uid": "u1", "annotations": annotations},
        "spec": {
            "parallelism": parallelism,
            "completions": parallelism,
            "template": {"spec": {"schedulerName": "workload-scheduler"}},
            **spec,
        },
    }


ALL = ServedApis(native_workloads=False, podgroup_version="v1beta1", crd_workloads=True)


def test_targets_in_order_of_preference() -> None:
    kinds = [t.kind for t in group_targets(ServedApis(True, "v1beta1", True))]
    assert kinds == [PODGROUP, WORKLOAD, CRD_WORKLOAD]
    assert group_targets(ServedApis()) == []


async def test_creates_a_podgroup_owned_by_the_job_and_records_it() -> None:
    api, events = FakeApi(), Events()
    patch: dict[str, Any] = {}
    outcome = await JobGangController(api, ALL, events).ensure(job(GANG), patch)
    assert outcome is Outcome.CREATED
    assert patch == {GROUP_OBJECT_ANNOTATION: "podgroups.scheduling.k8s.io/train"}
    pg = api.objects["/apis/scheduling.k8s.io/v1beta1/namespaces/ns/podgroups/train"]
    assert pg["spec"] == {"schedulingPolicy": {"gang": {"minCount": 4}}}
    (owner,) = pg["metadata"]["ownerReferences"]
    assert owner == {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "name": "train",
        "uid": "u1",
        "controller": True,
    }
    assert events.events == [
        (
            "GangCreated",
            "Created PodGroup (scheduling.k8s.io/v1beta1) ns/train: gang of 4 pods",
            False,
        )
    ]


async def test_topology_dropped_by_the_server_falls_back_to_the_crd() -> None:
    api, events = FakeApi(drops_topology=True), Events()
    patch: dict[str, Any] = {}
    annotations = {**GANG, "workload-scheduler.io/topology-key": "rack"}
    outcome = await JobGangController(api, ALL, events).ensure(job(annotations), patch)
    assert outcome is Outcome.CREATED
    assert patch[GROUP_OBJECT_ANNOTATION] == "workloads.workload-scheduler.io/train"
    assert (
        "POST",
        "/apis/scheduling.k8s.io/v1beta1/namespaces/ns/podgroups",
        {"dryRun": "All"},
    ) in api.calls
    wl = api.objects["/apis/workload-scheduler.io/v1alpha1/namespaces/ns/workloads/train"]
    assert wl["spec"]["podGroups"] == [
        {
            "name": "job",
            "policy": {"gang": {"minCount": 4}},
            "schedulingConstraints": {"topology": [{"key": "rack"}]},
        }
    ]
    assert "in one rack domain" in events.events[0][1]


async def test_topology_nowhere_to_keep_is_refused() -> None:
    api, events = FakeApi(), Events()
    served = ServedApis(native_workloads=True)
    annotations = {**GANG, "workload-scheduler.io/topology-key": "rack"}
    patch: dict[str, Any] = {}
    outcome = await JobGangController(api, served, events).ensure(job(annotations), patch)
    assert outcome is Outcome.REFUSED and patch == {} and api.objects == {}
    ((reason, message, warning),) = events.events
    assert reason == "GangTopologyUnsupported" and warning
    assert "Workload (scheduling.k8s.io/v1alpha1) has no topology constraints" in message


async def test_native_workload_on_1_35() -> None:
    api, events = FakeApi(), Events()
    patch: dict[str, Any] = {}
    annotations = {**GANG, "workload-scheduler.io/min-count": "2"}
    served = ServedApis(native_workloads=True, crd_workloads=True)
    await JobGangController(api, served, events).ensure(job(annotations), patch)
    assert patch[GROUP_OBJECT_ANNOTATION] == "workloads.scheduling.k8s.io/train"
    wl = api.objects["/apis/scheduling.k8s.io/v1alpha1/namespaces/ns/workloads/train"]
    assert wl["spec"] == {
        "controllerRef": {"apiGroup": "batch", "kind": "Job", "name": "train"},
        "podGroups": [{"name": "job", "policy": {"gang": {"minCount": 2}}}],
    }


async def test_existing_object_of_the_job_is_adopted_and_someone_elses_refused() -> None:
    api, events = FakeApi(), Events()
    controller = JobGangController(api, ALL, events)
    await controller.ensure(job(GANG), {})
    patch: dict[str, Any] = {}
    assert await controller.ensure(job(GANG), patch) is Outcome.ADOPTED
    assert patch[GROUP_OBJECT_ANNOTATION] == "podgroups.scheduling.k8s.io/train"
    other = job(GANG)
    other["metadata"]["uid"] = "u2"
    patch = {}
    assert await controller.ensure(other, patch) is Outcome.REFUSED
    assert patch == {} and events.events[-1][0] == "GangNameTaken"


async def test_recorded_jobs_cost_no_request() -> None:
    api, events = FakeApi(), Events()
    annotations = {**GANG, GROUP_OBJECT_ANNOTATION: "podgroups.scheduling.k8s.io/train"}
    outcome = await JobGangController(api, ALL, events).ensure(job(annotations), {})
    assert outcome is Outcome.RECORDED and api.calls == [] and events.events == []


async def test_bad_annotation_is_an_event_and_nothing_created() -> None:
    api, events = FakeApi(), Events()
    annotations = {**GANG, "workload-scheduler.io/min-count": "9"}
    patch: dict[str, Any] = {}
    outcome = await JobGangController(api, ALL, events).ensure(job(annotations), patch)
    assert outcome is Outcome.REFUSED and api.calls == [] and patch == {}
    assert events.events == [
        (
            "InvalidGangAnnotation",
            "annotation workload-scheduler.io/min-count must be a whole number from 1 to 4 "
            "(the Job's parallelism), not '9'",
            True,
        )
    ]


async def test_transient_errors_are_retried_permanent_ones_reported() -> None:
    api, events = FakeApi(), Events()
    controller = JobGangController(api, ALL, events)
    api.fail = ApiError(503, b"{}", "POST", "/x")
    with pytest.raises(RetryLaterError):
        await controller.ensure(job(GANG), {})
    api.fail = ApiError(403, b'{"message":"forbidden"}', "POST", "/x")
    assert await controller.ensure(job(GANG), {}) is Outcome.REFUSED
    assert events.events[-1][:2] == (
        "GangNotCreated",
        "could not create PodGroup (scheduling.k8s.io/v1beta1) ns/train: forbidden",
    )


async def test_only_jobs_for_this_scheduler_are_handled() -> None:
    api, events = FakeApi(), Events()
    controller = JobGangController(api, ALL, events, scheduler_name="workload-scheduler")
    other = job(GANG, template={"spec": {"schedulerName": "another-ws"}})
    assert await controller.ensure(other, {}) is Outcome.NOT_OPTED
    assert api.calls == [] and events.events == []
    default = job(GANG, template={"spec": {}})
    assert await controller.ensure(default, {}) is Outcome.REFUSED
    ((reason, message, _),) = events.events
    assert reason == "GangAnnotationIgnored"
    assert "set spec.template.spec.schedulerName: workload-scheduler" in message


async def test_no_gang_api_served() -> None:
    events = Events()
    outcome = await JobGangController(FakeApi(), ServedApis(), events).ensure(job(GANG), {})
    assert outcome is Outcome.REFUSED and events.events[0][0] == "NoGangApi"


def test_gang_timeout_is_copied_to_the_group_object() -> None:
    (target,) = group_targets(ServedApis(crd_workloads=True))
    manifest = group_manifest(
        target, namespace="ns", name="j", uid="u", gang=JobGang(2, None, "90")
    )
    assert manifest["metadata"]["annotations"] == {
        "workload-scheduler.io/gang-timeout-seconds": "90"
    }


def test_kopf_keeps_to_our_prefix_and_adds_no_finalizers() -> None:
    import kopf

    from scheduler.api.connection import Connection

    settings = kopf_settings()
    assert settings.persistence.progress_storage.prefix == "workload-scheduler.io"
    assert settings.persistence.diffbase_storage.prefix == "workload-scheduler.io"
    assert settings.posting.enabled is False
    assert settings.peering.standalone is True
    assert settings.scanning.disabled is True
    assert settings.process.ultimate_exiting_timeout is None
    controller = JobGangController(FakeApi(), ALL, Events())
    registry = kopf_registry(controller, Connection("https://x", False, lambda: "Bearer t"))
    handlers = registry._changing.get_all_handlers()
    # on.create, and on.resume (no reason, initial listing only): no update, no delete.
    assert sorted((str(h.reason), bool(h.initial)) for h in handlers) == [
        ("None", True),
        ("create", False),
    ]
    assert all(h.selector.any_name == "jobs" and h.selector.group == "batch" for h in handlers)
    assert all(h.annotations == {"workload-scheduler.io/gang": kopf.PRESENT} for h in handlers)
    # kopf's progress annotation (prefix/handler id) is none of the users' annotations.
    from scheduler.gang import jobs as job_gangs

    users = {v for k, v in vars(job_gangs).items() if k.endswith("_ANNOTATION")}
    assert all(f"workload-scheduler.io/{h.id}" not in users for h in handlers)
    # Jobs for another scheduler name are not touched at all (kopf writes nothing there).
    (when,) = {h.when for h in handlers}
    assert when is not None

    def pods_of(name: str | None) -> dict[str, Any]:
        return {"template": {"spec": {} if name is None else {"schedulerName": name}}}

    assert when(spec=pods_of("workload-scheduler")) and when(spec=pods_of(None))
    assert when(spec=pods_of("default-scheduler")) and not when(spec=pods_of("other"))
    # Finalizers are added only for deletion handlers; there are none.
    assert not any(h.requires_finalizer for h in handlers)


# -- the scheduler's Job index --------------------------------------------------------------


def owned_pod(job_name: str = "train", uid: str = "u1", **meta: Any) -> Pod:
    pod = Pod()
    pod.metadata.namespace = "ns"
    pod.metadata.name = f"{job_name}-0"
    pod.metadata.uid = "p1"
    pod.metadata.owner_references = [
        OwnerReference(api_version="batch/v1", kind="Job", name=job_name, uid=uid, controller=True)
    ]
    return pod


def entry(annotations: dict[str, str], uid: str = "u1", **spec: Any) -> JobEntry:
    return job_entry(
        "ns",
        "train",
        uid,
        annotations,
        parallelism=spec.get("parallelism", 4),
        completions=spec.get("completions", 4),
        has_scheduling=spec.get("has_scheduling", False),
    )


def test_job_entries() -> None:
    assert entry({}).state is JobState.ORDINARY
    assert entry({**GANG}, has_scheduling=True).state is JobState.ORDINARY
    assert entry({**GANG}).state is JobState.PENDING
    refused = entry({**GANG, "workload-scheduler.io/min-count": "x"})
    assert refused.state is JobState.REFUSED and refused.message.startswith("Job ns/train: ")
    gang = entry({**GANG, GROUP_OBJECT_ANNOTATION: "podgroups.scheduling.k8s.io/train"})
    assert gang == JobEntry("u1", JobState.GANG, GroupKey(ObjectKey(PODGROUP, "ns", "train"), ""))


def test_membership_follows_the_job() -> None:
    index = JobIndex()
    pod = owned_pod()
    wait = index.membership(pod)
    assert wait == JobWait("u1", "waiting for Job ns/train, which owns the pod, to be seen")
    assert index.set("ns", "train", entry({}))
    assert index.membership(pod) is None
    assert not index.set("ns", "train", entry({}))  # unchanged
    index.set("ns", "train", entry({**GANG}))
    assert isinstance(index.membership(pod), JobWait)
    index.set(
        "ns", "train", entry({**GANG, GROUP_OBJECT_ANNOTATION: "podgroups.scheduling.k8s.io/train"})
    )
    assert index.membership(pod) == GroupKey(ObjectKey(PODGROUP, "ns", "train"), "")
    # A Job of the same name but another uid (deleted and made again) is not the owner.
    index.set("ns", "train", entry({}, uid="u2"))
    assert isinstance(index.membership(pod), JobWait)
    assert index.membership(Pod()) is None  # no owner at all


# -- the whole path in the scheduler: Job watch, pod watch, registry and queue ---------------


class Pipeline:
    """PodEvents + JobEvents + the registry + the queue, as the App wires them."""

    def __init__(self) -> None:
        from scheduler.cache.cluster_cache import ClusterCache
        from scheduler.core.event_handlers import PodEvents
        from scheduler.core.job_events import JobEvents
        from scheduler.gang.registry import GangRegistry
        from scheduler.queue.scheduling_queue import SchedulingQueue

        self.index = JobIndex()
        self.gangs = GangRegistry(jobs=self.index)
        self.queue = SchedulingQueue(gate=self.gangs.gate)
        self.pods = PodEvents(
            "workload-scheduler",
            ClusterCache(),
            self.queue,
            lambda pod, message: None,
            lambda uid: None,
            self.gangs,
        )
        self.jobs = JobEvents(self.index, self.pods.jobs_changed)

    def job(self, annotations: dict[str, str], event: str = "MODIFIED", uid: str = "u1") -> None:
        import msgspec

        from scheduler.model.objects import Job

        body = {
            "metadata": {
                "name": "train",
                "namespace": "ns",
                "uid": uid,
                "annotations": annotations,
            },
            "spec": {"parallelism": 3, "completions": 3},
        }
        self.jobs.apply(event, msgspec.convert(body, Job))

    def pod(self, i: int, node: str = "", job_uid: str = "u1") -> Pod:
        from factories import make_pod

        pod = make_pod(f"train-{i}", namespace="ns", cpu="1", node_name=node)
        pod.spec.scheduler_name = "workload-scheduler"
        pod.metadata.owner_references = [
            OwnerReference(
                api_version="batch/v1", kind="Job", name="train", uid=job_uid, controller=True
            )
        ]
        self.pods.apply("ADDED", pod)
        return pod

    def where(self, pod: Pod) -> tuple[str, str]:
        qp = self.queue.get(pod.metadata.uid)
        assert qp is not None
        return qp.where, qp.gate_message


def podgroup(min_count: int) -> Any:
    import msgspec

    from scheduler.api.sources.policies import podgroup_object
    from scheduler.api.sources.shapes import PodGroup

    pg = msgspec.convert(
        {
            "metadata": {"name": "train", "namespace": "ns", "uid": "pg"},
            "spec": {"schedulingPolicy": {"gang": {"minCount": min_count}}},
        },
        PodGroup,
    )
    return podgroup_object(pg, api_version="scheduling.k8s.io/v1beta1", resource="/x")


RECORDED = {**GANG, GROUP_OBJECT_ANNOTATION: "podgroups.scheduling.k8s.io/train"}


def test_a_pod_before_its_job_waits_then_joins_the_gang() -> None:
    p = Pipeline()
    first = p.pod(0)
    assert p.where(first) == (
        "gated",
        "waiting for Job ns/train, which owns the pod, to be seen",
    )
    p.job(GANG, "ADDED")
    where, message = p.where(first)
    assert where == "gated" and message.startswith("waiting for the gang of Job ns/train")
    p.job(RECORDED)
    assert p.where(first) == (
        "gated",
        "waiting for PodGroup (scheduling.k8s.io) ns/train to appear",
    )
    p.pods.regate(p.gangs.set_object(podgroup(3)))
    assert p.where(first) == ("gated", "waiting for gang ns/train: 1 of 3 pods exist")
    second, third = p.pod(1), p.pod(2)
    assert {p.where(x)[0] for x in (first, second, third)} == {"active"}
    assert set(p.gangs.members(GroupKey(ObjectKey(PODGROUP, "ns", "train"), ""))) == {
        first.metadata.uid,
        second.metadata.uid,
        third.metadata.uid,
    }


def test_running_members_seen_before_the_job_count_once_it_is() -> None:
    """After a restart the pod list may come before the Job list: bound members of the
    gang must still count, so a replacement joins its running gang."""
    p = Pipeline()
    p.pod(0, node="n1")
    p.pod(1, node="n1")
    replacement = p.pod(2)
    key = GroupKey(ObjectKey(PODGROUP, "ns", "train"), "")
    assert p.gangs.members(key) == {}
    p.pods.regate(p.gangs.set_object(podgroup(3)))
    p.job(RECORDED, "ADDED")
    assert len(p.gangs.members(key)) == 3
    assert p.where(replacement)[0] == "active"


def test_pods_of_an_ordinary_job_are_plain_pods_once_the_job_is_seen() -> None:
    p = Pipeline()
    pod = p.pod(0)
    assert p.where(pod)[0] == "gated"
    p.job({}, "ADDED")
    assert p.where(pod) == ("active", "")


def test_a_refused_job_tells_its_pods_why() -> None:
    p = Pipeline()
    p.job({**GANG, "workload-scheduler.io/min-count": "7"}, "ADDED")
    pod = p.pod(0)
    where, message = p.where(pod)
    assert where == "gated"
    assert message == (
        "Job ns/train: annotation workload-scheduler.io/min-count must be a whole number "
        "from 1 to 3 (the Job's parallelism), not '7'"
    )


def test_deleted_pods_stop_waiting() -> None:
    p = Pipeline()
    pod = p.pod(0)
    p.pods.apply("DELETED", pod)
    assert p.gangs.waiting_on_jobs(["u1"]) == []
    p.job(RECORDED, "ADDED")  # nothing to re-observe, nothing raises


def test_a_job_list_drops_jobs_that_are_gone() -> None:
    p = Pipeline()
    p.job({}, "ADDED")
    p.jobs.replace([])
    assert len(p.index) == 0


@given(
    gang=st.sampled_from(["true", "false", "True", "", "1"]),
    min_count=st.none() | st.text(max_size=8),
    topology=st.none() | st.text(max_size=20),
    parallelism=st.none() | st.integers(min_value=-1, max_value=50),
    completions=st.none() | st.integers(min_value=-1, max_value=50),
)
def test_any_annotations_give_a_gang_a_refusal_or_nothing(
    gang: str,
    min_count: str | None,
    topology: str | None,
    parallelism: int | None,
    completions: int | None,
) -> None:
    annotations = {"workload-scheduler.io/gang": gang}
    if min_count is not None:
        annotations["workload-scheduler.io/min-count"] = min_count
    if topology is not None:
        annotations["workload-scheduler.io/topology-key"] = topology
    result = parse_job_gang(annotations, parallelism=parallelism, completions=completions)
    if isinstance(result, JobGang):
        at_once = min(1 if parallelism is None else parallelism, completions or 10**9)
        assert 1 <= result.min_count <= at_once
        assert result.topology_key is None or is_label_key(result.topology_key)
    else:
        assert result is None or (isinstance(result, JobRefusal) and result.message)


def test_a_relist_forgets_pods_that_waited_on_their_job() -> None:
    p = Pipeline()
    p.pod(0)
    assert p.gangs.waiting_on_jobs(["u1"])
    p.pods.replace([])
    assert p.gangs.waiting_on_jobs(["u1"]) == []
