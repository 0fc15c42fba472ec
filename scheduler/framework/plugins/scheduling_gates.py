"""SchedulingGates: a pod with ``spec.schedulingGates`` stays out of the active queue
until every gate is removed (upstream's PreEnqueue plugin of the same name).

Its pods wait in the queue's *gated* sub-queue with the reason as their message,
``waiting for scheduling gates: example.com/quota, example.com/ready``. Upstream
prints the list with Go's ``%v`` (``[example.com/quota example.com/ready]``); ours
keeps the names comma-separated, as this scheduler has always written them.
"""

from __future__ import annotations

from typing import ClassVar

from scheduler.framework.types import PodInfo


class SchedulingGates:
    name: ClassVar[str] = "SchedulingGates"
    __slots__ = ()

    def pre_enqueue(self, pod: PodInfo) -> str | None:
        gates = pod.pod.spec.scheduling_gates
        if not gates:
            return None
        names = ", ".join(str(g.get("name", "?")) for g in gates)
        return f"waiting for scheduling gates: {names}"
