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

from scheduler.api.events import ObjectRef, Reporter, pod_ref
from scheduler.binder.binder import Binder, BindOutcome
from scheduler.cache.cluster_cache import ClusterCache
from scheduler.framework.cycle import Profile, pick_node
from scheduler.framework.diagnosis import unschedulable_message
from scheduler.framework.types import PodInfo
from scheduler.metrics import Metrics
from scheduler.metrics.registry import ERROR, SCHEDULED, UNSCHEDULABLE
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
        parallel_binds: int = 64,
        seed: int | None = None,
    ) -> None:
        self.name = name
        self.cache = cache
        self.queue = queue
        self.profile = profile
        self.binder = binder
        self.reporter = reporter
        self.metrics = metrics
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
        nodes = self.cache.nodes()
        node, fit = pick_node(self.profile, pod, nodes, self.rng)
        self.metrics.algorithm_duration.observe(time.perf_counter() - started)
        if node is None:
            message = unschedulable_message(len(nodes), fit.reasons)
            self.metrics.attempt(UNSCHEDULABLE, time.perf_counter() - started)
            log.info("pod unschedulable", pod=pod.key, reason=message)
            self.reporter.pod_unschedulable(_ref(pod), message)
            self.queue.requeue_unschedulable(qp)
            return
        self.cache.assume(pod, node.name)
        self.start_binding(Placement(qp, node.name, started))

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
            log.warning("binding failed, will retry", pod=pod.key, node=placement.node_name,
                        error=detail)
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
