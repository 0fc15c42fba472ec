"""Opted-in Jobs become group objects: the job kopf has in this project.

A Job annotated ``workload-scheduler.io/gang: "true"`` (see ``scheduler.gang.jobs``
for the annotations) gets one group object, named after the Job, in the first
API the cluster serves that can carry what the Job asks for:

1. a standalone ``scheduling.k8s.io`` PodGroup (1.36+; ``v1beta1`` or ``v1alpha3`` on
   1.37), when the server keeps ``schedulingConstraints.topology`` (checked with a
   dry run when the Job asks for a topology key: the field is dropped when the
   ``TopologyAwareWorkloadScheduling`` gate is off);
2. a ``scheduling.k8s.io/v1alpha1`` Workload (1.35), unless a topology key is asked
   for (that API has no constraints);
3. our ``workload-scheduler.io/v1alpha1`` Workload CRD.

The object has a controller ownerReference to the Job, so the garbage collector
deletes it with the Job, and is then recorded on the Job
(``workload-scheduler.io/group-object: podgroups.scheduling.k8s.io/train``); the
scheduler makes the Job's pods members of the recorded object. Bad annotations
give a Warning Event on the Job and no object; so does a name already taken by an
object the Job does not own.

How kopf is run (``run``): in the scheduler's process and event loop, only while
the scheduler leads (the App starts it from its scheduling task); standalone (no
peering objects); kopf's own Event posting off (Events go through our
``Reporter``, as events.k8s.io Events like every other we write); its progress and
diff-base bookkeeping in annotations under ``workload-scheduler.io``; no deletion
handlers, hence no finalizers on users' Jobs; resource scanning off, so it
watches Jobs and nothing else (no CRDs, namespaces, pods or nodes). Handlers fire
on creation (and when a Job is first seen annotated) and on resume after a
restart; later edits of the annotations are not applied to an existing object.

Where we depart from ``kopf.operator()``: we spawn kopf's tasks with
``kopf.spawn_tasks`` and supervise them ourselves, because ``kopf.run_tasks``
cancels, when it stops, every task created after it started - in our process
that would include the scheduler's own binding tasks. ``spawn_tasks`` also sets
SIGINT/SIGTERM handlers of its own on the main thread; the App puts its handlers
back right after.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import random
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass
from enum import Enum
from typing import Any, Literal, Protocol

import aiohttp
import orjson
import structlog

from scheduler.api.client import ApiError
from scheduler.api.connection import Connection
from scheduler.api.sources.discovery import SCHEDULING_GROUP, ServedApis
from scheduler.gang.jobs import (
    GANG_ANNOTATION,
    GROUP_OBJECT_ANNOTATION,
    JOB_POD_GROUP,
    JobGang,
    JobRefusal,
    group_object_value,
    parse_job_gang,
)
from scheduler.gang.model import (
    CRD_GROUP,
    CRD_VERSION,
    CRD_WORKLOAD,
    GANG_TIMEOUT_ANNOTATION,
    PODGROUP,
    WORKLOAD,
)
from scheduler.model.refs import ObjectRef

log = structlog.get_logger(__name__)

ANNOTATION_PREFIX = "workload-scheduler.io"
"""kopf's progress and diff-base annotations live under this prefix."""
HANDLER_ID = "job-controller"
"""kopf keeps a handler's progress in the annotation ``<prefix>/<handler id>``: it must not be
one of the annotations users write (``workload-scheduler.io/gang`` would be read as progress)."""
ACTION = "CreateGang"
DEFAULT_SCHEDULER = "default-scheduler"
RETRY_SECONDS = 5.0
TRANSPORT_ERRORS = (OSError, aiohttp.ClientError)  # TimeoutError is an OSError
MANAGED_BY = {"app.kubernetes.io/managed-by": "workload-scheduler"}


class Requester(Protocol):
    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Any = None,
    ) -> bytes: ...


class EventSink(Protocol):
    def event(
        self,
        ref: ObjectRef,
        reason: str,
        message: str,
        *,
        warning: bool = False,
        action: str = "Scheduling",
    ) -> None: ...


class RetryLaterError(Exception):
    """A transient API failure: the handler is retried (kopf's TemporaryError)."""


class Outcome(Enum):
    NOT_OPTED = "not opted in"
    REFUSED = "refused"
    RECORDED = "already recorded"
    CREATED = "created"
    ADOPTED = "found, owned by the Job"


@dataclass(frozen=True, slots=True)
class GroupTarget:
    """One API a Job's group object can be made in."""

    kind: str  # PODGROUP | WORKLOAD | CRD_WORKLOAD
    api_version: str
    plural: str
    topology: Literal["kept", "check", "none"]
    """Whether ``schedulingConstraints.topology`` survives a create: always (our CRD),
    only with a feature gate (PodGroups: checked with a dry run), never (v1alpha1)."""

    @property
    def label(self) -> str:
        return f"{self.kind_name} ({self.api_version})"

    @property
    def kind_name(self) -> str:
        return "PodGroup" if self.kind == PODGROUP else "Workload"

    def collection(self, namespace: str) -> str:
        return f"/apis/{self.api_version}/namespaces/{namespace}/{self.plural}"


def group_targets(served: ServedApis) -> list[GroupTarget]:
    """The APIs a group object can be made in, in the order they are preferred."""
    targets = []
    if served.podgroup_version:
        api = f"{SCHEDULING_GROUP}/{served.podgroup_version}"
        targets.append(GroupTarget(PODGROUP, api, "podgroups", "check"))
    if served.native_workloads:
        targets.append(GroupTarget(WORKLOAD, f"{SCHEDULING_GROUP}/v1alpha1", "workloads", "none"))
    if served.crd_workloads:
        targets.append(GroupTarget(CRD_WORKLOAD, f"{CRD_GROUP}/{CRD_VERSION}", "workloads", "kept"))
    return targets


def group_manifest(
    target: GroupTarget, *, namespace: str, name: str, uid: str, gang: JobGang
) -> dict[str, Any]:
    """The group object for a Job: named after it, owned (and GC'd) by it."""
    policy = {"gang": {"minCount": gang.min_count}}
    constraints = (
        {"schedulingConstraints": {"topology": [{"key": gang.topology_key}]}}
        if gang.topology_key
        else {}
    )
    spec: dict[str, Any]
    if target.kind == PODGROUP:
        spec = {"schedulingPolicy": policy, **constraints}
    else:
        entry = {"name": JOB_POD_GROUP, "policy": policy}
        if target.topology != "none":
            entry.update(constraints)
        spec = {
            "controllerRef": {"apiGroup": "batch", "kind": "Job", "name": name},
            "podGroups": [entry],
        }
    metadata: dict[str, Any] = {
        "name": name,
        "namespace": namespace,
        "labels": dict(MANAGED_BY),
        "ownerReferences": [
            # No blockOwnerDeletion: it needs the update permission on jobs/finalizers
            # where OwnerReferencesPermissionEnforcement is on (upstream's Job controller
            # leaves it unset on its PodGroups too).
            {"apiVersion": "batch/v1", "kind": "Job", "name": name, "uid": uid, "controller": True}
        ],
    }
    if gang.timeout_seconds is not None:
        metadata["annotations"] = {GANG_TIMEOUT_ANNOTATION: gang.timeout_seconds}
    return {
        "apiVersion": target.api_version,
        "kind": target.kind_name,
        "metadata": metadata,
        "spec": spec,
    }


def _describe(gang: JobGang) -> str:
    text = f"gang of {gang.min_count} pod{'s' if gang.min_count != 1 else ''}"
    if gang.topology_key:
        text += f" in one {gang.topology_key} domain"
    return text


def _transient(exc: Exception) -> bool:
    if isinstance(exc, ApiError):
        return exc.status >= 500 or exc.status == 429
    return isinstance(exc, TRANSPORT_ERRORS)


class JobGangController:
    """Makes and records the group object of an opted-in Job (the kopf handler's body)."""

    def __init__(
        self,
        client: Requester,
        served: ServedApis,
        events: EventSink,
        scheduler_name: str = "workload-scheduler",
    ) -> None:
        self.client = client
        self.served = served
        self.events = events
        self.scheduler_name = scheduler_name
        self.targets = group_targets(served)

    async def ensure(
        self, body: Mapping[str, Any], annotations_patch: MutableMapping[str, Any]
    ) -> Outcome:
        """Create (or find) the Job's group object and record it in ``annotations_patch``
        (the Job's ``metadata.annotations`` patch). Raises ``RetryLaterError`` on
        transient API failures."""
        meta = body.get("metadata", {})
        spec = body.get("spec", {})
        ns, name, uid = meta.get("namespace", ""), meta.get("name", ""), meta.get("uid", "")
        annotations = meta.get("annotations") or {}
        gang = parse_job_gang(
            annotations,
            parallelism=spec.get("parallelism"),
            completions=spec.get("completions"),
            has_scheduling=spec.get("scheduling") is not None,
        )
        if gang is None:
            return Outcome.NOT_OPTED
        ref = ObjectRef("batch/v1", "Job", ns, name, uid)
        pod_scheduler = (
            spec.get("template", {}).get("spec", {}).get("schedulerName") or DEFAULT_SCHEDULER
        )
        if pod_scheduler != self.scheduler_name:
            # Another instance of ours (another scheduler name) serves it; only a Job left
            # to the default scheduler, which knows nothing of gangs, is told.
            if pod_scheduler != DEFAULT_SCHEDULER:
                return Outcome.NOT_OPTED
            return self._refuse(
                ref,
                "GangAnnotationIgnored",
                f"the Job's pods name no schedulerName (the default scheduler places them "
                f"one by one): set spec.template.spec.schedulerName: {self.scheduler_name} "
                f"for annotation {GANG_ANNOTATION} to take effect",
            )
        if isinstance(gang, JobRefusal):
            return self._refuse(ref, gang.reason, gang.message)
        if annotations.get(GROUP_OBJECT_ANNOTATION):
            return Outcome.RECORDED
        target = await self._target(ns, name, uid, gang)
        if isinstance(target, JobRefusal):
            return self._refuse(ref, target.reason, target.message)
        manifest = group_manifest(target, namespace=ns, name=name, uid=uid, gang=gang)
        outcome = await self._create(target, ns, name, uid, manifest)
        if isinstance(outcome, JobRefusal):
            return self._refuse(ref, outcome.reason, outcome.message)
        annotations_patch[GROUP_OBJECT_ANNOTATION] = group_object_value(target.kind, name)
        if outcome is Outcome.CREATED:
            self.events.event(
                ref,
                "GangCreated",
                f"Created {target.label} {ns}/{name}: {_describe(gang)}",
                action=ACTION,
            )
        log.info("job gang", job=f"{ns}/{name}", group=target.label, outcome=outcome.value)
        return outcome

    def _refuse(self, ref: ObjectRef, reason: str, message: str) -> Outcome:
        log.warning("job not made a gang", job=f"{ref.namespace}/{ref.name}", why=message)
        self.events.event(ref, reason, message, warning=True, action=ACTION)
        return Outcome.REFUSED

    async def _target(
        self, ns: str, name: str, uid: str, gang: JobGang
    ) -> GroupTarget | JobRefusal:
        if not self.targets:
            return JobRefusal(
                "NoGangApi",
                "this cluster serves no gang API (scheduling.k8s.io Workloads or PodGroups, "
                "or the workload-scheduler.io Workload CRD from deploy/crds): nothing created",
            )
        skipped = []
        for target in self.targets:
            if gang.topology_key is None or target.topology == "kept":
                return target
            if target.topology == "check":
                manifest = group_manifest(target, namespace=ns, name=name, uid=uid, gang=gang)
                if await self._keeps_topology(target, ns, manifest):
                    return target
                skipped.append(f"{target.label} dropped schedulingConstraints.topology")
            else:
                skipped.append(f"{target.label} has no topology constraints")
        return JobRefusal(
            "GangTopologyUnsupported",
            f"annotation workload-scheduler.io/topology-key {gang.topology_key!r} cannot be "
            f"kept: {'; '.join(skipped)} (install the workload-scheduler.io Workload CRD, or "
            f"enable the TopologyAwareWorkloadScheduling feature gate): nothing created",
        )

    async def _keeps_topology(self, target: GroupTarget, ns: str, manifest: Any) -> bool:
        """A dry-run create: does the server keep the topology constraint?"""
        try:
            answer = await self.client.request(
                "POST", target.collection(ns), params={"dryRun": "All"}, body=manifest
            )
        except ApiError as exc:
            if exc.status == 409:  # the name exists: the real create will say whose it is
                return True
            if _transient(exc):
                raise RetryLaterError(str(exc)) from exc
            return False
        except TRANSPORT_ERRORS as exc:
            raise RetryLaterError(str(exc)) from exc
        spec = orjson.loads(answer).get("spec", {})
        return bool((spec.get("schedulingConstraints") or {}).get("topology"))

    async def _create(
        self, target: GroupTarget, ns: str, name: str, uid: str, manifest: Any
    ) -> Outcome | JobRefusal:
        try:
            await self.client.request("POST", target.collection(ns), body=manifest)
            return Outcome.CREATED
        except ApiError as exc:
            if exc.status != 409:
                if _transient(exc):
                    raise RetryLaterError(str(exc)) from exc
                return JobRefusal(
                    "GangNotCreated", f"could not create {target.label} {ns}/{name}: {exc.message}"
                )
        except TRANSPORT_ERRORS as exc:
            raise RetryLaterError(str(exc)) from exc
        # It exists: ours from an earlier attempt (a retry, a restart), or someone else's.
        try:
            existing = orjson.loads(
                await self.client.request("GET", f"{target.collection(ns)}/{name}")
            )
        except ApiError as exc:
            raise RetryLaterError(str(exc)) from exc
        owners = existing.get("metadata", {}).get("ownerReferences") or []
        if any(o.get("uid") == uid for o in owners):
            return Outcome.ADOPTED
        return JobRefusal(
            "GangNameTaken",
            f"{target.label} {ns}/{name} already exists and is not owned by this Job: "
            f"nothing created (rename the Job or that object)",
        )


# -- kopf --------------------------------------------------------------------------------


def kopf_settings() -> Any:
    """Settings for the in-process operator (see the module docstring)."""
    import kopf

    settings = kopf.OperatorSettings()
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(
        prefix=ANNOTATION_PREFIX
    )
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=ANNOTATION_PREFIX, key="last-handled-configuration"
    )
    settings.persistence.finalizer = f"{ANNOTATION_PREFIX}/kopf-finalizer"  # never added
    settings.posting.enabled = False
    settings.peering.standalone = True
    settings.scanning.disabled = True
    # The scheduler decides when the process ends; kopf must never kill it.
    settings.process.ultimate_exiting_timeout = None
    settings.networking.request_timeout = 60.0
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    return settings


def connection_info(connection: Connection) -> Any:
    """Our credentials, as kopf's ``@kopf.on.login`` answer (re-asked on a 401)."""
    import kopf

    scheme, _, token = connection.auth_headers().get("Authorization", "").partition(" ")
    return kopf.ConnectionInfo(
        server=connection.server,
        ca_path=connection.ca_path,
        insecure=connection.insecure or None,
        scheme=scheme or None,
        token=token or None,
        certificate_path=connection.cert_path,
        private_key_path=connection.key_path,
    )


def kopf_registry(controller: JobGangController, connection: Connection) -> Any:
    """A registry of our handlers only (never kopf's global default one)."""
    import kopf

    registry = kopf.OperatorRegistry()

    def login(**_: Any) -> Any:
        return connection_info(connection)

    kopf.on.login(registry=registry, id="workload-scheduler")(login)

    async def on_job(body: Any, patch: Any, **_: Any) -> None:
        recorded: dict[str, Any] = {}
        try:
            await controller.ensure(body, recorded)
        except RetryLaterError as exc:
            raise kopf.TemporaryError(str(exc), delay=RETRY_SECONDS) from exc
        if recorded:  # merged into the patch kopf sends with its own annotations
            patch.setdefault("metadata", {}).setdefault("annotations", {}).update(recorded)

    def ours(spec: Any, **_: Any) -> bool:
        # Jobs for another instance of ours (another scheduler name) are not touched at all:
        # kopf writes nothing on an object no handler matches.
        name = (spec.get("template", {}).get("spec", {}) or {}).get("schedulerName")
        return name in (None, DEFAULT_SCHEDULER, controller.scheduler_name)

    opted_in = {GANG_ANNOTATION: kopf.PRESENT}
    for on in (kopf.on.create, kopf.on.resume):
        on(
            "batch", "v1", "jobs", id=HANDLER_ID, registry=registry, annotations=opted_in, when=ours
        )(on_job)
    return registry


async def run(
    controller: JobGangController,
    connection: Connection,
    *,
    after_start: Callable[[], None] = lambda: None,
) -> None:
    """Run kopf until cancelled; if it stops on its own, start it again after a pause."""
    # Its first import takes a tenth of a second: in a thread, the event loop runs on.
    kopf = await asyncio.to_thread(importlib.import_module, "kopf")

    delay = 1.0
    while True:
        stop = asyncio.Event()
        tasks = await kopf.spawn_tasks(
            registry=kopf_registry(controller, connection),
            settings=kopf_settings(),
            standalone=True,
            clusterwide=True,
            stop_flag=stop,
        )
        after_start()
        log.info("job controller started (kopf)", watches="batch/v1 jobs")
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            failed = [t for t in done if not t.cancelled() and t.exception() is not None]
            log.warning(
                "job controller stopped, restarting",
                task=next(iter(done)).get_name(),
                error=str(failed[0].exception()) if failed else None,
                delay=delay,
            )
        finally:
            stop.set()
            for task in tasks:
                task.cancel()
            with contextlib.suppress(BaseException):
                await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.sleep(delay * (1 + random.random() / 2))
        delay = min(delay * 2, 60.0)
