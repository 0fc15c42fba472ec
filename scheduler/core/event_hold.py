"""Watch events wait while a gang decision is in flight, then apply in order.

A big gang's pass hands the event loop back every few milliseconds
(``gang.placement.run_steps_async``) so that watches, bindings, Events, the Lease
renewal and the HTTP endpoints keep running. What it must not give up is the
guarantee the synchronous pass had: the cache does not change under a decision that
is then committed. So while a pass is in flight every watch event (nodes, pods,
Workloads/PodGroups, relists included) is queued here instead of being applied, and
right after the decision is committed (assumed) or abandoned the queue is applied in
the order the events arrived, a few milliseconds at a time. The next pass starts only
once everything received so far is applied.

A relist is one event that can be long (every pod of the cluster): a handler that
offers ``replace_steps`` (a generator that yields every hundred objects or so) has it
applied a slice at a time like the rest, so a relist never holds the loop either. The
scheduler starts only once the first lists are applied in full (``drained``).

Why not a worker thread on a copy of the cache: the pass is pure Python, so a thread
would hold the GIL for as long as it computes and the loop would stall all the same,
and the copy (every node and its pods) plus re-validating the result against the
live cache would cost what the pass costs. Holding events costs nothing and leaves
only our own writers on the loop during a pass: bindings that succeed or fail (which
confirm or free capacity) and repairs that assume against the same, current cache.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import Final, Generic, TypeVar

import structlog

from scheduler.api.watch import WatchHandler

T = TypeVar("T")
log = structlog.get_logger(__name__)

DRAIN_SLICE_SECONDS: Final = 0.005
"""How long held events are applied before the loop gets a turn."""


class EventHold:
    """Holds watch events while ``held``; ``wrap`` a handler to route its events here."""

    def __init__(self, slice_seconds: float = DRAIN_SLICE_SECONDS) -> None:
        self.slice_seconds = slice_seconds
        self._held = False
        self._pending: deque[Callable[[], None] | Iterator[None]] = deque()
        self._drained = asyncio.Event()
        self._drained.set()
        self._drainer: asyncio.Task[None] | None = None
        self.most_pending = 0
        """The most events ever waiting at once (for logs and tests)."""

    @property
    def held(self) -> bool:
        return self._held

    @property
    def pending(self) -> int:
        return len(self._pending)

    def wrap(self, handler: WatchHandler[T]) -> WatchHandler[T]:
        return _HeldHandler(handler, self)

    def submit(self, apply: Callable[[], None]) -> None:
        """Apply now, or after the decision in flight (and the events before it)."""
        if not self._held and not self._pending:
            apply()
            return
        self._queue(apply)

    def submit_steps(self, steps: Iterator[None]) -> None:
        """A long event as steps: applied a slice at a time, in its place in the order."""
        self._queue(steps)
        if not self._held:
            self._start_draining()

    def _queue(self, item: Callable[[], None] | Iterator[None]) -> None:
        self._pending.append(item)
        self._drained.clear()
        self.most_pending = max(self.most_pending, len(self._pending))

    async def drained(self) -> None:
        """Wait until everything received so far is applied."""
        while self._pending:
            self._start_draining()
            await self._drained.wait()

    async def hold(self) -> None:
        """Start holding, once every event received so far has been applied."""
        await self.drained()
        self._held = True

    def release(self) -> None:
        """The decision is committed or abandoned: apply what waited, in order."""
        self._held = False
        if self._pending:
            self._start_draining()

    def drain_now(self) -> None:
        """Apply everything that waits, at once (no event loop needed)."""
        while self._pending and not self._held:
            self._step()
        if not self._pending:
            self._drained.set()

    def _start_draining(self) -> None:
        if self._drainer is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.drain_now()
            return
        self._drainer = loop.create_task(self._drain(), name="held watch events")

    async def _drain(self) -> None:
        try:
            while self._pending and not self._held:
                started = time.perf_counter()
                self._step()
                while (
                    self._pending
                    and not self._held
                    and time.perf_counter() - started < self.slice_seconds
                ):
                    self._step()
                if self._pending and not self._held:
                    await asyncio.sleep(0)
            if not self._pending:
                self._drained.set()
        finally:
            self._drainer = None

    def _step(self) -> None:
        """Apply the first waiting event, or one step of it (it stays first until done)."""
        head = self._pending[0]
        try:
            if callable(head):
                self._pending.popleft()
                head()
            elif next(head, StopIteration) is StopIteration:
                self._pending.popleft()
        except Exception:  # one bad object must not stop the others (as in the reflector)
            if self._pending and self._pending[0] is head:
                self._pending.popleft()
            log.exception("held watch event failed")


class _HeldHandler(Generic[T]):
    __slots__ = ("_handler", "_hold")

    def __init__(self, handler: WatchHandler[T], hold: EventHold) -> None:
        self._handler = handler
        self._hold = hold

    def replace(self, items: list[T]) -> None:
        steps = getattr(self._handler, "replace_steps", None)
        if steps is not None:
            self._hold.submit_steps(steps(items))
        else:
            self._hold.submit(lambda: self._handler.replace(items))

    def apply(self, event_type: str, obj: T) -> None:
        self._hold.submit(lambda: self._handler.apply(event_type, obj))
