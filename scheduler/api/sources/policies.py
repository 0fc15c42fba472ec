"""Workload and PodGroup objects -> ``GroupObject``, with validation and clear messages.

The API server validates native objects, but our CRD's schema is only as strict
as OpenAPI allows, and API versions drift: every rule the scheduler relies on
is checked again here, and a broken object becomes a message its pods carry
instead of an exception.
"""

from __future__ import annotations

import re

from scheduler.api.sources.shapes import PodGroup, PodGroupEntry, SchedulingPolicy, Workload
from scheduler.gang.model import (
    GANG_TIMEOUT_ANNOTATION,
    MAX_POD_GROUPS,
    GroupObject,
    GroupPolicy,
    ObjectKey,
)
from scheduler.model.refs import ObjectRef

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")

MAX_MIN_COUNT = 100_000
"""Far above any gang a cluster can hold (Kubernetes is tested to 5,000 nodes and 150,000
pods), low enough that a typo such as 10^12 is refused at once (our CRD's schema bound)."""


class PolicyError(ValueError):
    pass


def workload_object(
    wl: Workload, *, kind: str, api_version: str, resource: str = ""
) -> GroupObject:
    meta = wl.metadata
    key = ObjectKey(kind, meta.namespace, meta.name)
    ref = ObjectRef(api_version, "Workload", meta.namespace, meta.name, meta.uid)
    entries = wl.spec.pod_groups or wl.spec.pod_group_templates
    try:
        timeout = _timeout(meta.annotations)
        if not entries:
            raise PolicyError("spec.podGroups must have at least one item")
        if len(entries) > MAX_POD_GROUPS:
            raise PolicyError(f"spec.podGroups has {len(entries)} items, at most {MAX_POD_GROUPS}")
        policies: dict[str, GroupPolicy] = {}
        for i, entry in enumerate(entries):
            where = f"spec.podGroups[{i}]"
            if not _DNS_LABEL.match(entry.name):
                raise PolicyError(f"{where}.name {entry.name!r} is not a DNS label")
            if entry.name in policies:
                raise PolicyError(f"{where}.name {entry.name!r} is duplicated")
            policies[entry.name] = _policy(entry, where, timeout)
    except PolicyError as exc:
        return GroupObject(
            key,
            ref,
            {},
            invalid=f"invalid Workload {meta.namespace}/{meta.name}: {exc}",
            api_version=api_version,
            resource=resource,
        )
    return GroupObject(key, ref, policies, api_version=api_version, resource=resource)


def podgroup_object(pg: PodGroup, *, api_version: str, resource: str) -> GroupObject:
    meta = pg.metadata
    key = ObjectKey("PodGroup", meta.namespace, meta.name)
    ref = ObjectRef(api_version, "PodGroup", meta.namespace, meta.name, meta.uid)
    entry = PodGroupEntry(
        name="",
        scheduling_policy=pg.spec.scheduling_policy,
        scheduling_constraints=pg.spec.scheduling_constraints,
        # Admission writes priority 0 into a PodGroup that names no PriorityClass: that
        # is "unset", and the members' priority counts instead. A class without a
        # priority (admission did not fill it in) is resolved by the scheduler.
        priority=pg.spec.priority if pg.spec.priority_class_name or pg.spec.priority else None,
        priority_class_name=(pg.spec.priority_class_name or None)
        if pg.spec.priority is None
        else None,
        disruption_mode=pg.spec.disruption_mode,
    )
    try:
        policy = _policy(entry, "spec", _timeout(meta.annotations))
    except PolicyError as exc:
        return GroupObject(
            key,
            ref,
            {},
            invalid=f"invalid PodGroup {meta.namespace}/{meta.name}: {exc}",
            api_version=api_version,
            resource=resource,
        )
    return GroupObject(key, ref, {"": policy}, api_version=api_version, resource=resource)


def _policy(entry: PodGroupEntry, where: str, timeout: float | None) -> GroupPolicy:
    policy: SchedulingPolicy | None = entry.scheduling_policy or entry.policy
    field = f"{where}.{'schedulingPolicy' if entry.scheduling_policy else 'policy'}"
    if policy is None or (policy.basic is None) == (policy.gang is None):
        raise PolicyError(f"{field}: exactly one of `basic`, `gang` is required")
    topology = None
    constraints = entry.scheduling_constraints
    if constraints and constraints.topology:
        topology = constraints.topology[0].key
        problem = label_key_problem(topology)
        if problem:
            # Never placed as if unconstrained: an empty or malformed key is refused.
            where_key = f"{where}.schedulingConstraints.topology[0].key"
            raise PolicyError(f"{where_key} {topology!r} {problem}")
    priority = entry.priority
    if priority is not None and (isinstance(priority, bool) or not isinstance(priority, int)):
        raise PolicyError(f"{where}.priority must be a whole number, not {priority!r}")
    class_name = entry.priority_class_name
    if class_name is not None:
        if not isinstance(class_name, str) or not _DNS_SUBDOMAIN.match(class_name):
            raise PolicyError(
                f"{where}.priorityClassName must be a PriorityClass name, not {class_name!r}"
            )
        if priority is not None:
            raise PolicyError(f"{where}: set priority or priorityClassName, not both")
    single = _single_pod_disruption(entry.disruption_mode, where)
    min_count = 1
    if policy.gang is not None:
        min_count = policy.gang.min_count
        if (
            isinstance(min_count, bool)
            or not isinstance(min_count, int)
            or not 1 <= min_count <= MAX_MIN_COUNT
        ):
            raise PolicyError(
                f"{field}.gang.minCount must be a whole number from 1 to {MAX_MIN_COUNT}, "
                f"not {min_count!r}"
            )
    return GroupPolicy(
        gang=policy.gang is not None,
        min_count=min_count,
        topology_key=topology,
        timeout_seconds=timeout,
        priority=priority,
        priority_class_name=class_name or "",
        single_pod_disruption=single,
    )


_SINGLE = frozenset({"Pod", "Single", "single"})
_ALL = frozenset({"PodGroup", "All", "all"})


def _single_pod_disruption(mode: object, where: str) -> bool:
    """``disruptionMode`` in any of its spellings: 1.36 ``Pod``/``PodGroup``, 1.37
    ``{single: {}}``/``{all: {}}``, our CRD ``Single``/``All``; unset: whole group."""
    if mode is None:
        return False
    if isinstance(mode, dict) and len(mode) == 1:
        mode = next(iter(mode))
    if isinstance(mode, str) and mode in _SINGLE:
        return True
    if isinstance(mode, str) and mode in _ALL:
        return False
    raise PolicyError(
        f"{where}.disruptionMode must be Single or All (1.36: Pod or PodGroup), not {mode!r}"
    )


def label_key_problem(key: str) -> str | None:
    """What is wrong with a label key (as the API server's IsQualifiedName), or None."""
    if not key:
        return "is empty; it must be a node label key such as topology.kubernetes.io/zone"
    prefix, slash, name = key.rpartition("/")
    if slash and (not prefix or len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix)):
        return "has a prefix that is not a DNS subdomain of at most 253 characters"
    if not _LABEL_NAME.match(name):
        return (
            "has a name that is not at most 63 alphanumerics, '-', '_' or '.' starting and "
            "ending with an alphanumeric"
        )
    return None


def _timeout(annotations: dict[str, str]) -> float | None:
    raw = annotations.get(GANG_TIMEOUT_ANNOTATION)
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if value <= 0:
        raise PolicyError(
            f"annotation {GANG_TIMEOUT_ANNOTATION} must be a positive number of "
            f"seconds, not {raw!r}"
        )
    return value
