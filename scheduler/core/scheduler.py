"""The pod cycle, top to bottom: pop, filter and score, assume, bind.

The scheduling cycle (``schedule_one``) is synchronous: it reads the cache,
decides, and records the decision as an assumption before it returns, so no
watch event can slip in between reading and deciding. The binding cycle runs
as a task per pod, many at once, and reports back to the cache and queue.
A member of a gang that still needs members placed goes to the gang cycle
(``gang_cycle.py``), as upstream's ``schedule_one.go`` hands pod groups to
``schedule_one_podgroup.go``. A gang pass can be long, so it hands the event
loop back as it goes; every turn of a gang member therefore runs with watch
events held (``event_hold.py``): they wait, and apply in order once the turn
has committed or abandoned its decision.
"""

from __future__ import annotations

import asyncio
import random
import time

import structlog

from scheduler.binder.binder import BindOutcome
from scheduler.cache.cluster_cache import ClusterCache
from scheduler.core.context import CycleContext, Placement, ref_of
from scheduler.core.event_hold import EventHold
from scheduler.core.gang_cycle import GangCycle, GangTurn
from scheduler.core.gang_preemption import GangPreemption
from scheduler.core.interfaces import Binder, Reporter
from scheduler.core.preemption import PodPreemption
from scheduler.core.volume_binding import VolumePreBind
from scheduler.core.volume_events import not_storage, uses_storage
from scheduler.framework.batching import SignatureCache
from scheduler.framework.cycle import Feasibility, NodeWalk, Profile, pick_node
from scheduler.framework.diagnosis import unschedulable_message
from scheduler.framework.types import NodeInfo, PodInfo
from scheduler.gang.model import Waiting
from scheduler.gang.registry import GangRegistry
from scheduler.metrics import Metrics
from scheduler.metrics.registry import ERROR, UNSCHEDULABLE
from scheduler.queue.scheduling_queue import ClusterEvent, QueuedPod, SchedulingQueue

log = structlog.get_logger(__name__)


class Scheduler:
    """Pops pods and runs the pod cycle on each; gang members go to ``gang_cycle``."""

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
        hold: EventHold | None = None,
        preemption: PodPreemption | None = None,
        volumes: VolumePreBind | None = None,
    ) -> None:
        self.name = name
        self.hold = hold or EventHold()
        """Where watch handlers route their events (``App`` wraps them with it)."""
        # The pod cycle's parts; the context below holds the same objects.
        self.cache = cache
        self.queue = queue
        self.profile = profile
        self.binder = binder
        self.reporter = reporter
        self.metrics = metrics
        self.preemption = preemption
        """PostFilter and the nominations (None: no preemption)."""
        self.volumes = volumes
        """VolumeBinding's Reserve and PreBind (None: no storage watched)."""
        # Shared with the gang cycle: one cluster view, one queue, one bind budget.
        self.ctx = CycleContext(
            cache=cache,
            queue=queue,
            profile=profile,
            binder=binder,
            reporter=reporter,
            metrics=metrics,
            rng=random.Random(seed),
            batch=SignatureCache() if batching else None,
            walk=NodeWalk(percentage_of_nodes_to_score),
            bind_slots=asyncio.Semaphore(parallel_binds),
            parallel_binds=parallel_binds,
        )
        self.gangs = gangs or GangRegistry()
        self.gang_cycle = GangCycle(
            self.ctx,
            self.gangs,
            gang_timeout,
            GangPreemption(cache, profile, self.gangs, preemption, reporter)
            if preemption is not None
            else None,
        )

    @property
    def batch(self) -> SignatureCache | None:
        """The signature cache (None with batching off)."""
        return self.ctx.batch

    async def run(self) -> None:
        """Schedule pods as they become ready, forever."""
        while True:
            qp = await self.queue.pop()
            try:
                await self.schedule(qp)
            except Exception:  # a bug with one pod must not stop the scheduler
                log.exception("scheduling attempt failed", pod=qp.key)
                self.metrics.attempt(ERROR, 0.0)
                self.queue.requeue_backoff(qp)
            # Let watch events and bindings run between pods.
            await asyncio.sleep(0)

    # -- scheduling cycle ------------------------------------------------------------

    async def schedule(self, qp: QueuedPod) -> None:
        """One attempt: the pod cycle, which hands a gang that needs placing to the gang
        cycle; a gang member's whole turn runs with watch events held."""
        if self.gangs.key_of(qp.uid) is None:
            self.schedule_one(qp)
            return
        await self.hold.hold()
        try:
            turn = self.schedule_one(qp)
            if turn is not None:
                await self.gang_cycle.schedule_gang(qp, turn)
        finally:
            self.hold.release()

    def schedule_one(self, qp: QueuedPod) -> GangTurn | None:
        """The pod cycle for ``qp``; a gang member whose gang still needs members placed
        comes back as a ``GangTurn`` for the gang cycle (``schedule``)."""
        pod = qp.info
        started = time.perf_counter()
        if self._already_handled(pod):
            self.queue.done(pod.uid)
            return None
        group = self.gangs.key_of(pod.uid)
        policy = self.gangs.policy(group) if group is not None else None
        if isinstance(policy, Waiting):  # the group object vanished since the pod was admitted
            self.queue.requeue_gated(qp, policy.message)
            return None
        nodes = self.cache.nodes()
        if group is not None and policy is not None and policy.gang:
            need, running_nodes = self.gang_cycle.need(group, policy)
            if need > 0:
                return GangTurn(group, policy, need, running_nodes)
            # The gang already runs: this member joins it, inside its domain.
            nodes = self.gang_cycle.nodes(policy, running_nodes)
        node, fit = self._pick(pod, nodes)
        self.metrics.algorithm_duration.observe(time.perf_counter() - started)
        if node is None:
            message = unschedulable_message(len(nodes), fit.reasons, fit.pre_filter_message)
            if self.preemption is not None and nodes:
                tail = self.preemption.post_filter(pod, nodes, fit)
                if tail:
                    message = f"{message} {tail}"
            self.metrics.attempt(UNSCHEDULABLE, time.perf_counter() - started)
            log.info("pod unschedulable", pod=pod.key, reason=message)
            self.reporter.pod_unschedulable(ref_of(pod), message)
            # Claims, PVs and classes change often; only pods with storage wait for them.
            self.queue.requeue_unschedulable(qp, None if uses_storage(pod.pod) else not_storage)
            return None
        volumes = self.volumes.reserve(pod, node) if self.volumes is not None else None
        self.cache.assume(pod, node.name)
        if self.preemption is not None:
            self.preemption.placed(pod.uid)
        self.start_binding(Placement(qp, node.name, started, volumes))
        return None

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
                return pick_node(self.profile, pod, view, self.ctx.rng, None, self.ctx.walk)
        return self.ctx.pick(pod, nodes)

    def _already_handled(self, pod: PodInfo) -> bool:
        """Bound or assumed meanwhile, or on its way out: never place it (again)."""
        return (
            bool(pod.pod.spec.node_name)
            or pod.pod.metadata.deletion_timestamp is not None
            or self.cache.node_of(pod.uid) is not None
        )

    # -- binding cycle -----------------------------------------------------------------

    def start_binding(self, placement: Placement) -> None:
        self.ctx.spawn(self._bind(placement))

    async def _bind(self, placement: Placement) -> None:
        pod = placement.pod.info
        if placement.volumes is not None and self.volumes is not None:
            pre_bind_started = time.perf_counter()
            error = await self.volumes.bind(pod, placement.node_name, placement.volumes)
            self.metrics.extension_point_duration.labels(
                "PreBind", "Success" if error is None else "Error", self.metrics.profile
            ).observe(time.perf_counter() - pre_bind_started)
            if error is not None:
                # Deleted meanwhile (the cache let go of it): nothing to retry.
                gone = self.cache.node_of(pod.uid) is None
                self._unbound(placement, BindOutcome.POD_GONE if gone else BindOutcome.RETRY, error)
                return
        async with self.ctx.bind_slots:
            bind_started = time.perf_counter()
            outcome, detail = await self.binder.bind(pod.pod, placement.node_name)
        self.metrics.extension_point_duration.labels(
            "Bind", "Success" if outcome is BindOutcome.BOUND else "Error", self.metrics.profile
        ).observe(time.perf_counter() - bind_started)
        if outcome is BindOutcome.BOUND:
            self.ctx.bound(placement)
            return
        self._unbound(placement, outcome, f"Binding rejected: {detail}")

    def _unbound(self, placement: Placement, outcome: BindOutcome, message: str) -> None:
        """The pod was not bound (PreBind or Bind failed): free its node, retry or drop it."""
        qp, pod = placement.pod, placement.pod.info
        detail = message
        self.cache.forget(pod.uid)
        self.metrics.bind_errors.labels(outcome.value).inc()
        self.metrics.attempt(ERROR, time.perf_counter() - placement.started)
        if outcome is BindOutcome.RETRY:
            log.warning(
                "binding failed, will retry", pod=pod.key, node=placement.node_name, error=detail
            )
            self.reporter.pod_unschedulable(ref_of(pod), message, reason="SchedulerError")
            self.queue.requeue_backoff(qp)
        else:
            log.info("binding skipped", pod=pod.key, outcome=outcome.value, detail=detail)
            self.queue.done(pod.uid)
        # The capacity we had assumed is free again.
        self.queue.move_all(
            ClusterEvent.pod_gone("AssumedPodForgotten", placement.node_name, pod.requests)
        )

    async def drain(self) -> None:
        """Wait for the bindings in flight (at shutdown)."""
        await self.ctx.drain()
