"""A pod's journey, top to bottom: pop, filter and score, assume, bind.

The scheduling cycle (``schedule_one``) is synchronous: it reads the cache,
decides, and records the decision as an assumption before it returns, so no
watch event can slip in between reading and deciding. The binding cycle runs
as a task per pod, many at once, and reports back to the cache and queue.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass

import structlog

from scheduler.api.events import Reporter
from scheduler.binder.binder import Binder, BindOutcome
from scheduler.cache.cluster_cache import ClusterCache
from scheduler.core.preemption import PodPreemption
from scheduler.framework.batching import SignatureCache
from scheduler.framework.cycle import Feasibility, NodeWalk, Profile, pick_node
from scheduler.framework.diagnosis import unschedulable_message
from scheduler.framework.types import NodeInfo, PodInfo
from scheduler.gang import messages
from scheduler.gang import status as gang_status
from scheduler.gang.model import GroupKey, GroupPolicy
from scheduler.gang.placement import domains, place_gang, running_domain
from scheduler.gang.registry import GangRegistry
from scheduler.metrics import Metrics
from scheduler.metrics.registry import ERROR, SCHEDULED, UNSCHEDULABLE
from scheduler.model.refs import ObjectRef, pod_ref
from scheduler.queue.scheduling_queue import QueuedPod, SchedulingQueue

log = structlog.get_logger(__name__)


@dataclass(slots=True)
class Placement:
    pod: QueuedPod
    node_name: str
    started: float
    """perf_counter() at the start of the scheduling attempt."""


class Scheduler:
    def __init__(
        self,
        *,
        name: str,
        cache: ClusterCache,
        queue: SchedulingQueue,
        profile: Profile,
        binder: Binder,
        reporter: Reporter,
        metrics: Metrics,
        gangs: GangRegistry | None = None,
        gang_timeout: float = 300.0,
        batching: bool = True,
        percentage_of_nodes_to_score: int = 0,
        parallel_binds: int = 64,
        seed: int | None = None,
        preemption: PodPreemption | None = None,
    ) -> None:
        self.name = name
        self.cache = cache
        self.queue = queue
        self.profile = profile
        self.binder = binder
        self.reporter = reporter
        self.metrics = metrics
        self.gangs = gangs or GangRegistry()
        self.gang_timeout = gang_timeout
        self.preemption = preemption
        self._scheduled_groups: set[GroupKey] = set()
        self.batch = SignatureCache() if batching else None
        self.walk = NodeWalk(percentage_of_nodes_to_score)
        self.rng = random.Random(seed)
        self._bind_slots = asyncio.Semaphore(parallel_binds)
        self._binding: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        """Schedule pods as they become ready, forever."""
        while True:
            qp = await self.queue.pop()
            try:
                self.schedule_one(qp)
            except Exception:  # a bug with one pod must not stop the scheduler
                log.exception("scheduling attempt failed", pod=qp.key)
                self.metrics.attempt(ERROR, 0.0)
                self.queue.requeue_backoff(qp)
            # Let watch events and bindings run between pods.
            await asyncio.sleep(0)

    # -- scheduling cycle ------------------------------------------------------------

    def schedule_one(self, qp: QueuedPod) -> None:
        pod = qp.info
        started = time.perf_counter()
        if self._already_handled(pod):
            self.queue.done(pod.uid)
            return
        group = self.gangs.key_of(pod.uid)
        policy = self.gangs.policy(group) if group is not None else None
        if isinstance(policy, str):  # the group object vanished since the pod was admitted
            self.queue.requeue_gated(qp, policy)
            return
        nodes = self.cache.nodes()
        if group is not None and policy is not None and policy.gang:
            need, running_nodes = self._gang_need(group, policy)
            if need > 0:
                self.schedule_gang(qp, group, policy, need, running_nodes)
                return
            # The gang already runs: this member joins it, inside its domain.
            nodes = self._gang_nodes(policy, running_nodes)
        node, fit = self._pick(pod, nodes)
        self.metrics.algorithm_duration.observe(time.perf_counter() - started)
        if node is None:
            message = unschedulable_message(len(nodes), fit.reasons)
            if self.preemption is not None and nodes:
                tail = self.preemption.post_filter(pod, nodes, fit)
                if tail:
                    message = f"{message} {tail}"
            self.metrics.attempt(UNSCHEDULABLE, time.perf_counter() - started)
            log.info("pod unschedulable", pod=pod.key, reason=message)
            self.reporter.pod_unschedulable(_ref(pod), message)
            self.queue.requeue_unschedulable(qp)
            return
        self.cache.assume(pod, node.name)
        if self.preemption is not None:
            self.preemption.placed(pod.uid)
        self.start_binding(Placement(qp, node.name, started))

    def _pick(self, pod: PodInfo, nodes: list[NodeInfo]) -> tuple[NodeInfo | None, Feasibility]:
        """The node for the pod: its nominated node if it fits there now, else the best
        one with the nominated pods it must leave room for counted on their nodes."""
        preemption = self.preemption
        if preemption is not None:
            nominated = preemption.nominated_fit(pod, nodes)
            if nominated is not None:
                return nominated, Feasibility(feasible=[nominated])
            view = preemption.nodes_for(pod, nodes)
            if view is not None:  # copies of some nodes: the signature cache does not apply
                return pick_node(self.profile, pod, view, self.rng, None, self.walk)
        return pick_node(self.profile, pod, nodes, self.rng, self.batch, self.walk)

    # -- gangs ------------------------------------------------------------------------

    def _gang_need(self, group: GroupKey, policy: GroupPolicy) -> tuple[int, list[str]]:
        """How many more members must be placed together, and where members run now."""
        running = []
        for uid, assigned in self.gangs.members(group).items():
            node = assigned or self.cache.node_of(uid)
            if node:
                running.append(node)
        return policy.min_count - len(running), running

    def _gang_nodes(self, policy: GroupPolicy, running_nodes: list[str]) -> list[NodeInfo]:
        if policy.topology_key is None:
            return self.cache.nodes()
        domain = running_domain(self.cache, running_nodes, policy.topology_key)
        if domain is None:
            return self.cache.nodes()
        return domains(self.cache.nodes(), policy.topology_key).get(domain, [])

    def schedule_gang(
        self,
        qp: QueuedPod,
        group: GroupKey,
        policy: GroupPolicy,
        need: int,
        running_nodes: list[str],
    ) -> None:
        """Place ``need`` or more members at once against this view of the cluster, or none."""
        started = time.perf_counter()
        pending = [
            u
            for u, node in self.gangs.members(group).items()
            if not node and u != qp.uid and self.cache.node_of(u) is None
        ]
        batch = [qp, *self.queue.pop_ready(pending)]
        pods = [m.info for m in batch]
        if len(pods) < need:
            message = (
                f"waiting for gang {group}: {len(pods)} of {need} more members are "
                f"pending for this scheduler"
            )
            for member in batch:
                self.queue.requeue_gated(member, message)
            return
        domain = None
        if policy.topology_key and running_nodes:
            domain = running_domain(self.cache, running_nodes, policy.topology_key)
        attempt = place_gang(
            self.cache,
            self.profile,
            pods,
            need,
            self.rng,
            topology_key=policy.topology_key,
            domain=domain,
            batch=self.batch,
            walk=self.walk,
        )
        self.metrics.algorithm_duration.observe(time.perf_counter() - started)
        if not attempt.ok(need):
            message = messages.cannot_place(group, pods, need, attempt, policy.topology_key)
            log.info("gang cannot be placed", gang=str(group), reason=message)
            self.metrics.podgroup_attempts.labels(UNSCHEDULABLE, self.metrics.profile).inc()
            for member in batch:
                self.metrics.attempt(UNSCHEDULABLE, time.perf_counter() - started)
                self.reporter.pod_unschedulable(_ref(member.info), message)
                self.queue.requeue_unschedulable(member)
            self._report_group(
                group,
                "FailedScheduling",
                message,
                warning=True,
                status=(False, gang_status.UNSCHEDULABLE),
            )
            return
        self.metrics.podgroup_attempts.labels(SCHEDULED, self.metrics.profile).inc()
        placed = {pod.uid for pod, _ in attempt.placed}
        by_uid = {m.uid: m for m in batch}
        for pod in attempt.unplaced:
            # An extra member beyond minCount with no room now: it may join later.
            extra = by_uid[pod.uid]
            self.reporter.pod_unschedulable(
                _ref(pod), f"gang {group} is placed; no room for this extra member yet"
            )
            self.queue.requeue_unschedulable(extra)
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
        task = asyncio.create_task(self._bind_gang(group, placements, deadline, policy))
        self._binding.add(task)
        task.add_done_callback(self._binding.discard)

    async def _bind_gang(
        self, group: GroupKey, placements: list[Placement], deadline: float, policy: GroupPolicy
    ) -> None:
        started = time.monotonic()
        results = await asyncio.gather(
            *(self._bind_member(p, deadline, policy, group) for p in placements)
        )
        bound = sum(results)
        if bound == len(placements):
            self.metrics.gang_admission.observe(time.monotonic() - started)
            self._report_group(
                group,
                "Scheduled",
                f"gang {group}: all {bound} pods bound",
                status=(True, gang_status.SCHEDULED),
            )
            return
        self.metrics.gang_timeouts.inc()
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
        """Bind one member; if the bind fails, repair it on another node until the deadline."""
        qp, pod = placement.pod, placement.pod.info
        node_name = placement.node_name
        while True:
            async with self._bind_slots:
                outcome, detail = await self.binder.bind(pod.pod, node_name)
            if outcome is BindOutcome.BOUND:
                self.bound(Placement(qp, node_name, placement.started))
                return True
            self.cache.forget(pod.uid)
            self.metrics.bind_errors.labels(outcome.value).inc()
            if outcome is not BindOutcome.RETRY:
                self.queue.done(pod.uid)
                return outcome is BindOutcome.ALREADY_ASSIGNED
            log.warning(
                "gang member bind failed, repairing", pod=pod.key, node=node_name, error=detail
            )
            while True:
                if time.monotonic() >= deadline:
                    self.reporter.pod_unschedulable(
                        _ref(pod),
                        f"gang {group}: binding failed until the deadline: {detail}",
                        reason="SchedulerError",
                    )
                    self.queue.requeue_backoff(qp)
                    self.queue.move_all("AssumedPodForgotten")
                    return False
                _, running = self._gang_need(group, policy)
                node, _ = pick_node(
                    self.profile,
                    pod,
                    self._gang_nodes(policy, running),
                    self.rng,
                    self.batch,
                    self.walk,
                )
                if node is not None:
                    break
                await asyncio.sleep(1.0)
            node_name = node.name
            self.cache.assume(pod, node_name)

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
        self.reporter.event(obj.ref, reason, message, warning=warning, status_apply=apply)

    def _already_handled(self, pod: PodInfo) -> bool:
        """Bound or assumed meanwhile, or on its way out: never place it (again)."""
        return (
            bool(pod.pod.spec.node_name)
            or pod.pod.metadata.deletion_timestamp is not None
            or self.cache.node_of(pod.uid) is not None
        )

    # -- binding cycle -----------------------------------------------------------------

    def start_binding(self, placement: Placement) -> None:
        task = asyncio.create_task(self._bind(placement))
        self._binding.add(task)
        task.add_done_callback(self._binding.discard)

    async def _bind(self, placement: Placement) -> None:
        qp, pod = placement.pod, placement.pod.info
        async with self._bind_slots:
            bind_started = time.perf_counter()
            outcome, detail = await self.binder.bind(pod.pod, placement.node_name)
        self.metrics.extension_point_duration.labels(
            "Bind", "Success" if outcome is BindOutcome.BOUND else "Error", self.metrics.profile
        ).observe(time.perf_counter() - bind_started)
        if outcome is BindOutcome.BOUND:
            self.bound(placement)
            return
        self.cache.forget(pod.uid)
        self.metrics.bind_errors.labels(outcome.value).inc()
        self.metrics.attempt(ERROR, time.perf_counter() - placement.started)
        if outcome is BindOutcome.RETRY:
            log.warning(
                "binding failed, will retry", pod=pod.key, node=placement.node_name, error=detail
            )
            self.reporter.pod_unschedulable(
                _ref(pod), f"Binding rejected: {detail}", reason="SchedulerError"
            )
            self.queue.requeue_backoff(qp)
        else:
            log.info("binding skipped", pod=pod.key, outcome=outcome.value, detail=detail)
            self.queue.done(pod.uid)
        # The capacity we had assumed is free again.
        self.queue.move_all("AssumedPodForgotten")

    def bound(self, placement: Placement) -> None:
        qp, pod = placement.pod, placement.pod.info
        self.cache.finish_binding(pod.uid)
        self.queue.done(pod.uid)
        now = time.perf_counter()
        self.metrics.attempt(SCHEDULED, now - placement.started)
        self.metrics.pod_attempts.observe(qp.attempts)
        self.metrics.sli_duration.labels(str(min(qp.attempts, 15))).observe(
            time.monotonic() - qp.added_at
        )
        log.debug("bound", pod=pod.key, node=placement.node_name)
        self.reporter.pod_scheduled(_ref(pod), placement.node_name)

    async def drain(self) -> None:
        """Wait for the bindings in flight (at shutdown)."""
        if self._binding:
            await asyncio.gather(*self._binding, return_exceptions=True)


def _ref(pod: PodInfo) -> ObjectRef:
    meta = pod.pod.metadata
    return pod_ref(meta.namespace, meta.name, meta.uid)
