"""What the pod cycle and the gang cycle share: the cluster view, the queue, the profile,
and the way a pod's binding finishes.

Upstream both cycles are methods of one ``Scheduler`` struct, in two files; here they
are two classes (``scheduler.Scheduler``, ``gang_cycle.GangCycle``) holding one
``CycleContext``, so neither module imports the other's class and each can be tested
on its own.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog

from scheduler.cache.cluster_cache import ClusterCache
from scheduler.core.interfaces import Binder, Reporter
from scheduler.framework.batching import SignatureCache
from scheduler.framework.cycle import Feasibility, NodeWalk, Profile, pick_node
from scheduler.framework.plugins.volume_binding import PodVolumes
from scheduler.framework.types import NodeInfo, PodInfo
from scheduler.metrics import Metrics
from scheduler.metrics.registry import SCHEDULED
from scheduler.model.refs import ObjectRef, pod_ref
from scheduler.queue.scheduling_queue import QueuedPod, SchedulingQueue

log = structlog.get_logger(__name__)


@dataclass(slots=True)
class Placement:
    """A pod and the node chosen (and assumed) for it, on its way to being bound."""

    pod: QueuedPod
    node_name: str
    started: float
    """perf_counter() at the start of the scheduling attempt."""
    volumes: PodVolumes | None = None
    """The volume bindings reserved for the node, written before the pod is bound."""


@dataclass(slots=True, eq=False)
class CycleContext:
    """The parts both cycles use, and the steps they share (pick, spawn, bound, drain)."""

    cache: ClusterCache
    queue: SchedulingQueue
    profile: Profile
    binder: Binder
    reporter: Reporter
    metrics: Metrics
    rng: random.Random
    batch: SignatureCache | None
    """Filter and score results reused across pods of one signature (None: off)."""
    walk: NodeWalk
    bind_slots: asyncio.Semaphore
    """Bind requests in flight at once (``--parallel-binds``), over both cycles."""
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    """Bindings in flight, so that shutdown can wait for them."""
    parallel_binds: int = 64
    """The size of ``bind_slots``: how many binders a gang's binding runs."""

    def pick(self, pod: PodInfo, nodes: Sequence[NodeInfo]) -> tuple[NodeInfo | None, Feasibility]:
        """The profile's choice for ``pod`` among ``nodes`` (None if none fits)."""
        return pick_node(self.profile, pod, nodes, self.rng, self.batch, self.walk)

    def spawn(self, binding: Coroutine[Any, Any, None]) -> None:
        """Run a binding in the background (the scheduling cycle does not wait for it)."""
        task = asyncio.create_task(binding)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def bound(self, placement: Placement) -> None:
        """The bind succeeded: confirm it in the cache, let the queue go, tell the pod."""
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
        self.reporter.pod_scheduled(ref_of(pod), placement.node_name)

    async def drain(self) -> None:
        """Wait for the bindings in flight (at shutdown)."""
        if self.tasks:
            await asyncio.gather(*self.tasks, return_exceptions=True)


def ref_of(pod: PodInfo) -> ObjectRef:
    """The pod as the object of an Event."""
    meta = pod.pod.metadata
    return pod_ref(meta.namespace, meta.name, meta.uid)
