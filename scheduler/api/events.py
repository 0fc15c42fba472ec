"""Telling users what happened: Events and pod conditions, written in the background.

Scheduling decisions hand their reports to ``Reporter`` and move on; a few
worker tasks write them on the client's general request budget (bindings have
their own). Reports for one object are coalesced: only the newest waits to
be written, and an unchanged message is not repeated within a minute.

Through an API outage (connection errors, 5xx, 429) reports wait and are
retried, all writers backing off together (0.5 s doubling to 10 s) so that an
outage costs a request per worker per interval, not a storm. Memory is
bounded: at ``MAX_PENDING`` reports waiting the oldest is dropped and counted
(``workload_scheduler_reports_dropped_total``).

Reports about one object are written one at a time, in order, so a pod that
binds while its ``PodScheduled=False`` condition is still being written gets
the ``True`` back after it: a bound pod never keeps a stale ``False`` (the
binding itself sets ``True``; a queued ``False`` is cancelled, one already on
its way is followed by a ``True``).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from scheduler.api.client import APPLY_PATCH, STRATEGIC_MERGE_PATCH, ApiClient, ApiError
from scheduler.model.refs import ObjectRef, StatusApply, now_micro, now_rfc3339

log = structlog.get_logger(__name__)

REPEAT_AFTER_SECONDS = 60.0
MAX_PENDING = 10_000
"""Reports waiting (queued or delayed) at most; beyond it the oldest is dropped."""
DEFER_MAX_SECONDS = 10.0
"""How long writes may wait for a burst of bindings (``defer_while``) at most."""
DEFER_POLL_SECONDS = 0.05
RETRY_INITIAL_SECONDS = 0.5
RETRY_MAX_SECONDS = 10.0


@dataclass(frozen=True, slots=True)
class _Report:
    ref: ObjectRef
    event_type: str  # Normal | Warning
    reason: str
    message: str
    action: str
    pod_condition: tuple[str, str, str] | None = None  # (status, reason, message) of PodScheduled
    status_apply: StatusApply | None = None
    """(path, body) of a server-side apply on the object's status subresource."""
    related: ObjectRef | None = None
    """The Event's secondary object (``related``), e.g. the preemptor of a victim."""


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
        self._writing: set[str] = set()
        """Objects with a report being written now (the next for them waits)."""
        self._condition_false: set[str] = set()
        """Pods whose PodScheduled=False was (or is being) written."""
        self._retry_at = 0.0
        """While the API fails, no writer tries again before this (monotonic)."""
        self._retry_delay = RETRY_INITIAL_SECONDS
        self.dropped = 0
        """Reports dropped because MAX_PENDING were waiting."""
        self.defer_while: Callable[[], bool] = lambda: False
        """While true (a big gang is being bound), writers wait, at most
        ``DEFER_MAX_SECONDS`` in a row: the API server spends itself on the bindings
        first, the Events and conditions follow."""
        self._deferred_since: float | None = None

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
        status_apply: StatusApply | None = None,
        delay: float = 0.0,
        topic: str = "",
        related: ObjectRef | None = None,
    ) -> None:
        """Queue a report; with ``delay`` it is written only if not cancelled by then
        (a gang that fills up within seconds need not tell each member it waited).
        Reports coalesce per object and reason, and ``topic`` when given (several
        stories about one object)."""
        slot = (ref.uid or ref.key, f"{reason}/{topic}" if topic else reason)
        last = self._last.get(slot[0], {}).get(slot[1])
        if (
            last is not None
            and last[0] == message
            and time.monotonic() - last[1] < REPEAT_AFTER_SECONDS
        ):
            return
        if slot not in self._pending and slot not in self._delayed:
            self._make_room()
        report = _Report(
            ref,
            "Warning" if warning else "Normal",
            reason,
            message,
            action,
            pod_condition,
            status_apply,
            related,
        )
        if delay > 0:
            self._delayed[slot] = (time.monotonic() + delay, report)
            self._delayed.move_to_end(slot)
        else:
            self._delayed.pop(slot, None)
            self._pending[slot] = report
            self._pending.move_to_end(slot)
        self._wakeup.set()

    @property
    def pending(self) -> int:
        return len(self._pending) + len(self._delayed)

    def _make_room(self) -> None:
        """Bounded memory: drop the oldest waiting report when MAX_PENDING are waiting."""
        while self.pending >= MAX_PENDING:
            oldest = self._pending if self._pending else self._delayed
            slot, _ = oldest.popitem(last=False)
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.warning("reports dropped, too many waiting", dropped=self.dropped, last=slot)

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
        """The pod is bound: what said it could not be is no longer true."""
        slot = (ref.uid or ref.key, "FailedScheduling")
        self._pending.pop(slot, None)
        self._delayed.pop(slot, None)
        self._last.get(slot[0], {}).pop("FailedScheduling", None)
        condition = None
        if slot[0] in self._condition_false:
            # A False may land after the binding's True: write True again, after it.
            self._condition_false.discard(slot[0])
            condition = ("True", "", "")
        self.event(
            ref,
            "Scheduled",
            f"Successfully assigned {ref.namespace}/{ref.name} to {node}",
            action="Binding",
            pod_condition=condition,
        )

    def forget(self, uid: str) -> None:
        """The object is gone: forget what was written for it (a queued report
        for it fails with 404 and is dropped)."""
        self._last.pop(uid, None)
        self._condition_false.discard(uid)

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

    def _deferring(self) -> bool:
        """Writers wait for a burst of bindings, ``DEFER_MAX_SECONDS`` in a row at most."""
        if not self.defer_while():
            self._deferred_since = None
            return False
        now = time.monotonic()
        if self._deferred_since is None:
            self._deferred_since = now
        return now - self._deferred_since < DEFER_MAX_SECONDS

    async def _worker(self) -> None:
        while True:
            if self._deferring():
                await asyncio.sleep(DEFER_POLL_SECONDS)
                continue
            wait = self._promote()
            backing_off = self._retry_at - time.monotonic()
            if backing_off > 0:
                await asyncio.sleep(backing_off)
                continue
            slot = next((s for s in self._pending if s[0] not in self._writing), None)
            if slot is None:
                self._wakeup.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), wait)
                continue
            report = self._pending.pop(slot)
            self._last.setdefault(slot[0], {})[slot[1]] = (report.message, time.monotonic())
            if report.pod_condition is not None and report.pod_condition[0] == "False":
                self._condition_false.add(slot[0])
            self._writing.add(slot[0])
            try:
                await self._write(report)
                self._retry_delay = RETRY_INITIAL_SECONDS
            except ApiError as exc:
                if _retryable(exc):
                    self._retry_later(slot, report, exc)
                elif exc.status != 404:  # the object went away meanwhile: nothing to tell
                    log.warning("could not write event", object=report.ref.key, error=str(exc))
            except Exception as exc:  # connection refused or reset, timeout: the API is away
                self._retry_later(slot, report, exc)
            finally:
                self._writing.discard(slot[0])
                self._wakeup.set()  # a report for this object may be waiting

    def _retry_later(self, slot: tuple[str, str], report: _Report, exc: Exception) -> None:
        """Put the report back at the front (unless a newer one for the slot arrived) and
        hold every writer back for the current delay, doubling it up to the maximum."""
        self._last.get(slot[0], {}).pop(slot[1], None)
        if slot not in self._pending and slot not in self._delayed:
            self._make_room()
            self._pending[slot] = report
            self._pending.move_to_end(slot, last=False)
        if self._retry_at <= time.monotonic():
            log.warning(
                "could not write reports, retrying",
                object=report.ref.key,
                error=f"{type(exc).__name__}: {exc}",
                retry_in=self._retry_delay,
                waiting=self.pending,
            )
            self._retry_at = time.monotonic() + self._retry_delay
            self._retry_delay = min(self._retry_delay * 2, RETRY_MAX_SECONDS)

    async def _write(self, report: _Report) -> None:
        ref = report.ref
        if report.status_apply is not None:
            path, body, manager = report.status_apply
            await self.client.request(
                "PATCH",
                path,
                params={"fieldManager": manager or self.controller, "force": "true"},
                body=body,
                content_type=APPLY_PATCH,
            )
        if report.pod_condition is not None:
            status, reason, message = report.pod_condition
            condition = {
                "type": "PodScheduled",
                "status": status,
                # None removes the key (strategic merge): True carries no reason, as the
                # binding writes it.
                "reason": reason or None,
                "message": message or None,
                "lastTransitionTime": now_rfc3339(),
            }
            await self.client.patch(
                f"/api/v1/namespaces/{ref.namespace}/pods/{ref.name}/status",
                {"status": {"conditions": [condition]}},
                STRATEGIC_MERGE_PATCH,
            )
        event: dict[str, object] = {
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
            "regarding": _reference(ref),
        }
        if report.related is not None:
            event["related"] = _reference(report.related)
        await self.client.post(f"/apis/events.k8s.io/v1/namespaces/{ref.namespace}/events", event)


def _reference(ref: ObjectRef) -> dict[str, str]:
    return {
        "apiVersion": ref.api_version,
        "kind": ref.kind,
        "namespace": ref.namespace,
        "name": ref.name,
        "uid": ref.uid,
    }


def _retryable(exc: ApiError) -> bool:
    """Throttled or server trouble: the same request may well succeed later."""
    return exc.status == 429 or exc.status >= 500
