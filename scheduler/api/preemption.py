"""Carrying out a preemption decision on the API server, in the background.

As upstream's ``Evaluator.PreemptPod`` and ``prepareCandidate``:

- a victim first gets the condition ``DisruptionTarget=True``, reason
  ``PreemptionByScheduler``, message ``<schedulerName>: preempting to accommodate a
  higher priority pod``, then is deleted gracefully (its own grace period), then gets a
  ``Preempted`` Event: ``Preempted by pod <preemptor uid> on node <node>``;
  a victim already gone (404) is skipped quietly;
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
from scheduler.model.refs import now_rfc3339, pod_ref

log = structlog.get_logger(__name__)


def disruption_condition(scheduler_name: str) -> dict[str, str]:
    """The condition upstream puts on a victim before deleting it."""
    return {
        "type": "DisruptionTarget",
        "status": "True",
        "reason": "PreemptionByScheduler",
        "message": f"{scheduler_name}: preempting to accommodate a higher priority pod",
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

    def evict(self, victim: Pod, preemptor: Pod, node_name: str) -> None:
        self._spawn(self._evict(victim, preemptor, node_name))

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

    async def _evict(self, victim: Pod, preemptor: Pod, node_name: str) -> None:
        meta = victim.metadata
        path = f"/api/v1/namespaces/{meta.namespace}/pods/{meta.name}"
        try:
            await self.client.patch(
                f"{path}/status",
                {"status": {"conditions": [disruption_condition(preemptor.spec.scheduler_name)]}},
                STRATEGIC_MERGE_PATCH,
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
        self.reporter.event(
            pod_ref(meta.namespace, meta.name, meta.uid),
            "Preempted",
            f"Preempted by pod {preemptor.metadata.uid} on node {node_name}",
            action="Preempting",
        )
