"""Small fakes behind the cycles' protocols, and a scheduler wired on plain data.

``ScriptedBinder`` answers each pod's binds from a script, with the outcomes the
``Binder`` protocol returns (how the real binder classifies the API server's answers
is its own business, tested beside it); ``RecordingReporter`` keeps every report
instead of writing it. ``Cycles`` puts them together with a real
cache, queue, gang registry and profile, as ``scheduler.app`` does, minus the API.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson
from factories import make_pod

from scheduler.api.client import ApiError
from scheduler.binder.binder import BindOutcome
from scheduler.cache.cluster_cache import ClusterCache
from scheduler.core.interfaces import Binder, Reporter
from scheduler.core.scheduler import Scheduler
from scheduler.framework.cycle import Profile, pre_enqueue
from scheduler.framework.podinfo import make_pod_info
from scheduler.framework.types import PodInfo
from scheduler.gang.model import GroupObject
from scheduler.gang.registry import GangRegistry
from scheduler.metrics import Metrics
from scheduler.model.objects import Node, Pod
from scheduler.model.refs import ObjectRef, StatusApply
from scheduler.queue.scheduling_queue import QueuedPod, SchedulingQueue

Answer = BindOutcome | tuple[BindOutcome, str]
"""An outcome, with what the API server said (``""`` when left out)."""
Step = Answer | Callable[[Pod, str], Answer]
"""A scripted answer, or a callable run at bind time (the world moving meanwhile)."""
RETRY_500 = (
    BindOutcome.RETRY,
    "POST /api/v1/namespaces/ns/pods/p/binding: 500 InternalError: etcdserver: request timed out",
)
"""What the real binder returns for a 5xx answer."""


def api_error(status: int, reason: str, message: str) -> ApiError:
    """An error as the API server sends it: a Status object (for ``classify``)."""
    body = orjson.dumps(
        {"kind": "Status", "status": "Failure", "reason": reason, "message": message}
    )
    return ApiError(status, body, "POST", "/api/v1/namespaces/ns/pods/p/binding")


class ScriptedBinder:
    """Answers binds from ``script[pod name]`` in order; BOUND once a script runs out."""

    def __init__(self, script: dict[str, list[Step]] | None = None) -> None:
        self.script = {name: list(steps) for name, steps in (script or {}).items()}
        self.calls: list[tuple[str, str]] = []
        """(pod name, node name) of every bind, in order."""

    async def bind(self, pod: Pod, node_name: str) -> tuple[BindOutcome, str]:
        self.calls.append((pod.metadata.name, node_name))
        steps = self.script.get(pod.metadata.name)
        step: Step = steps.pop(0) if steps else BindOutcome.BOUND
        answer = step(pod, node_name) if callable(step) else step
        return answer if isinstance(answer, tuple) else (answer, "")

    def nodes_of(self, name: str) -> list[str]:
        return [node for pod, node in self.calls if pod == name]


@dataclass(frozen=True, slots=True)
class Report:
    kind: str
    """``event``, ``pod_unschedulable`` or ``pod_scheduled``: the method called."""
    ref: ObjectRef
    reason: str
    message: str = ""
    warning: bool = False
    status_apply: StatusApply | None = None


@dataclass
class RecordingReporter:
    reports: list[Report] = field(default_factory=list)

    def event(
        self,
        ref: ObjectRef,
        reason: str,
        message: str,
        *,
        warning: bool = False,
        action: str = "Scheduling",
        pod_condition: tuple[str, str, str] | None = None,
        status_apply: StatusApply | None = None,
        delay: float = 0.0,
    ) -> None:
        self.reports.append(Report("event", ref, reason, message, warning, status_apply))

    def pod_unschedulable(
        self, ref: ObjectRef, message: str, reason: str = "Unschedulable", delay: float = 0.0
    ) -> None:
        self.reports.append(Report("pod_unschedulable", ref, reason, message, warning=True))

    def pod_scheduled(self, ref: ObjectRef, node: str) -> None:
        self.reports.append(Report("pod_scheduled", ref, "Scheduled", node))

    def about(self, name: str) -> list[Report]:
        """Every report on the object called ``name``, in order."""
        return [r for r in self.reports if r.ref.name == name]

    def scheduled(self) -> dict[str, str]:
        """pod name -> node, for every pod told it was scheduled."""
        return {r.ref.name: r.message for r in self.reports if r.kind == "pod_scheduled"}


# The fakes are what the cycles take.
_: tuple[type[Binder], type[Reporter]] = (ScriptedBinder, RecordingReporter)


class Cycles:
    """A scheduler on plain data: real cache, queue, registry and profile; fake API."""

    def __init__(
        self,
        nodes: Iterable[Node],
        binder: ScriptedBinder | None = None,
        *,
        groups: Iterable[GroupObject] = (),
        gang_timeout: float = 300.0,
    ) -> None:
        self.cache = ClusterCache()
        for node in nodes:
            self.cache.set_node(node)
        self.gangs = GangRegistry()
        for obj in groups:
            self.gangs.set_object(obj)
        self.profile = Profile.default()
        # The queue's gate as the app builds it: PreEnqueue plugins, then the gang's quorum.
        self.queue = SchedulingQueue(
            gate=lambda info: pre_enqueue(self.profile, info) or self.gangs.gate(info)
        )
        self.binder = binder or ScriptedBinder()
        self.reporter = RecordingReporter()
        self.metrics = Metrics()
        self.scheduler = Scheduler(
            name="workload-scheduler",
            cache=self.cache,
            queue=self.queue,
            profile=self.profile,
            binder=self.binder,
            reporter=self.reporter,
            metrics=self.metrics,
            gangs=self.gangs,
            gang_timeout=gang_timeout,
            seed=7,
        )

    def add(self, *pods: Pod) -> list[PodInfo]:
        """Pending pods arrive (as the pod watch hands them over): members first."""
        infos = [make_pod_info(pod) for pod in pods]
        for info in infos:
            self.gangs.observe_pod(info.pod, info.pod.spec.node_name)
        for info in infos:
            if info.pod.spec.node_name:
                self.cache.set_assigned_pod(info, info.pod.spec.node_name)
            else:
                self.queue.add(info)
        return infos

    async def pop(self) -> QueuedPod:
        return await asyncio.wait_for(self.queue.pop(), timeout=5.0)

    async def schedule_next(self) -> QueuedPod:
        """One scheduling cycle on the next ready pod, then every binding it started."""
        qp = await self.pop()
        await self.scheduler.schedule(qp)
        await self.settle()
        return qp

    async def settle(self) -> list[asyncio.Task[None]]:
        """Wait for the bindings in flight; the tasks, to look at how they ended."""
        tasks = list(self.scheduler.ctx.tasks)
        await self.scheduler.drain()
        return tasks

    def node_vanishes(self, answer: Answer) -> Step:
        """A bind step that deletes its target node from the cache (the node vanished
        meanwhile), then answers ``answer``."""

        def step(pod: Pod, node: str) -> Answer:
            self.cache.delete_node(node)
            return answer

        return step

    def where(self, name: str, namespace: str = "ns") -> str | None:
        """The pod's place in the queue (None once the queue let go of it)."""
        qp = self.queue.get(f"uid-{namespace}-{name}")
        return qp.where if qp else None

    def node_of(self, name: str, namespace: str = "ns") -> str | None:
        """Where the cache counts the pod (assumed or confirmed)."""
        return self.cache.node_of(f"uid-{namespace}-{name}")

    def counter(self, name: str, labels: dict[str, str] | None = None) -> float:
        value = self.metrics.registry.get_sample_value(name, labels or {})
        return value or 0.0


def pod(name: str, cpu: str = "1", **kwargs: Any) -> Pod:
    """A pending pod in namespace ``ns`` for our scheduler."""
    kwargs.setdefault("schedulerName", "workload-scheduler")
    return make_pod(name, namespace="ns", cpu=cpu, **kwargs)
