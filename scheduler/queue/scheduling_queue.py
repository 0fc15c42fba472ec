"""Active, back-off and unschedulable pods, as kube-scheduler keeps them.

- *active*: ready to be tried, highest priority first (a gang member at its group's
  priority, ``priority_of``), then oldest.
- *backoff*: failed recently; waits 1 s, 2 s, 4 s ... up to 10 s per attempt.
- *unschedulable*: no node fitted; waits for a cluster event that may make it
  fit (a node added or changed, a pod gone), or at most five minutes.
- *gated*: not allowed in yet (a gang still waiting for its members).

A pod handed out by ``pop`` is *in flight* until the caller reports back with
``done``, ``requeue_unschedulable`` or ``requeue_backoff``. Cluster events that
arrive while a pod is in flight are remembered, so a pod that failed against
an older view of the cluster is retried instead of parked.

A pod parked with a *hint* (``RetryHint``, kube-scheduler's QueueingHint in
spirit) moves on only for the events the hint says could make it fit; an
unplaceable gang parks its members with one hint that knows what each domain is
short of (``gang/retry.py``), so a pod finishing elsewhere does not wake it.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Final, Literal

from scheduler.framework.types import PodInfo, ResourceList

INITIAL_BACKOFF = 1.0
MAX_BACKOFF = 10.0
MAX_UNSCHEDULABLE_SECONDS = 300.0
"""A pod parked unschedulable this long is tried again whatever happened (upstream's
``podMaxInUnschedulablePodsDuration``)."""
FLUSH_UNSCHEDULABLE_SECONDS = 30.0
"""How often the parked pods are checked for that (upstream's
``flushUnschedulablePodsLeftover`` period): a look at every pod, so not every second."""

Where = Literal["new", "active", "backoff", "unschedulable", "gated", "in-flight", "deleted"]
"""Where a ``QueuedPod`` is: the four sub-queues, handed out (``in-flight``), or dropped
(``deleted``: its stale heap entries are skipped). ``new`` only until it is first admitted."""
NEW: Final = "new"
ACTIVE: Final = "active"
BACKOFF: Final = "backoff"
UNSCHEDULABLE: Final = "unschedulable"
GATED: Final = "gated"
IN_FLIGHT: Final = "in-flight"
DELETED: Final = "deleted"
WAITING: Final[tuple[Where, ...]] = (ACTIVE, BACKOFF, UNSCHEDULABLE, GATED)
"""The sub-queues a pod can wait in."""
RECENT_EVENTS = 256
"""Cluster events remembered for pods in flight (older ones: assume any could matter)."""


@dataclass(frozen=True, slots=True, eq=False)
class ClusterEvent:
    """Something changed that may make parked pods fit."""

    name: str
    """``NodeAdd``, ``NodeUpdate``, ``AssignedPodDelete``, ``AssumedPodForgotten``, ..."""
    node: str | None = None
    """The node the change happened on, when known."""
    freed: ResourceList | None = None
    """What a pod gone from ``node`` gave back (its requests and ``pods: 1``);
    None when unknown or not a pod going away."""

    @classmethod
    def pod_gone(cls, name: str, node: str | None, requests: ResourceList | None) -> ClusterEvent:
        """A pod no longer holds ``requests`` on ``node`` (either may be unknown)."""
        freed = None if requests is None else {**requests, "pods": 1}
        return cls(name, node, freed)


RetryHint = Callable[[ClusterEvent], bool]
"""Whether an event could make a parked pod fit; asked once per event and pod (pods
that share a hint object share its answer)."""


@dataclass(slots=True, eq=False)
class QueuedPod:
    info: PodInfo
    added_at: float = field(default_factory=time.monotonic)
    """When the pod first entered the queue (the SLI's start)."""
    attempts: int = 0
    queued_at: float = field(default_factory=time.monotonic)
    """When it last entered its current sub-queue."""
    backoff_until: float = 0.0
    where: Where = NEW
    gate_message: str = ""
    move_seq: int = 0
    """The move-request counter when the pod was popped."""
    hint: RetryHint | None = None
    """While parked unschedulable: which events move it on (None: every event)."""

    @property
    def uid(self) -> str:
        return self.info.uid

    @property
    def key(self) -> str:
        return self.info.key

    def sort_key(self) -> tuple[int, str]:
        pod = self.info.pod
        return (-pod.spec.priority, pod.metadata.creation_timestamp or "")


GateCheck = Callable[[PodInfo], str | None]
"""Returns why a pod may not enter the active queue yet, or None."""


class SchedulingQueue:
    def __init__(
        self,
        *,
        gate: GateCheck | None = None,
        on_incoming: Callable[[str, str], None] | None = None,
        on_gated: Callable[[QueuedPod, str | None], None] | None = None,
        priority_of: Callable[[PodInfo], int] | None = None,
    ) -> None:
        self._pods: dict[str, QueuedPod] = {}
        self._active: list[tuple[tuple[int, str], int, QueuedPod]] = []
        self._backoff: list[tuple[float, int, QueuedPod]] = []
        self._seq = itertools.count()
        self._wakeup = asyncio.Event()
        self._move_seq = 0
        self._recent: deque[tuple[int, ClusterEvent]] = deque(maxlen=RECENT_EVENTS)
        self._gate = gate
        self._on_incoming = on_incoming or (lambda queue, event: None)
        self._on_gated = on_gated or (lambda qp, message: None)
        """Told when a pod is gated (with why) and when it leaves the gate (None)."""
        self._priority_of = priority_of
        """The priority a pod is ordered by (a gang member: its group's); None: its own."""
        self.closed = False

    # -- what's inside ---------------------------------------------------------

    def get(self, uid: str) -> QueuedPod | None:
        return self._pods.get(uid)

    def __contains__(self, uid: str) -> bool:
        return uid in self._pods

    def __len__(self) -> int:
        return len(self._pods)

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = dict.fromkeys(WAITING, 0)
        for qp in self._pods.values():
            if qp.where in counts:
                counts[qp.where] += 1
        return counts

    def pods_in_any(self) -> list[QueuedPod]:
        return list(self._pods.values())

    def pods_in(self, where: Where) -> list[QueuedPod]:
        return [qp for qp in self._pods.values() if qp.where == where]

    # -- coming in and going out -----------------------------------------------

    def add(self, info: PodInfo, event: str = "PodAdd", *, changed: bool = True) -> None:
        """A new pending pod, or a new version of one we hold (``changed``: in a way
        that can change where it fits, not just its status)."""
        qp = self._pods.get(info.uid)
        if qp is None:
            qp = QueuedPod(info)
            self._pods[info.uid] = qp
            self._admit(qp, event)
            return
        qp.info = info
        if changed and qp.where in (UNSCHEDULABLE, GATED):
            # The pod itself changed (e.g. a toleration added): worth another try.
            self._admit(qp, "PodUpdate")

    def delete(self, uid: str) -> QueuedPod | None:
        qp = self._pods.pop(uid, None)
        if qp is not None:
            qp.where = DELETED  # heap entries are dropped lazily
        return qp

    async def pop(self) -> QueuedPod:
        """The next pod to try; waits while none is ready."""
        while True:
            self._flush_backoff()
            while self._active:
                _, _, qp = heapq.heappop(self._active)
                if qp.where == ACTIVE and self._pods.get(qp.uid) is qp:
                    qp.where = IN_FLIGHT
                    qp.attempts += 1
                    qp.move_seq = self._move_seq
                    return qp
            self._wakeup.clear()
            timeout = None
            if self._backoff:
                timeout = max(0.0, self._backoff[0][0] - time.monotonic())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), timeout)

    def pop_ready(self, uids: Iterable[str]) -> list[QueuedPod]:
        """Take the given pods out of whatever sub-queue they wait in (gang members)."""
        taken = []
        for uid in uids:
            qp = self._pods.get(uid)
            if qp is not None and qp.where in WAITING:
                qp.where = IN_FLIGHT
                qp.attempts += 1
                qp.move_seq = self._move_seq
                taken.append(qp)
        return taken

    # -- outcomes of an attempt ------------------------------------------------

    def done(self, uid: str) -> None:
        """Scheduled (or given up on): the queue forgets the pod."""
        self._pods.pop(uid, None)

    def requeue_unschedulable(
        self, qp: QueuedPod, hint: RetryHint | None = None, attempts: int | None = None
    ) -> None:
        """No node fitted. Parked until a cluster event (one ``hint`` accepts, if given),
        unless such an event came in meanwhile. ``attempts`` raises the pod's attempt
        count (its back-off) to its gang's."""
        if self._pods.get(qp.uid) is not qp:
            return
        qp.queued_at = time.monotonic()
        qp.hint = hint
        if attempts is not None and attempts > qp.attempts:
            qp.attempts = attempts
        if qp.move_seq != self._move_seq and self._moved_since(qp):
            self._to_backoff(qp, "ScheduleAttemptFailure")
            return
        qp.where = UNSCHEDULABLE
        self._on_incoming(UNSCHEDULABLE, "ScheduleAttemptFailure")

    def _moved_since(self, qp: QueuedPod) -> bool:
        """Whether an event since ``qp`` was popped could make it fit."""
        if qp.hint is None:
            return True
        recent = [(seq, event) for seq, event in self._recent if seq > qp.move_seq]
        if len(recent) < self._move_seq - qp.move_seq:
            return True  # some were forgotten: any of them might have mattered
        return any(qp.hint(event) for _, event in recent)

    def requeue_backoff(self, qp: QueuedPod, event: str = "ScheduleAttemptFailure") -> None:
        """An error (bind failed, API hiccup): try again after the back-off."""
        if self._pods.get(qp.uid) is qp:
            qp.queued_at = time.monotonic()
            self._to_backoff(qp, event)

    def requeue_gated(self, qp: QueuedPod, message: str) -> None:
        if self._pods.get(qp.uid) is qp:
            qp.where = GATED
            qp.gate_message = message
            qp.queued_at = time.monotonic()
            self._on_gated(qp, message)

    # -- cluster events ----------------------------------------------------------

    def move_all(self, event: str | ClusterEvent) -> int:
        """Something changed that may make parked pods fit: move them on (those whose
        hint accepts the event)."""
        if isinstance(event, str):
            event = ClusterEvent(event)
        self._move_seq += 1
        self._recent.append((self._move_seq, event))
        moved = 0
        for qp in list(self._pods.values()):
            if qp.where == UNSCHEDULABLE and (qp.hint is None or qp.hint(event)):
                self._to_backoff(qp, event.name)
                moved += 1
        return moved

    def regate(self, uids: Iterable[str] | None = None, event: str = "GangChange") -> int:
        """Check gated pods again (all, or just these)."""
        candidates = (
            [self._pods[u] for u in uids if u in self._pods]
            if uids is not None
            else list(self._pods.values())
        )
        moved = 0
        for qp in candidates:
            if qp.where == GATED:
                self._admit(qp, event)
                moved += qp.where != GATED
        return moved

    def activate(self, uids: Iterable[str]) -> None:
        """Try these pods now, skipping their back-off (siblings of a gang)."""
        for uid in uids:
            qp = self._pods.get(uid)
            if qp is not None and qp.where in (BACKOFF, UNSCHEDULABLE):
                self._to_active(qp, "ForceActivate")

    def flush_unschedulable(self, now: float | None = None) -> int:
        """Pods parked for too long get another try, whatever happened."""
        now = time.monotonic() if now is None else now
        stale = [
            qp
            for qp in self._pods.values()
            if qp.where == UNSCHEDULABLE and now - qp.queued_at >= MAX_UNSCHEDULABLE_SECONDS
        ]
        for qp in stale:
            self._to_backoff(qp, "UnschedulableTimeout")
        return len(stale)

    def close(self) -> None:
        self.closed = True
        self._wakeup.set()

    # -- internals ---------------------------------------------------------------

    def _admit(self, qp: QueuedPod, event: str) -> None:
        reason = self._gate(qp.info) if self._gate else None
        if reason is not None:
            changed = reason != qp.gate_message or qp.where != GATED
            qp.where = GATED
            qp.gate_message = reason
            qp.queued_at = time.monotonic()
            self._on_incoming(GATED, event)
            if changed:
                self._on_gated(qp, reason)
            return
        if qp.gate_message:
            qp.gate_message = ""
            self._on_gated(qp, None)
        self._to_active(qp, event)

    def _to_active(self, qp: QueuedPod, event: str) -> None:
        qp.where = ACTIVE
        qp.queued_at = time.monotonic()
        key = qp.sort_key()
        if self._priority_of is not None:
            key = (-self._priority_of(qp.info), key[1])
        heapq.heappush(self._active, (key, next(self._seq), qp))
        self._on_incoming(ACTIVE, event)
        self._wakeup.set()

    def _to_backoff(self, qp: QueuedPod, event: str) -> None:
        # queued_at is when the last attempt failed: the back-off runs from there.
        qp.backoff_until = qp.queued_at + backoff_seconds(qp.attempts)
        if qp.backoff_until <= time.monotonic():
            self._to_active(qp, event)
            return
        qp.where = BACKOFF
        heapq.heappush(self._backoff, (qp.backoff_until, next(self._seq), qp))
        self._on_incoming(BACKOFF, event)
        self._wakeup.set()

    def _flush_backoff(self) -> None:
        now = time.monotonic()
        while self._backoff and self._backoff[0][0] <= now:
            _, _, qp = heapq.heappop(self._backoff)
            if qp.where == BACKOFF and self._pods.get(qp.uid) is qp:
                self._to_active(qp, "BackoffComplete")


def backoff_seconds(attempts: int) -> float:
    """1 s after the first failed attempt, doubling, at most 10 s."""
    if attempts <= 0:
        return 0.0
    return float(min(INITIAL_BACKOFF * 2 ** (attempts - 1), MAX_BACKOFF))
