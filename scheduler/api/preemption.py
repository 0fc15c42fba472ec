"""Carrying out a preemption decision on the API server, in the background.

As upstream's ``Evaluator.PreemptPod`` and ``prepareCandidate``:

- a victim first gets the condition ``DisruptionTarget=True``, reason
  ``PreemptionByScheduler``, message ``<schedulerName>: preempting to accommodate a
  higher priority pod``, then is deleted gracefully (its own grace period), then gets a
  ``Preempted`` Event (action ``Preempting``): ``Preempted by pod <preemptor uid> on
  node <node>``, with the preemptor pod as the Event's ``related`` object;
  a victim already gone (404) is skipped quietly;
- a victim of a gang's preemption gets upstream's 1.37 pod-group wording instead
  (``Executor.PreemptPod`` with a pod-group preemptor, whose candidate is the whole
  cluster): ``... a higher priority podgroup`` and ``Preempted by podgroup <group uid>
  on node cluster``, ``related`` the preemptor's group object (PodGroup, Workload or
  our CRD's Workload);
- the preemptor's ``status.nominatedNodeName`` is set (or cleared) with a patch of
  ``pods/status``.

The delete carries the victim's UID as a precondition, so a new pod that took the
same name meanwhile is never deleted (upstream deletes by name only).
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

import structlog

from scheduler.api.client import STRATEGIC_MERGE_PATCH, ApiClient, ApiError
from scheduler.api.events import Reporter
from scheduler.model.objects import Pod
from scheduler.model.refs import ObjectRef, now_rfc3339, pod_ref

log = structlog.get_logger(__name__)


POD = "pod"
PODGROUP = "podgroup"
CLUSTER = "cluster"
"""The candidate name upstream reports for a pod group's preemption (its domain)."""


def disruption_condition(scheduler_name: str, preemptor_type: str = POD) -> dict[str, str]:
    """The condition upstream puts on a victim before deleting it."""
    return {
        "type": "DisruptionTarget",
        "status": "True",
        "reason": "PreemptionByScheduler",
        "message": f"{scheduler_name}: preempting to accommodate a higher priority "
        f"{preemptor_type}",
        "lastTransitionTime": now_rfc3339(),
    }


class PreemptionWriter:
    """Nominates preemptors and evicts victims; every call returns at once."""

    def __init__(self, client: ApiClient, reporter: Reporter) -> None:
        self.client = client
        self.reporter = reporter
        self._tasks: set[asyncio.Task[None]] = set()

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def nominate(self, pod: Pod, node_name: str) -> None:
        self._spawn(self._nominate(pod, node_name))

    def evict(
        self, victim: Pod, preemptor: Pod, node_name: str, group: ObjectRef | None = None
    ) -> None:
        self._spawn(self._evict(victim, preemptor, node_name, group))

    async def drain(self) -> None:
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _nominate(self, pod: Pod, node_name: str) -> None:
        meta = pod.metadata
        try:
            await self.client.patch(
                f"/api/v1/namespaces/{meta.namespace}/pods/{meta.name}/status",
                {"status": {"nominatedNodeName": node_name or None}},
                STRATEGIC_MERGE_PATCH,
            )
        except ApiError as exc:
            if exc.status != 404:
                log.warning("could not set nominatedNodeName", pod=pod.key, error=str(exc))
        except Exception as exc:
            log.warning("could not set nominatedNodeName", pod=pod.key, error=str(exc))

    async def _evict(
        self, victim: Pod, preemptor: Pod, node_name: str, group: ObjectRef | None
    ) -> None:
        meta = victim.metadata
        path = f"/api/v1/namespaces/{meta.namespace}/pods/{meta.name}"
        kind = POD if group is None else PODGROUP
        condition = disruption_condition(preemptor.spec.scheduler_name, kind)
        try:
            await self.client.patch(
                f"{path}/status", {"status": {"conditions": [condition]}}, STRATEGIC_MERGE_PATCH
            )
            await self.client.request(
                "DELETE",
                path,
                body={
                    "apiVersion": "v1",
                    "kind": "DeleteOptions",
                    "preconditions": {"uid": meta.uid},
                },
            )
        except ApiError as exc:
            if exc.status in (404, 409):  # gone already, or a different pod by that name now
                log.info("victim already gone", victim=victim.key, preemptor=preemptor.key)
                return
            log.warning("could not preempt", victim=victim.key, error=str(exc))
            return
        except Exception as exc:
            log.warning("could not preempt", victim=victim.key, error=str(exc))
            return
        log.info("preempted", victim=victim.key, preemptor=preemptor.key, node=node_name)
        pmeta = preemptor.metadata
        related = group or pod_ref(pmeta.namespace, pmeta.name, pmeta.uid)
        where = node_name if group is None else CLUSTER
        self.reporter.event(
            pod_ref(meta.namespace, meta.name, meta.uid),
            "Preempted",
            f"Preempted by {kind} {related.uid} on node {where}",
            action="Preempting",
            related=related,
        )
