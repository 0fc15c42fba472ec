"""A gang's priority, and the priority its members count at.

As upstream's ``util.PodGroupPriority`` for 1.36+ PodGroups, with our fallbacks:

1. the group's own ``priority`` (PodGroup ``spec.priority``, our CRD's ``priority``);
2. else the value of its ``priorityClassName`` (a PodGroup whose admission did not
   fill ``priority`` in; our CRD, which has no admission), from the watched
   PriorityClasses (``cache.priority_classes``);
3. else the highest priority among its members (upstream: 0).

A class that does not exist (yet) is not guessed at: the gang does not preempt, with
upstream admission's words ``no PriorityClass with name high was found``, and counts at
its members' priority meanwhile.

The group's priority is what gang preemption compares (preemptor and victim units), and
what a member counts at where nominations are compared (``nominated_for``: room
nominated to a gang of priority 1000 is left alone by a pod of 500 even when the
members' own priority is 0) and in the active queue's order.
"""

from __future__ import annotations

from collections.abc import Iterable

from scheduler.framework.preemption import priority
from scheduler.framework.types import PodInfo
from scheduler.gang.model import GroupPolicy
from scheduler.gang.registry import GangRegistry


def own_priority(gangs: GangRegistry, policy: GroupPolicy) -> int | None:
    """The group's priority from its object (1 or 2 above), or None."""
    if policy.priority is not None:
        return policy.priority
    if policy.priority_class_name:
        return gangs.classes.value(policy.priority_class_name)
    return None


def missing_class(gangs: GangRegistry, policy: GroupPolicy) -> str | None:
    """``no PriorityClass with name high was found`` when the group names a class that
    does not exist; None otherwise."""
    name = policy.priority_class_name
    if policy.priority is None and name and gangs.classes.value(name) is None:
        return f"no PriorityClass with name {name} was found"
    return None


def group_priority(gangs: GangRegistry, policy: GroupPolicy, members: Iterable[PodInfo]) -> int:
    """The gang's priority (see the module doc)."""
    own = own_priority(gangs, policy)
    if own is not None:
        return own
    return max((priority(m) for m in members), default=0)


def member_priority(gangs: GangRegistry, pod: PodInfo) -> int:
    """The priority ``pod`` counts at: its gang's own, if it is a gang member whose
    group has one; else its own ``spec.priority``."""
    key = gangs.key_of(pod.uid)
    if key is not None:
        policy = gangs.policy(key)
        if isinstance(policy, GroupPolicy) and policy.gang:
            own = own_priority(gangs, policy)
            if own is not None:
                return own
    return pod.pod.spec.priority
