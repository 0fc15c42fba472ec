"""Puts the parts together and runs them on one event loop.

watch (nodes, pods) -> cluster cache + queue -> scheduling cycle -> binder,
with reporting, housekeeping, HTTP endpoints and (optionally) leader election
beside them.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
import socket
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import structlog

from scheduler.api.client import ApiClient
from scheduler.api.connection import Connection
from scheduler.api.events import Reporter
from scheduler.api.preemption import PreemptionWriter
from scheduler.api.sources.discovery import ServedApis, discover
from scheduler.api.watch import Reflector
from scheduler.binder.binder import Binder
from scheduler.cache.cluster_cache import ClusterCache
from scheduler.cache.disruption_budgets import DisruptionBudgets
from scheduler.cache.volumes import VolumeStore
from scheduler.config import Settings
from scheduler.controllers import jobs as job_controller
from scheduler.core.event_handlers import (
    ControllerEvents,
    NamespaceEvents,
    NodeEvents,
    PodEvents,
    ServiceEvents,
)
from scheduler.core.gang_preemption import evictable_alone
from scheduler.core.gc_pacing import GcPacer
from scheduler.core.group_sources import group_reflectors
from scheduler.core.job_events import JobEvents
from scheduler.core.preemption import PodPreemption
from scheduler.core.scheduler import Scheduler
from scheduler.core.volume_binding import VolumePreBind
from scheduler.core.volume_events import storage_handlers
from scheduler.framework.cycle import Profile, pre_enqueue
from scheduler.framework.plugins.pod_topology_spread import spread_defaults
from scheduler.framework.plugins.volume_binding import VolumeBinding
from scheduler.framework.types import PodInfo
from scheduler.gang import priority as gang_priority
from scheduler.gang.jobs import JobIndex
from scheduler.gang.registry import GangRegistry
from scheduler.metrics import Metrics
from scheduler.model import pod_fields
from scheduler.model.objects import (
    Controller,
    Job,
    Namespace,
    Node,
    Pod,
    PriorityClass,
    ReplicationController,
    Service,
)
from scheduler.model.policy import PodDisruptionBudget
from scheduler.model.refs import pod_ref
from scheduler.model.volumes import (
    CSIDriver,
    CSINode,
    CSIStorageCapacity,
    PersistentVolume,
    PersistentVolumeClaim,
    StorageClass,
)
from scheduler.queue.nominator import Nominator
from scheduler.queue.scheduling_queue import (
    BACKOFF,
    FLUSH_UNSCHEDULABLE_SECONDS,
    GATED,
    UNSCHEDULABLE,
    QueuedPod,
    SchedulingQueue,
)

log = structlog.get_logger(__name__)

HOUSEKEEPING_SECONDS = 1.0
GATE_REPORT_DELAY = 2.0
"""A pod gated this long is told why (gangs that fill up quickly make no noise)."""


@dataclass
class App:
    settings: Settings
    connection: Connection
    client: ApiClient = field(init=False)
    metrics: Metrics = field(init=False)
    cache: ClusterCache = field(init=False)
    queue: SchedulingQueue = field(init=False)
    reporter: Reporter = field(init=False)
    scheduler: Scheduler = field(init=False)
    reflectors: list[Reflector[Any]] = field(init=False)
    leading: bool = False
    served: ServedApis = field(default_factory=ServedApis)
    _until: asyncio.Event | None = None

    def __post_init__(self) -> None:
        s = self.settings
        spread = spread_defaults(
            s.topology_spread_defaulting, s.topology_spread_default_constraints
        )
        self.client = ApiClient(
            self.connection,
            qps=s.kube_api_qps,
            burst=s.kube_api_burst,
            user_agent=f"{s.scheduler_name}/workload-scheduler",
        )
        self.metrics = Metrics(profile=s.scheduler_name)
        self.cache = ClusterCache()
        self.gc_pacer = GcPacer()
        self.jobs = JobIndex()
        self.gangs = GangRegistry(jobs=self.jobs)
        self.volume_store = VolumeStore()
        gangs = self.gangs
        self.profile = Profile.default(
            s.scoring_strategy,
            cluster=self.cache,
            spread=spread,
            volumes=self.volume_store,
            gang_member=lambda uid: gangs.key_of(uid) is not None,
        )
        self.queue = SchedulingQueue(
            gate=self._gate,
            on_incoming=self._count_incoming,
            on_gated=self._gated,
            priority_of=self._member_priority,
        )
        self.metrics.watch_queue(self.queue.counts)
        self.metrics.watch_gangs(self._gangs_waiting)
        self.reporter = Reporter(
            self.client, s.scheduler_name, f"{s.scheduler_name}-{socket.gethostname()}"
        )
        reporter = self.reporter
        self.metrics.watch_reports(lambda: reporter.pending, lambda: reporter.dropped)
        self.nominator = Nominator()
        self.budgets = DisruptionBudgets()
        self.preempter = PreemptionWriter(self.client, self.reporter)
        profile = self.profile
        self.scheduler = Scheduler(
            name=s.scheduler_name,
            cache=self.cache,
            queue=self.queue,
            profile=self.profile,
            # Never bind to a node the cache no longer has (the API server accepts it).
            binder=Binder(self.client, node_exists=lambda name: self.cache.node(name) is not None),
            reporter=self.reporter,
            metrics=self.metrics,
            gangs=self.gangs,
            gang_timeout=s.gang_timeout_seconds,
            batching=s.batching,
            percentage_of_nodes_to_score=s.percentage_of_nodes_to_score,
            parallel_binds=s.parallel_binds,
            preemption=PodPreemption(
                self.cache,
                profile,
                self.preempter,
                self.metrics,
                self.budgets.budgets,
                self.nominator,
                eligible=evictable_alone(self.gangs),
                priority_of=self._member_priority,
            ),
            volumes=self._volume_pre_bind(),
        )
        # A big gang's Bindings go first; its Events and conditions follow (api.events).
        self.reporter.defer_while = self.scheduler.gang_cycle.binding
        batch = self.scheduler.batch
        if batch is not None:
            self.metrics.watch_batching(lambda: (batch.reused, batch.computed))
        self.pod_events = PodEvents(
            s.scheduler_name,
            self.cache,
            self.queue,
            self._invalid_pod,
            self.reporter.forget,
            self.gangs,
            self.nominator,
        )
        hold = self.scheduler.hold
        self.reflectors = [
            Reflector(
                self.client,
                "/api/v1/nodes",
                Node,
                # Every watch applies through the hold: a gang pass in flight sees none.
                hold.wrap(NodeEvents(self.cache, self.queue, self.scheduler.gang_cycle.node_gone)),
                on_error=self._watch_error,
            ),
            Reflector(
                self.client,
                "/api/v1/pods",
                Pod,
                hold.wrap(self.pod_events),
                # As kube-scheduler: finished pods leave the watch (as deletions).
                params={"fieldSelector": "status.phase!=Succeeded,status.phase!=Failed"},
                on_error=self._watch_error,
                # A pending pod using a field we do not know is refused, not misplaced.
                inspect=pod_fields.inspect_pod,
            ),
            # Which Jobs make their pods gang members (a few fields per Job): known
            # before those pods are tried, since both watches must sync first.
            Reflector(
                self.client,
                "/apis/batch/v1/jobs",
                Job,
                hold.wrap(JobEvents(self.jobs, self.pod_events.jobs_changed)),
                on_error=self._watch_error,
            ),
            Reflector(
                self.client,
                "/api/v1/namespaces",
                Namespace,
                NamespaceEvents(self.cache, self.queue),
                on_error=self._watch_error,
            ),
            # Preemption respects PodDisruptionBudgets, as kube-scheduler does.
            Reflector(
                self.client,
                "/apis/policy/v1/poddisruptionbudgets",
                PodDisruptionBudget,
                self.budgets,
                on_error=self._watch_error,
            ),
        ]
        # Class names of groups (our CRD's priorityClassName) resolve from this watch. Not
        # waited for: a credential without it (kube-scheduler's own, in bench/) still
        # schedules; such a gang does not preempt ("no PriorityClass with name ...").
        self.gangs.classes.on_new = lambda: self.queue.move_all("PriorityClassAdd")
        self.optional_reflectors = [
            Reflector(
                self.client,
                "/apis/scheduling.k8s.io/v1/priorityclasses",
                PriorityClass,
                hold.wrap(self.gangs.classes),
                on_error=self._watch_error,
            )
        ]
        if spread.in_use:
            self._watch_spread_selectors()
        self._watch_storage()

    def _volume_pre_bind(self) -> VolumePreBind | None:
        plugin = next((p for p in self.profile.pre_filters if isinstance(p, VolumeBinding)), None)
        if plugin is None:
            return None
        cache = self.cache

        def node_labels(name: str) -> dict[str, str] | None:
            node = cache.node(name)
            return node.node.metadata.labels if node is not None else None

        return VolumePreBind(
            self.client,
            self.volume_store,
            plugin,
            pod_present=lambda uid: cache.node_of(uid) is not None,
            node_labels=node_labels,
            timeout=self.settings.volume_bind_timeout_seconds,
        )

    def _watch_storage(self) -> None:
        """The volume plugins read claims, PVs, StorageClasses, CSINodes, CSIDrivers and
        CSIStorageCapacities (as upstream's)."""
        claims, volumes, classes, csi_nodes, drivers, capacities = storage_handlers(
            self.volume_store, self.queue
        )
        hold = self.scheduler.hold
        sources: list[tuple[str, type[Any], Any]] = [
            ("/api/v1/persistentvolumeclaims", PersistentVolumeClaim, claims),
            ("/api/v1/persistentvolumes", PersistentVolume, volumes),
            ("/apis/storage.k8s.io/v1/storageclasses", StorageClass, classes),
            ("/apis/storage.k8s.io/v1/csinodes", CSINode, csi_nodes),
            ("/apis/storage.k8s.io/v1/csidrivers", CSIDriver, drivers),
            ("/apis/storage.k8s.io/v1/csistoragecapacities", CSIStorageCapacity, capacities),
        ]
        for path, item_type, handler in sources:
            self.reflectors.append(
                Reflector(
                    self.client, path, item_type, hold.wrap(handler), on_error=self._watch_error
                )
            )

    def _watch_spread_selectors(self) -> None:
        """Default topology spreading selects a pod's peers by its Services and controller."""
        sources: list[tuple[str, type[Any], Any]] = [
            ("/api/v1/services", Service, ServiceEvents(self.cache)),
            (
                "/api/v1/replicationcontrollers",
                ReplicationController,
                ControllerEvents("ReplicationController", self.cache),
            ),
            ("/apis/apps/v1/replicasets", Controller, ControllerEvents("ReplicaSet", self.cache)),
            (
                "/apis/apps/v1/statefulsets",
                Controller,
                ControllerEvents("StatefulSet", self.cache),
            ),
        ]
        for path, item_type, handler in sources:
            self.reflectors.append(
                Reflector(self.client, path, item_type, handler, on_error=self._watch_error)
            )

    def _watch_error(self, path: str) -> None:
        self.metrics.watch_errors.labels(path).inc()

    async def _add_group_sources(self) -> None:
        """Watch whichever pod-group APIs the cluster serves (found by discovery)."""
        # The Job controller needs to know where it can make group objects.
        self.served = await discover(self.client)
        self.reflectors += await group_reflectors(
            self.client, self.gangs, self.pod_events.regate, self._watch_error, self.scheduler.hold
        )

    def _gate(self, info: PodInfo) -> str | None:
        """The profile's PreEnqueue plugins (scheduling gates), then the gang's quorum."""
        return pre_enqueue(self.profile, info) or self.gangs.gate(info)

    def synced(self) -> bool:
        return all(r.synced.is_set() for r in self.reflectors)

    def ready(self) -> bool:
        return self.synced()

    async def run(
        self,
        *,
        until: asyncio.Event | None = None,
        elect: Callable[[Callable[[], Coroutine[Any, Any, None]]], Coroutine[Any, Any, None]]
        | None = None,
        serve_http: bool = True,
    ) -> None:
        """Run until cancelled or ``until`` is set."""
        from scheduler.server import serve

        self._until = until
        self.client.open()
        # What exists now (modules, the official client's models, settings) lives as long as
        # the process: keep it out of the cyclic collector's full passes, which otherwise
        # walk it all and stall the event loop for a tenth of a second or more.
        gc.collect()
        gc.freeze()
        await self._add_group_sources()
        runners = []
        if serve_http:
            runners = await serve(self.settings, self.client, self.metrics.registry, self.ready)
        log.info(
            "starting",
            scheduler_name=self.settings.scheduler_name,
            server=self.connection.server,
            credentials=self.connection.source,
        )
        tasks = [
            asyncio.create_task(r.run(), name=f"watch {r.path}")
            for r in (*self.reflectors, *self.optional_reflectors)
        ]
        tasks.append(asyncio.create_task(self.reporter.run(), name="reporter"))
        tasks.append(asyncio.create_task(self._housekeeping(), name="housekeeping"))
        tasks.append(asyncio.create_task(self.metrics.loop.run(), name="loop-monitor"))
        if elect is None:
            tasks.append(asyncio.create_task(self._schedule(), name="scheduling"))
        else:
            tasks.append(asyncio.create_task(elect(self._schedule), name="leader-election"))
        if until is not None:
            tasks.append(asyncio.create_task(_wait(until), name="until"))
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                if task.get_name() != "until" and task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]
        finally:
            for task in tasks:
                task.cancel()
            with contextlib.suppress(BaseException):
                await asyncio.gather(*tasks, return_exceptions=True)
            await self.scheduler.drain()
            await self.preempter.drain()
            for runner in runners:
                await runner.cleanup()
            await self.client.close()
            log.info("stopped")

    async def _schedule(self) -> None:
        await asyncio.gather(*(r.synced.wait() for r in self.reflectors))
        # A list is applied a slice at a time (event_hold): all of it before any decision.
        await self.scheduler.hold.drained()
        self.leading = True
        # The listed caches live long: out of the collector's full passes (gc_pacing).
        self.gc_pacer.freeze()
        log.info(
            "caches synced, scheduling", nodes=len(self.cache.nodes()), pending=len(self.queue)
        )
        # The Job controller runs only while we lead (this task), beside the cycle.
        controller = job_controller.JobGangController(
            self.client, self.served, self.reporter, self.settings.scheduler_name
        )
        jobs = asyncio.create_task(
            job_controller.run(controller, self.connection, after_start=self._restore_signals),
            name="job controller",
        )
        try:
            await self.scheduler.run()
        finally:
            jobs.cancel()
            with contextlib.suppress(BaseException):
                await jobs
            # Stopped (or no longer leading): the bindings in flight finish first, so a
            # released Lease never lets a new leader race our last binds.
            await self.scheduler.drain()

    def _restore_signals(self) -> None:
        """kopf sets SIGINT/SIGTERM handlers of its own when it starts: ours come back
        (they stop the whole scheduler, kopf included)."""
        if threading.current_thread() is not threading.main_thread():
            return
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            if self._until is not None:
                loop.add_signal_handler(sig, self._until.set)
            else:
                loop.remove_signal_handler(sig)

    async def _housekeeping(self) -> None:
        flushed = time.monotonic()
        while True:
            await asyncio.sleep(HOUSEKEEPING_SECONDS)
            if time.monotonic() - flushed >= FLUSH_UNSCHEDULABLE_SECONDS:
                flushed = time.monotonic()
                self.queue.flush_unschedulable()
            await self.pod_events.recount_waiting()
            self.gc_pacer.tick()
            self.metrics.cache_size.labels("nodes").set(len(self.cache.nodes()))
            self.metrics.cache_size.labels("pods").set(self.cache.pod_count)
            self.metrics.cache_size.labels("assumed_pods").set(self.cache.assumed_count)

    def _gangs_waiting(self) -> int:
        waiting = {
            self.gangs.key_of(qp.uid)
            for qp in self.queue.pods_in_any()
            if qp.where in (GATED, UNSCHEDULABLE, BACKOFF)
        }
        waiting.discard(None)
        return len(waiting)

    def _member_priority(self, info: PodInfo) -> int:
        """The priority a pod counts at in the queue and against nominations (a gang
        member: its group's, ``gang.priority``)."""
        return gang_priority.member_priority(self.gangs, info)

    def _gated(self, qp: QueuedPod, message: str | None) -> None:
        """Tell a gated pod why it waits (and the group object it names: a gang short of
        its minCount, or a pod with half of our labels, is seen on the group too)."""
        meta = qp.info.pod.metadata
        group = self.gangs.object_to_tell(qp.info)
        if message is None:
            self.reporter.cancel(meta.uid, "FailedScheduling")
            if group is not None:
                obj, topic = group
                self.reporter.cancel(obj.ref.uid, f"FailedScheduling/{topic}")
            return
        self.reporter.pod_unschedulable(
            pod_ref(meta.namespace, meta.name, meta.uid),
            message,
            reason="NotReadyForScheduling",
            delay=GATE_REPORT_DELAY,
        )
        if group is not None:
            obj, topic = group
            about = f"pod {meta.namespace}/{meta.name}: " if topic.startswith("pod ") else ""
            self.reporter.event(
                obj.ref,
                "FailedScheduling",
                about + message,
                warning=True,
                delay=GATE_REPORT_DELAY,
                topic=topic,
            )

    def _count_incoming(self, queue: str, event: str) -> None:
        self.metrics.queue_incoming.labels(queue, event).inc()

    def _invalid_pod(self, pod: Pod, message: str) -> None:
        log.warning("invalid pod", pod=pod.key, error=message)
        if pod.spec.scheduler_name == self.settings.scheduler_name and not pod.spec.node_name:
            meta = pod.metadata
            self.reporter.pod_unschedulable(
                pod_ref(meta.namespace, meta.name, meta.uid), message, reason="InvalidPod"
            )


async def _wait(event: asyncio.Event) -> None:
    await event.wait()
