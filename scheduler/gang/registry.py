"""Group objects and their members: who belongs to which gang, and may it start.

Every non-terminal pod that names a group is a member, whichever scheduler it
names and whether or not it is bound (as kube-scheduler counts), so a gang's
quorum and its running members survive a scheduler restart: they are rebuilt
from the pod list.
"""

from __future__ import annotations

from collections.abc import Iterable

from scheduler.cache.priority_classes import PriorityClasses
from scheduler.framework.types import PodInfo
from scheduler.gang.jobs import JobIndex, JobWait
from scheduler.gang.membership import label_problem, pod_group_key
from scheduler.gang.model import (
    CRD_WORKLOAD,
    PODGROUP,
    WORKLOAD,
    GroupKey,
    GroupObject,
    GroupPolicy,
    ObjectKey,
    Waiting,
    WaitReason,
)
from scheduler.model.objects import Pod

_KIND_NAMES = {
    WORKLOAD: "Workload (scheduling.k8s.io/v1alpha1)",
    PODGROUP: "PodGroup (scheduling.k8s.io)",
    CRD_WORKLOAD: "Workload (workload-scheduler.io/v1alpha1)",
}


class GangRegistry:
    def __init__(
        self,
        served: Iterable[str] = (WORKLOAD, PODGROUP, CRD_WORKLOAD),
        jobs: JobIndex | None = None,
    ) -> None:
        self.served = set(served)
        """Which group-object kinds the cluster serves (from discovery)."""
        self.jobs = jobs if jobs is not None else JobIndex()
        """Jobs seen so far: a pod of an opted-in Job is a member of the Job's gang."""
        self._waiting: dict[str, dict[str, tuple[Pod, str]]] = {}
        """Job uid -> pods whose membership waits on that Job (pod uid -> (pod, node))."""
        self._waiting_on: dict[str, str] = {}
        """pod uid -> the Job uid it waits on."""
        self.objects: dict[ObjectKey, GroupObject] = {}
        self._members: dict[GroupKey, dict[str, str]] = {}
        """group -> uid -> node name ("" while unassigned)."""
        self._key_of: dict[str, GroupKey] = {}
        self.classes = PriorityClasses()
        """PriorityClass values, for groups that name a class (``gang.priority``)."""

    # -- group objects -----------------------------------------------------------

    def set_object(self, obj: GroupObject) -> list[GroupKey]:
        """Add or replace an object; the groups whose members should be re-checked."""
        self.objects[obj.key] = obj
        return self._groups_of(obj.key)

    def delete_object(self, key: ObjectKey) -> list[GroupKey]:
        self.objects.pop(key, None)
        return self._groups_of(key)

    def _groups_of(self, key: ObjectKey) -> list[GroupKey]:
        return [g for g in self._members if g.obj == key]

    # -- members ---------------------------------------------------------------------

    def observe_pod(self, pod: Pod, node_name: str) -> GroupKey | None:
        """Record a pod's membership; returns its group when the group's count or
        running set changed (so waiting members are checked again)."""
        uid = pod.metadata.uid
        key = self._key_of.get(uid)
        if key is None:
            key = self._resolve(pod, node_name)
            if key is None:
                return None
            self._key_of[uid] = key
        members = self._members.setdefault(key, {})
        if members.get(uid) == node_name:
            return None
        members[uid] = node_name
        return key

    def _resolve(self, pod: Pod, node_name: str) -> GroupKey | None:
        """The pod's group: its Job's gang, else its own fields; None while its Job waits."""
        member = self.jobs.membership(pod)
        uid = pod.metadata.uid
        self._unwait(uid)
        if isinstance(member, JobWait):
            self._waiting.setdefault(member.job_uid, {})[uid] = (pod, node_name)
            self._waiting_on[uid] = member.job_uid
            return None
        return member or pod_group_key(pod)

    def _unwait(self, uid: str) -> None:
        job_uid = self._waiting_on.pop(uid, None)
        if job_uid is not None:
            pods = self._waiting[job_uid]
            pods.pop(uid, None)
            if not pods:
                del self._waiting[job_uid]

    def waiting_on_jobs(self, job_uids: Iterable[str]) -> list[tuple[Pod, str]]:
        """Pods (and their nodes) whose membership waits on these Jobs: to observe again."""
        return [entry for j in job_uids for entry in self._waiting.get(j, {}).values()]

    def forget_pod(self, uid: str) -> GroupKey | None:
        self._unwait(uid)
        key = self._key_of.pop(uid, None)
        if key is None:
            return None
        members = self._members.get(key)
        if members is not None:
            members.pop(uid, None)
            if not members:
                del self._members[key]
        return key

    def pod_uids(self) -> list[str]:
        """Every pod counted as a member of some group, or waiting on its Job to be (for
        relists: a vanished one must not linger)."""
        return [*self._key_of, *self._waiting_on]

    def key_of(self, uid: str) -> GroupKey | None:
        return self._key_of.get(uid)

    def members(self, key: GroupKey) -> dict[str, str]:
        return self._members.get(key, {})

    def groups(self) -> list[GroupKey]:
        return list(self._members)

    def object_to_tell(self, info: PodInfo) -> tuple[GroupObject, str] | None:
        """The group object a gated pod names, so that why it waits is told there too,
        with the report's slot: per gang (its members wait for the same thing) or, for
        incomplete labels, per pod. None when the pod names no existing object."""
        key = self._key_of.get(info.uid) or pod_group_key(info.pod)
        if key is not None:
            obj = self.objects.get(key.obj)
            return (obj, f"gang {key}") if obj else None
        problem = label_problem(info.pod)
        obj = self.objects.get(problem.workload) if problem and problem.workload else None
        return (obj, f"pod {info.uid}") if obj else None

    # -- decisions ---------------------------------------------------------------------

    def policy(self, key: GroupKey) -> GroupPolicy | Waiting:
        """The group's policy, or why there is none (yet)."""
        kind, ns, name = key.obj
        obj = self.objects.get(key.obj)
        if obj is None:
            if kind not in self.served:
                return Waiting(
                    WaitReason.API_NOT_SERVED,
                    f"pod refers to {_KIND_NAMES[kind]} {ns}/{name}, but this cluster does "
                    f"not serve that API",
                )
            return Waiting(
                WaitReason.OBJECT_MISSING, f"waiting for {_KIND_NAMES[kind]} {ns}/{name} to appear"
            )
        if obj.invalid:
            return Waiting(WaitReason.OBJECT_INVALID, obj.invalid)
        policy = obj.policies.get(key.group)
        if policy is None:
            if kind == PODGROUP:
                return Waiting(
                    WaitReason.NO_POLICY, f"PodGroup {ns}/{name} has no scheduling policy"
                )
            return Waiting(
                WaitReason.NO_POLICY,
                f"pod group {key.group!r} doesn't exist in Workload {ns}/{name}",
            )
        return policy

    def gate(self, info: PodInfo) -> str | None:
        """Why this pod may not be tried yet, or None (ordinary pods: always None)."""
        key = self._key_of.get(info.uid)
        if key is None:
            member = self.jobs.membership(info.pod)
            if isinstance(member, JobWait):
                return member.message
            key = member or pod_group_key(info.pod)
        if key is None:
            problem = label_problem(info.pod)
            return problem.message if problem else None
        return self.group_gate(key)

    def group_gate(self, key: GroupKey) -> str | None:
        """Why the members of ``key`` may not be tried yet, or None: the same for all."""
        policy = self.policy(key)
        if isinstance(policy, Waiting):
            return policy.message
        if not policy.gang:
            return None
        present = len(self._members.get(key, ()))
        if present < policy.min_count:
            return f"waiting for gang {key}: {present} of {policy.min_count} pods exist"
        return None
