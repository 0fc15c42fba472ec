"""The gang cycle: a whole gang placed at once, bound together, repaired, reported.

It sits beside the pod cycle (``scheduler.py``) as upstream keeps
``schedule_one_podgroup.go`` beside ``schedule_one.go``. The pod cycle hands over a
member of a gang that still needs members placed; ``schedule_gang`` takes every
pending sibling out of the queue and places at least ``need`` of them against one
view of the cluster, or none (``scheduler.gang.placement``). A placed gang is bound
in the background, each member on its own (``_bind_member``):

1. bind the member on its planned node; bound: done;
2. the pod is gone, or already assigned (409): drop it from the queue; an assigned
   one counts as bound;
3. any other failure: release the node and look for another one where the gang runs
   (``_repair_node``), every ``REPAIR_POLL_SECONDS`` until the gang's deadline, and
   bind again there;
4. no node by the deadline: give the member up (FailedScheduling, back-off).

The group object hears of it (``_report_group``): ``GangAdmitted`` when placed,
``Scheduled`` once every member is bound, ``GangTimeout`` when some were not,
``FailedScheduling`` when the gang cannot be placed.
"""

from __future__ import annotations

import asyncio
import time

import structlog

from scheduler.binder.binder import BindOutcome
from scheduler.core.context import CycleContext, Placement, ref_of
from scheduler.framework.types import NodeInfo, PodInfo
from scheduler.gang import messages
from scheduler.gang import status as gang_status
from scheduler.gang.model import GroupKey, GroupPolicy
from scheduler.gang.placement import domains, place_gang, running_domain
from scheduler.gang.registry import GangRegistry
from scheduler.metrics.registry import SCHEDULED, UNSCHEDULABLE
from scheduler.queue.scheduling_queue import QueuedPod

log = structlog.get_logger(__name__)

REPAIR_POLL_SECONDS = 1.0
"""How often a member whose bind failed looks again for a node in its gang's domain."""


class GangCycle:
    """Places, binds, repairs and reports whole gangs, for the pod cycle."""

    def __init__(self, ctx: CycleContext, gangs: GangRegistry, gang_timeout: float) -> None:
        self.ctx = ctx
        self.gangs = gangs
        self.gang_timeout = gang_timeout
        """Seconds a placed gang may take to be fully bound, unless its object says."""
        self._scheduled_groups: set[GroupKey] = set()

    # -- where a gang stands ------------------------------------------------------------

    def need(self, group: GroupKey, policy: GroupPolicy) -> tuple[int, list[str]]:
        """How many more members must be placed together, and where members run now."""
        running = []
        for uid, assigned in self.gangs.members(group).items():
            node = assigned or self.ctx.cache.node_of(uid)
            if node:
                running.append(node)
        return policy.min_count - len(running), running

    def nodes(self, policy: GroupPolicy, running_nodes: list[str]) -> list[NodeInfo]:
        """The nodes a member may join its running gang on: the gang's domain, if any."""
        cache = self.ctx.cache
        if policy.topology_key is None:
            return cache.nodes()
        domain = running_domain(cache, running_nodes, policy.topology_key)
        if domain is None:
            return cache.nodes()
        return domains(cache.nodes(), policy.topology_key).get(domain, [])

    # -- scheduling: the whole gang against one view of the cluster ---------------------

    def schedule_gang(
        self,
        qp: QueuedPod,
        group: GroupKey,
        policy: GroupPolicy,
        need: int,
        running_nodes: list[str],
    ) -> None:
        """Place ``need`` or more members at once against this view of the cluster, or none."""
        ctx = self.ctx
        started = time.perf_counter()
        pending = [
            u
            for u, node in self.gangs.members(group).items()
            if not node and u != qp.uid and ctx.cache.node_of(u) is None
        ]
        batch = [qp, *ctx.queue.pop_ready(pending)]
        pods = [m.info for m in batch]
        if len(pods) < need:
            message = (
                f"waiting for gang {group}: {len(pods)} of {need} more members are "
                f"pending for this scheduler"
            )
            for member in batch:
                ctx.queue.requeue_gated(member, message)
            return
        domain = None
        if policy.topology_key and running_nodes:
            domain = running_domain(ctx.cache, running_nodes, policy.topology_key)
        attempt = place_gang(
            ctx.cache,
            ctx.profile,
            pods,
            need,
            ctx.rng,
            topology_key=policy.topology_key,
            domain=domain,
            batch=ctx.batch,
            walk=ctx.walk,
        )
        ctx.metrics.algorithm_duration.observe(time.perf_counter() - started)
        if not attempt.ok(need):
            message = messages.cannot_place(group, pods, need, attempt, policy.topology_key)
            log.info("gang cannot be placed", gang=str(group), reason=message)
            ctx.metrics.podgroup_attempts.labels(UNSCHEDULABLE, ctx.metrics.profile).inc()
            for member in batch:
                ctx.metrics.attempt(UNSCHEDULABLE, time.perf_counter() - started)
                ctx.reporter.pod_unschedulable(ref_of(member.info), message)
                ctx.queue.requeue_unschedulable(member)
            self._report_group(
                group,
                "FailedScheduling",
                message,
                warning=True,
                status=(False, gang_status.UNSCHEDULABLE),
            )
            return
        ctx.metrics.podgroup_attempts.labels(SCHEDULED, ctx.metrics.profile).inc()
        placed = {pod.uid for pod, _ in attempt.placed}
        by_uid = {m.uid: m for m in batch}
        for pod in attempt.unplaced:
            # An extra member beyond minCount with no room now: it may join later.
            extra = by_uid[pod.uid]
            ctx.reporter.pod_unschedulable(
                ref_of(pod), f"gang {group} is placed; no room for this extra member yet"
            )
            ctx.queue.requeue_unschedulable(extra)
        timeout = policy.timeout_seconds or self.gang_timeout
        log.info("gang placed", gang=str(group), pods=len(placed), domain=attempt.domain)
        self._report_group(
            group,
            "GangAdmitted",
            f"gang {group}: {len(placed)} pods placed"
            + (f" in {policy.topology_key}={attempt.domain}" if attempt.domain else "")
            + f"; binding, deadline {timeout:.0f}s",
        )
        deadline = time.monotonic() + timeout
        placements = [Placement(by_uid[pod.uid], node, started) for pod, node in attempt.placed]
        ctx.spawn(self._bind_gang(group, placements, deadline, policy))

    # -- binding: every member, repaired until the deadline ------------------------------

    async def _bind_gang(
        self, group: GroupKey, placements: list[Placement], deadline: float, policy: GroupPolicy
    ) -> None:
        started = time.monotonic()
        results = await asyncio.gather(
            *(self._bind_member(p, deadline, policy, group) for p in placements)
        )
        bound = sum(results)
        metrics = self.ctx.metrics
        if bound == len(placements):
            metrics.gang_admission.observe(time.monotonic() - started)
            self._report_group(
                group,
                "Scheduled",
                f"gang {group}: all {bound} pods bound",
                status=(True, gang_status.SCHEDULED),
            )
            return
        metrics.gang_timeouts.inc()
        message = (
            f"gang {group}: only {bound} of {len(placements)} pods bound before the "
            f"deadline; the rest were released and will be retried"
        )
        log.warning("gang binding incomplete", gang=str(group), bound=bound, placed=len(placements))
        self._report_group(
            group, "GangTimeout", message, warning=True, status=(False, gang_status.SCHEDULER_ERROR)
        )

    async def _bind_member(
        self, placement: Placement, deadline: float, policy: GroupPolicy, group: GroupKey
    ) -> bool:
        """Bind one member; if the bind fails, repair it on another node until the deadline.
        True when the member counts as bound."""
        ctx = self.ctx
        qp, pod = placement.pod, placement.pod.info
        node_name = placement.node_name
        while True:
            async with ctx.bind_slots:
                outcome, detail = await ctx.binder.bind(pod.pod, node_name)
            if outcome is BindOutcome.BOUND:
                ctx.bound(Placement(qp, node_name, placement.started))
                return True
            self._release(pod, outcome)
            if outcome is not BindOutcome.RETRY:
                ctx.queue.done(pod.uid)
                return outcome is BindOutcome.ALREADY_ASSIGNED
            log.warning(
                "gang member bind failed, repairing", pod=pod.key, node=node_name, error=detail
            )
            repaired = await self._repair_node(pod, policy, group, deadline)
            if repaired is None:
                self._give_up(qp, group, detail)
                return False
            node_name = repaired
            ctx.cache.assume(pod, node_name)

    def _release(self, pod: PodInfo, outcome: BindOutcome) -> None:
        """The bind failed: the node we had assumed for the member is free again."""
        self.ctx.cache.forget(pod.uid)
        self.ctx.metrics.bind_errors.labels(outcome.value).inc()

    async def _repair_node(
        self, pod: PodInfo, policy: GroupPolicy, group: GroupKey, deadline: float
    ) -> str | None:
        """Another node for a member whose bind failed, where its gang runs now; polls
        until ``deadline``, then None."""
        while time.monotonic() < deadline:
            _, running = self.need(group, policy)
            node, _ = self.ctx.pick(pod, self.nodes(policy, running))
            if node is not None:
                return node.name
            await asyncio.sleep(REPAIR_POLL_SECONDS)
        return None

    def _give_up(self, qp: QueuedPod, group: GroupKey, detail: str) -> None:
        """No node until the deadline: the member goes back to the queue, with why."""
        ctx = self.ctx
        ctx.reporter.pod_unschedulable(
            ref_of(qp.info),
            f"gang {group}: binding failed until the deadline: {detail}",
            reason="SchedulerError",
        )
        ctx.queue.requeue_backoff(qp)
        ctx.queue.move_all("AssumedPodForgotten")

    # -- telling the group object -------------------------------------------------------

    def _report_group(
        self,
        group: GroupKey,
        reason: str,
        message: str,
        warning: bool = False,
        status: tuple[bool, str] | None = None,
    ) -> None:
        """An Event on the Workload/PodGroup and, where its API has status, a condition."""
        obj = self.gangs.objects.get(group.obj)
        if obj is None:
            return
        apply = None
        if status is not None:
            scheduled, status_reason = status
            # PodGroupInitiallyScheduled is terminal once True: a running gang's later
            # troubles (a member that cannot rejoin) do not undo it.
            if scheduled or group not in self._scheduled_groups:
                apply = gang_status.status_apply(obj, group, scheduled, status_reason, message)
            if scheduled:
                self._scheduled_groups.add(group)
        self.ctx.reporter.event(obj.ref, reason, message, warning=warning, status_apply=apply)
