"""Jobs as gangs: the opt-in annotations, and which gang a Job's pod belongs to.

A Job opts in with one annotation and no change to its pod template except
``schedulerName``::

    metadata:
      annotations:
        workload-scheduler.io/gang: "true"
        workload-scheduler.io/min-count: "4"          # optional, default below
        workload-scheduler.io/topology-key: rack      # optional, a node label key

The Job controller (``scheduler.controllers.jobs``, on kopf) turns such a Job
into a group object named after it, owned by it, in whichever API the cluster
serves, and records which one on the Job (``workload-scheduler.io/group-object:
podgroups.scheduling.k8s.io/train``, the form ``kubectl get`` takes).

The Job's pods carry none of the gang fields (``spec.workloadRef``,
``spec.schedulingGroup``, our labels): the scheduler maps a pod whose
controller ownerReference is an opted-in Job to the object recorded on that
Job. The scheduler watches Jobs (a tiny struct per Job, :class:`JobIndex`) so
it knows a Job opted in *before* it tries the Job's pods; a pod whose Job it has
not seen yet waits, so a pod that arrives before its Job (two independent
watches) is never bound on its own, as a partial gang.

A Job with ``.spec.scheduling`` (Kubernetes 1.37 ``WorkloadWithJob``) gets its
PodGroup from the Kubernetes Job controller and its pods name it in
``spec.schedulingGroup``; the annotation is then ignored, with an Event.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum

from scheduler.gang.model import (
    CRD_WORKLOAD,
    GANG_TIMEOUT_ANNOTATION,
    PODGROUP,
    WORKLOAD,
    GroupKey,
    ObjectKey,
)
from scheduler.model.objects import Pod

GANG_ANNOTATION = "workload-scheduler.io/gang"
MIN_COUNT_ANNOTATION = "workload-scheduler.io/min-count"
TOPOLOGY_KEY_ANNOTATION = "workload-scheduler.io/topology-key"
GROUP_OBJECT_ANNOTATION = "workload-scheduler.io/group-object"
"""Written by the Job controller once the group object exists: ``<resource>.<group>/<name>``."""
JOB_POD_GROUP = "job"
"""The ``podGroups[]`` entry of a Workload made for a Job (PodGroups have none)."""
MAX_MIN_COUNT = 100_000
"""Far above any Job's parallelism; bounds a typo such as 10^12."""

GROUP_RESOURCES: dict[str, str] = {
    PODGROUP: "podgroups.scheduling.k8s.io",
    WORKLOAD: "workloads.scheduling.k8s.io",
    CRD_WORKLOAD: "workloads.workload-scheduler.io",
}
"""Group-object kind -> ``kubectl`` resource name (``kubectl get <resource>/<name>``)."""
_KINDS = {resource: kind for kind, resource in GROUP_RESOURCES.items()}

# A node label key: an optional DNS-subdomain prefix and a name (apimachinery's
# IsQualifiedName).
_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9]$")
_DIGITS = re.compile(r"[0-9]{1,6}")  # not str.isdigit: it takes "²", which int() refuses
_PREFIX = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*$")


@dataclass(frozen=True, slots=True)
class JobGang:
    """What an opted-in Job asks for."""

    min_count: int
    topology_key: str | None = None
    timeout_seconds: str | None = None
    """The Job's ``gang-timeout-seconds`` annotation, copied onto the group object as is
    (the scheduler validates it there, as for any group object)."""


@dataclass(frozen=True, slots=True)
class JobRefusal:
    """Why an annotated Job is not made a gang; the message an Event on the Job carries."""

    reason: str
    message: str


def parse_job_gang(
    annotations: Mapping[str, str],
    *,
    parallelism: int | None,
    completions: int | None,
    has_scheduling: bool = False,
) -> JobGang | JobRefusal | None:
    """The gang a Job asks for, why it cannot have one, or None (not opted in).

    ``min-count`` defaults to the number of pods the Job runs at once: its
    parallelism (1 when unset, as the API defaults it), or its completions
    when fewer. Messages name the annotation and the value, e.g.::

        annotation workload-scheduler.io/min-count must be a whole number from 1 to 4
        (the Job's parallelism), not "five"
    """
    raw = annotations.get(GANG_ANNOTATION)
    if raw is None or raw == "false":
        return None
    if raw != "true":
        return JobRefusal(
            "InvalidGangAnnotation",
            f'annotation {GANG_ANNOTATION} must be "true" or "false", not {raw!r}',
        )
    if has_scheduling:
        return JobRefusal(
            "GangAnnotationIgnored",
            f"the Job sets .spec.scheduling, so the Kubernetes Job controller makes its "
            f"PodGroup; annotation {GANG_ANNOTATION} is ignored (set the gang in "
            f".spec.scheduling.schedulingPolicy instead)",
        )
    at_once = 1 if parallelism is None else parallelism
    limit = "the Job's parallelism"
    if completions is not None and completions < at_once:
        at_once, limit = completions, "the Job's completions"
    if at_once < 1:
        return JobRefusal(
            "InvalidGangAnnotation",
            f"the Job runs no pods at once (parallelism {parallelism}, completions "
            f"{completions}): nothing to place as a gang",
        )
    min_count = at_once
    raw_min = annotations.get(MIN_COUNT_ANNOTATION)
    if raw_min is not None:
        value = int(raw_min) if _DIGITS.fullmatch(raw_min) else 0
        if not 1 <= value <= min(at_once, MAX_MIN_COUNT):
            return JobRefusal(
                "InvalidGangAnnotation",
                f"annotation {MIN_COUNT_ANNOTATION} must be a whole number from 1 to "
                f"{at_once} ({limit}), not {raw_min!r}",
            )
        min_count = value
    topology = annotations.get(TOPOLOGY_KEY_ANNOTATION)
    if topology is not None and not is_label_key(topology):
        return JobRefusal(
            "InvalidGangAnnotation",
            f"annotation {TOPOLOGY_KEY_ANNOTATION} must be a node label key such as "
            f"topology.kubernetes.io/zone, not {topology!r}",
        )
    return JobGang(min_count, topology, annotations.get(GANG_TIMEOUT_ANNOTATION))


def is_label_key(key: str) -> bool:
    """A valid label key: ``[prefix/]name``, as apimachinery's IsQualifiedName."""
    prefix, _, name = key.rpartition("/")
    if "/" in key and (not prefix or len(prefix) > 253 or not _PREFIX.match(prefix)):
        return False
    return len(name) <= 63 and bool(_NAME.match(name))


def group_object_value(kind: str, name: str) -> str:
    """The ``group-object`` annotation's value for a group object."""
    return f"{GROUP_RESOURCES[kind]}/{name}"


def parse_group_object(namespace: str, value: str) -> GroupKey | None:
    """The gang recorded on a Job, or None if the value is not one we write."""
    resource, _, name = value.partition("/")
    kind = _KINDS.get(resource)
    if kind is None or not name:
        return None
    return GroupKey(ObjectKey(kind, namespace, name), "" if kind == PODGROUP else JOB_POD_GROUP)


# -- the scheduler's view of Jobs ---------------------------------------------------------


class JobState(Enum):
    """How a Job's pods are scheduled."""

    ORDINARY = "ordinary"
    """Not opted in: its pods are what their own fields say (plain pods or named gangs)."""
    REFUSED = "refused"
    """Opted in with bad annotations: its pods wait, with the reason."""
    PENDING = "pending"
    """Opted in, group object not recorded yet: its pods wait for the Job controller."""
    GANG = "gang"
    """Its pods are members of the recorded group object."""


@dataclass(frozen=True, slots=True)
class JobEntry:
    uid: str
    state: JobState
    group: GroupKey | None = None
    message: str = ""


@dataclass(frozen=True, slots=True)
class JobWait:
    """A pod whose Job does not let it be tried yet, and why."""

    job_uid: str
    message: str


def job_owner(pod: Pod) -> tuple[str, str] | None:
    """(name, uid) of the Job that controls this pod, if any."""
    for ref in pod.metadata.owner_references:
        if ref.controller and ref.kind == "Job" and ref.api_version == "batch/v1":
            return ref.name, ref.uid
    return None


def job_entry(
    namespace: str,
    name: str,
    uid: str,
    annotations: Mapping[str, str],
    *,
    parallelism: int | None,
    completions: int | None,
    has_scheduling: bool,
) -> JobEntry:
    """What the scheduler needs to know of one Job."""
    gang = parse_job_gang(
        annotations,
        parallelism=parallelism,
        completions=completions,
        has_scheduling=has_scheduling,
    )
    if gang is None or (isinstance(gang, JobRefusal) and gang.reason == "GangAnnotationIgnored"):
        return JobEntry(uid, JobState.ORDINARY)
    if isinstance(gang, JobRefusal):
        return JobEntry(uid, JobState.REFUSED, message=f"Job {namespace}/{name}: {gang.message}")
    recorded = annotations.get(GROUP_OBJECT_ANNOTATION)
    group = parse_group_object(namespace, recorded) if recorded else None
    if group is None:
        return JobEntry(
            uid,
            JobState.PENDING,
            message=f"waiting for the gang of Job {namespace}/{name} to be created "
            f"(by workload-scheduler's Job controller; see the Job's events)",
        )
    return JobEntry(uid, JobState.GANG, group)


class JobIndex:
    """Every Job the scheduler has seen, by namespace and name."""

    def __init__(self) -> None:
        self._jobs: dict[tuple[str, str], JobEntry] = {}

    def __len__(self) -> int:
        return len(self._jobs)

    def set(self, namespace: str, name: str, entry: JobEntry) -> bool:
        """Add or replace a Job; True when what its pods should do changed."""
        old = self._jobs.get((namespace, name))
        self._jobs[(namespace, name)] = entry
        return old != entry

    def delete(self, namespace: str, name: str) -> JobEntry | None:
        return self._jobs.pop((namespace, name), None)

    def names(self) -> list[tuple[str, str]]:
        return list(self._jobs)

    def membership(self, pod: Pod) -> GroupKey | JobWait | None:
        """The gang a Job makes this pod a member of; a wait; or None (the pod's own
        fields decide)."""
        owner = job_owner(pod)
        if owner is None:
            return None
        name, uid = owner
        ns = pod.metadata.namespace
        entry = self._jobs.get((ns, name))
        if entry is None or entry.uid != uid:
            return JobWait(uid, f"waiting for Job {ns}/{name}, which owns the pod, to be seen")
        if entry.state is JobState.GANG:
            return entry.group
        if entry.state is JobState.ORDINARY:
            return None
        return JobWait(uid, entry.message)
