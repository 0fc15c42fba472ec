"""Telling users what happened: Events and pod conditions, written in the background.

Scheduling decisions hand their reports to ``Reporter`` and move on; a few
worker tasks write them on the client's general request budget (bindings have
their own). Reports for one object are coalesced: only the newest waits to
be written, and an unchanged message is not repeated within a minute.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import structlog

from scheduler.api.client import APPLY_PATCH, STRATEGIC_MERGE_PATCH, ApiClient, ApiError
from scheduler.model.refs import ObjectRef, now_micro, now_rfc3339

log = structlog.get_logger(__name__)

REPEAT_AFTER_SECONDS = 60.0
MAX_PENDING = 10_000


@dataclass(frozen=True, slots=True)
class _Report:
    ref: ObjectRef
    event_type: str  # Normal | Warning
    reason: str
    message: str
    action: str
    pod_condition: tuple[str, str, str] | None = None  # (status, reason, message) of PodScheduled
    status_apply: tuple[str, dict[str, Any]] | None = None
    """(path, body) of a server-side apply on the object's status subresource."""


class Reporter:
    def __init__(self, client: ApiClient, controller: str, instance: str, workers: int = 4) -> None:
        self.client = client
        self.controller = controller
        self.instance = instance
        self._workers = workers
        self._pending: OrderedDict[tuple[str, str], _Report] = OrderedDict()
        self._delayed: OrderedDict[tuple[str, str], tuple[float, _Report]] = OrderedDict()
        """Reports with a delay, in the order they fall due (every delay is the same)."""
        self._last: dict[str, dict[str, tuple[str, float]]] = {}
        """object -> reason -> (message, when written), to hold back repeats."""
        self._wakeup = asyncio.Event()
        self.dropped = 0

    # -- what callers say ----------------------------------------------------------

    def event(
        self,
        ref: ObjectRef,
        reason: str,
        message: str,
        *,
        warning: bool = False,
        action: str = "Scheduling",
        pod_condition: tuple[str, str, str] | None = None,
        status_apply: tuple[str, dict[str, Any]] | None = None,
        delay: float = 0.0,
    ) -> None:
        """Queue a report; with ``delay`` it is written only if not cancelled by then
        (a gang that fills up within seconds need not tell each member it waited)."""
        slot = (ref.uid or ref.key, reason)
        last = self._last.get(slot[0], {}).get(reason)
        if (
            last is not None
            and last[0] == message
            and time.monotonic() - last[1] < REPEAT_AFTER_SECONDS
        ):
            return
        if slot not in self._pending and len(self._pending) >= MAX_PENDING:
            self.dropped += 1
            return
        report = _Report(
            ref,
            "Warning" if warning else "Normal",
            reason,
            message,
            action,
            pod_condition,
            status_apply,
        )
        if delay > 0:
            self._delayed[slot] = (time.monotonic() + delay, report)
            self._delayed.move_to_end(slot)
        else:
            self._delayed.pop(slot, None)
            self._pending[slot] = report
            self._pending.move_to_end(slot)
        self._wakeup.set()

    def cancel(self, uid: str, reason: str) -> None:
        """Drop a delayed report that is no longer true."""
        self._delayed.pop((uid, reason), None)

    def pod_unschedulable(
        self, ref: ObjectRef, message: str, reason: str = "Unschedulable", delay: float = 0.0
    ) -> None:
        self.event(
            ref,
            "FailedScheduling",
            message,
            warning=True,
            pod_condition=("False", reason, message),
            delay=delay,
        )

    def pod_scheduled(self, ref: ObjectRef, node: str) -> None:
        self.event(
            ref,
            "Scheduled",
            f"Successfully assigned {ref.namespace}/{ref.name} to {node}",
            action="Binding",
        )

    def forget(self, uid: str) -> None:
        """The object is gone: forget what was written for it (a queued report
        for it fails with 404 and is dropped)."""
        self._last.pop(uid, None)

    # -- writing -------------------------------------------------------------------

    async def run(self) -> None:
        await asyncio.gather(*(self._worker() for _ in range(self._workers)))

    def _promote(self) -> float | None:
        """Move due delayed reports to the queue; seconds until the next falls due."""
        now = time.monotonic()
        while self._delayed:
            slot, (due, report) = next(iter(self._delayed.items()))
            if due > now:
                return due - now
            del self._delayed[slot]
            self._pending[slot] = report
        return None

    async def _worker(self) -> None:
        while True:
            wait = self._promote()
            if not self._pending:
                self._wakeup.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), wait)
                continue
            slot, report = self._pending.popitem(last=False)
            self._last.setdefault(slot[0], {})[slot[1]] = (report.message, time.monotonic())
            try:
                await self._write(report)
            except ApiError as exc:
                if exc.status != 404:  # the object went away meanwhile: nothing to tell
                    log.warning("could not write event", object=report.ref.key, error=str(exc))
            except Exception as exc:
                log.warning("could not write event", object=report.ref.key, error=str(exc))

    async def _write(self, report: _Report) -> None:
        ref = report.ref
        if report.status_apply is not None:
            path, body = report.status_apply
            await self.client.request(
                "PATCH",
                path,
                params={"fieldManager": self.controller, "force": "true"},
                body=body,
                content_type=APPLY_PATCH,
            )
        if report.pod_condition is not None:
            status, reason, message = report.pod_condition
            condition = {
                "type": "PodScheduled",
                "status": status,
                "reason": reason,
                "message": message,
                "lastTransitionTime": now_rfc3339(),
            }
            await self.client.patch(
                f"/api/v1/namespaces/{ref.namespace}/pods/{ref.name}/status",
                {"status": {"conditions": [condition]}},
                STRATEGIC_MERGE_PATCH,
            )
        await self.client.post(
            f"/apis/events.k8s.io/v1/namespaces/{ref.namespace}/events",
            {
                "apiVersion": "events.k8s.io/v1",
                "kind": "Event",
                # client-go's naming: the object's name and a unique suffix.
                "metadata": {"name": f"{ref.name}.{time.time_ns():x}", "namespace": ref.namespace},
                "eventTime": now_micro(),
                "reportingController": self.controller,
                "reportingInstance": self.instance,
                "action": report.action,
                "reason": report.reason,
                "type": report.event_type,
                "note": report.message[:1024],
                "regarding": {
                    "apiVersion": ref.api_version,
                    "kind": ref.kind,
                    "namespace": ref.namespace,
                    "name": ref.name,
                    "uid": ref.uid,
                },
            },
        )
