"""The gang cycle: a whole gang placed at once, bound together, repaired, reported.

It sits beside the pod cycle (``scheduler.py``) as upstream keeps
``schedule_one_podgroup.go`` beside ``schedule_one.go``. The pod cycle hands over a
member of a gang that still needs members placed; ``schedule_gang`` takes every
pending sibling out of the queue and places at least ``need`` of them against one
view of the cluster, or none (``scheduler.gang.placement``). A placed gang is bound
in the background by ``parallel_binds`` binders taking members in turn (``_bind_gang``,
started a few milliseconds apart), each member on its own:

1. bind the member on its planned node (``_bind_once``); bound: done;
2. the pod is gone, or already assigned (409): drop it from the queue; an assigned
   one counts as bound;
3. any other failure: release the node and repair the member in a task of its own
   (``_repair_member``, so the binders go on): pause (``REPAIR_PAUSE_SECONDS`` doubling, so a
   refusal that repeats is no busy loop) and look for another one where the gang runs
   (``_repair_node``), every ``REPAIR_POLL_SECONDS`` until the gang's deadline, and
   bind again there; a member the watch shows bound meanwhile (a bind of ours that
   landed after all, or someone else's) counts as bound;
4. no node by the deadline: give the member up (FailedScheduling, back-off).

While a gang's binders run, Events and conditions wait (``Reporter.defer_while``,
10 s at most): the API server spends itself on the Bindings first.

The group object hears of it (``_report_group``): ``GangAdmitted`` when placed,
``Scheduled`` once every member is bound, ``GangTimeout`` when some were not,
``FailedScheduling`` when the gang cannot be placed.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable
from typing import NamedTuple

import structlog

from scheduler.binder.binder import BindOutcome
from scheduler.core.context import CycleContext, Placement, ref_of
from scheduler.core.gang_preemption import GangPreemption
from scheduler.framework.types import NodeInfo, PodInfo
from scheduler.gang import messages
from scheduler.gang import status as gang_status
from scheduler.gang.model import GroupKey, GroupPolicy
from scheduler.gang.placement import (
    YIELD_EVERY_SECONDS,
    Pacer,
    domains,
    gang_steps,
    run_steps_async,
    running_domain,
)
from scheduler.gang.registry import GangRegistry
from scheduler.gang.retry import GangRetryHint
from scheduler.metrics.registry import SCHEDULED, UNSCHEDULABLE
from scheduler.queue.scheduling_queue import ClusterEvent, QueuedPod

log = structlog.get_logger(__name__)

REPAIR_POLL_SECONDS = 1.0
"""How often a member whose bind failed looks again for a node in its gang's domain."""
REPAIR_PAUSE_SECONDS = 0.1
REPAIR_PAUSE_MAX_SECONDS = 2.0
"""Between a member's failed bind and its next try (doubling)."""
BINDER_STAGGER_SECONDS = 0.003
"""Between the starts of a gang's binders (64 binders: under 0.2 s to all of them)."""


class GangTurn(NamedTuple):
    """A gang member the pod cycle hands over: its gang still needs members placed."""

    group: GroupKey
    policy: GroupPolicy
    need: int
    running_nodes: list[str]


class GangCycle:
    """Places, binds, repairs and reports whole gangs, for the pod cycle."""

    def __init__(
        self,
        ctx: CycleContext,
        gangs: GangRegistry,
        gang_timeout: float,
        preemption: GangPreemption | None = None,
    ) -> None:
        self.ctx = ctx
        self.gangs = gangs
        self.preemption = preemption
        """Room for a gang that cannot be placed, from lower-priority units (None: off)."""
        self.gang_timeout = gang_timeout
        """Seconds a placed gang may take to be fully bound, unless its object says."""
        self._scheduled_groups: set[GroupKey] = set()
        self._binding = 0
        """Gangs whose members are being bound now."""
        self.yield_every = YIELD_EVERY_SECONDS
        """Seconds of placement work between turns of the event loop."""

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

    async def schedule_gang(self, qp: QueuedPod, turn: GangTurn) -> None:
        """Place ``need`` or more members at once against this view of the cluster, or none.

        The pass hands the event loop back as it goes (``run_steps_async``); the caller
        holds watch events until this returns, so the view stays the same throughout."""
        ctx = self.ctx
        group, policy, need, running_nodes = turn
        started = time.perf_counter()
        pending = [
            u
            for u, node in self.gangs.members(group).items()
            if not node and u != qp.uid and ctx.cache.node_of(u) is None and _ungated(ctx, u)
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
        preemption = self.preemption
        # Room nominated to other preemptors (of this priority or higher) stays theirs.
        holding = (
            preemption.pods.holding(
                set(self.gangs.members(group)), preemption.group_priority(policy, pods)
            )
            if preemption is not None
            else contextlib.nullcontext()
        )
        with holding:
            # The pass hands the loop back every few milliseconds; watch events are held.
            attempt = await run_steps_async(
                gang_steps(
                    ctx.cache,
                    ctx.profile,
                    pods,
                    need,
                    ctx.rng,
                    topology_key=policy.topology_key,
                    domain=domain,
                    batch=ctx.batch,
                    walk=ctx.walk,
                ),
                self.yield_every,
            )
        took = time.perf_counter() - started
        ctx.metrics.algorithm_duration.observe(took)
        if not attempt.ok(need):
            message = messages.cannot_place(group, pods, need, attempt, policy.topology_key)
            if preemption is not None:
                outcome = preemption.preempt(group, policy, pods, need, domain)
                message = f"{message}. preemption: {outcome.message}"
            log.info(
                "gang cannot be placed",
                gang=str(group),
                reason=message,
                domains_pruned=attempt.domains_pruned,
                domains_tried=attempt.domains_tried,
                seconds=round(took, 3),
            )
            ctx.metrics.podgroup_attempts.labels(UNSCHEDULABLE, ctx.metrics.profile).inc()
            # Parked until an event could make it fit, and backing off as one gang.
            hint = GangRetryHint(attempt, self._domain_of(policy.topology_key))
            attempts = max(member.attempts for member in batch)
            pacer = Pacer(self.yield_every)  # thousands of members: a few ms per turn
            for member in batch:
                ctx.metrics.attempt(UNSCHEDULABLE, time.perf_counter() - started)
                ctx.reporter.pod_unschedulable(ref_of(member.info), message)
                ctx.queue.requeue_unschedulable(member, hint=hint, attempts=attempts)
                await pacer.turn()
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
        if preemption is not None:
            for uid in placed:  # the room a preemption made has been taken
                preemption.pods.placed(uid)
        by_uid = {m.uid: m for m in batch}
        for pod in attempt.unplaced:
            # An extra member beyond minCount with no room now: it may join later.
            extra = by_uid[pod.uid]
            ctx.reporter.pod_unschedulable(
                ref_of(pod), f"gang {group} is placed; no room for this extra member yet"
            )
            ctx.queue.requeue_unschedulable(extra)
        timeout = policy.timeout_seconds or self.gang_timeout
        log.info(
            "gang placed",
            gang=str(group),
            pods=len(placed),
            domain=attempt.domain,
            domains_pruned=attempt.domains_pruned,
            domains_tried=attempt.domains_tried,
            seconds=round(took, 3),
        )
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

    def _domain_of(self, topology_key: str | None) -> Callable[[str], str | None] | None:
        """Node name -> its value of ``topology_key`` (None without a key)."""
        if topology_key is None:
            return None
        cache = self.ctx.cache

        def domain_of(name: str) -> str | None:
            node = cache.node(name)
            return node.node.metadata.labels.get(topology_key) if node else None

        return domain_of

    # -- binding: every member, repaired until the deadline ------------------------------

    def binding(self) -> bool:
        """Some gang's binders are running now (Events and conditions may wait)."""
        return self._binding > 0

    async def _bind_gang(
        self, group: GroupKey, placements: list[Placement], deadline: float, policy: GroupPolicy
    ) -> None:
        """Bind every member: ``parallel_binds`` binders take members in turn (no task per
        member: a 2,000-pod gang would start 2,000 tasks in one turn of the loop); a
        member whose bind fails is repaired in a task of its own, the binders go on."""
        started = time.monotonic()
        todo = deque(placements)
        repairs: list[asyncio.Task[bool]] = []

        async def binder() -> int:
            bound = 0
            while todo:
                placement = todo.popleft()
                result, detail = await self._bind_once(placement)
                if result is None:
                    repairs.append(
                        asyncio.create_task(
                            self._repair_member(placement, detail, deadline, policy, group)
                        )
                    )
                else:
                    bound += result
            return bound

        binders: list[asyncio.Task[int]] = []
        try:
            self._binding += 1  # Events wait while the binders run (not while repairs do)
            try:
                while todo and len(binders) < self.ctx.parallel_binds:
                    binders.append(asyncio.create_task(binder()))
                    # One binder at a time: each may open a connection, and dozens of TLS
                    # handshakes finishing in one turn of the loop stalled it for 100 ms.
                    await asyncio.sleep(BINDER_STAGGER_SECONDS)
                counts = await asyncio.gather(*binders)
            finally:
                self._binding -= 1
            bound = sum(counts) + sum(await asyncio.gather(*repairs))
        finally:
            for task in [*binders, *repairs]:  # cancelled (shutdown): none outlives us
                task.cancel()
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

    async def _bind_once(self, placement: Placement) -> tuple[bool | None, str]:
        """Bind a member on its planned node: True bound (or already assigned), False
        gone, None failed and to be repaired (its node released), with what went wrong."""
        ctx = self.ctx
        pod = placement.pod.info
        async with ctx.bind_slots:
            outcome, detail = await ctx.binder.bind(pod.pod, placement.node_name)
        if outcome is BindOutcome.BOUND:
            ctx.bound(placement)
            return True, ""
        self._release(pod, outcome)
        if outcome is not BindOutcome.RETRY:
            ctx.queue.done(pod.uid)
            return outcome is BindOutcome.ALREADY_ASSIGNED, detail
        log.warning(
            "gang member bind failed, repairing",
            pod=pod.key,
            node=placement.node_name,
            error=detail,
        )
        return None, detail

    async def _repair_member(
        self,
        placement: Placement,
        detail: str,
        deadline: float,
        policy: GroupPolicy,
        group: GroupKey,
    ) -> bool:
        """A member whose bind failed: after a pause (doubling), another node where its
        gang runs, bound, until the deadline. True when the member counts as bound."""
        ctx = self.ctx
        qp, pod = placement.pod, placement.pod.info
        pause = REPAIR_PAUSE_SECONDS
        while True:
            await asyncio.sleep(min(pause, max(0.0, deadline - time.monotonic())))
            pause = min(pause * 2, REPAIR_PAUSE_MAX_SECONDS)
            repaired = await self._repair_node(pod, policy, group, deadline)
            if ctx.cache.node_of(pod.uid) is not None:
                # Bound meanwhile: the watch has it on a node. Never assume it again.
                log.info("gang member bound meanwhile", pod=pod.key)
                ctx.queue.done(pod.uid)
                return True
            if repaired is None:
                self._give_up(qp, group, detail)
                return False
            ctx.cache.assume(pod, repaired)
            result, detail = await self._bind_once(Placement(qp, repaired, placement.started))
            if result is not None:
                return result

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
        ctx.queue.move_all(ClusterEvent("AssumedPodForgotten"))

    def node_gone(self, node_name: str) -> None:
        """A node was deleted: every gang with members bound there is told how many of its
        members are left on nodes that exist, when that is below its minCount. (The pods
        stay until PodGC deletes them; their replacements are placed as members.)"""
        cache = self.ctx.cache
        for group in self.gangs.groups():
            members = self.gangs.members(group)
            lost = [uid for uid, node in members.items() if node == node_name]
            if not lost:
                continue
            policy = self.gangs.policy(group)
            if not isinstance(policy, GroupPolicy) or not policy.gang:
                continue
            alive = sum(1 for node in members.values() if node and cache.node(node) is not None)
            if alive >= policy.min_count:
                continue
            message = (
                f"gang {group}: node {node_name} was deleted with {len(lost)} member(s) bound "
                f"to it; {alive} of minCount {policy.min_count} members are on nodes that exist"
            )
            log.warning("gang member's node deleted", gang=str(group), node=node_name)
            self._report_group(group, "MemberNodeDeleted", message, warning=True)

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


def _ungated(ctx: CycleContext, uid: str) -> bool:
    """A sibling still carrying ``spec.schedulingGates`` (as Kueue leaves pods until
    admission) never enters a gang pass: the API server would refuse its Binding."""
    queued = ctx.queue.get(uid)
    return queued is not None and not queued.info.pod.spec.scheduling_gates
