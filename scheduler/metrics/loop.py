"""How long the event loop was unable to run anything: each turn timed, the longest stall.

Everything the scheduler does (watches, the scheduling cycles, bindings, Events, the
leader's Lease renewal, the HTTP endpoints) shares one asyncio event loop, so a step
that computes for a long time without awaiting holds all of them up. The loop works in
turns: it asks its selector which sockets are ready, then runs every callback that is
due, then asks again. Nothing else can run between two such questions, so the time from
one ``select`` returning to the next one being called is exactly how long everything
else had to wait. ``new_event_loop`` makes the loop the CLI runs with a selector that
takes that time (``TimedSelector``: two clock reads per turn, nothing when idle).

A loop this module did not make (tests running ``App`` on their own loop, an embedding
program) is sampled instead: a task sleeps ``INTERVAL_SECONDS`` and records how much
later than asked it woke up, a lower bound of a stall precise to the interval (that
task's 20 wake-ups a second cost about half a percent of a core, which is why the
CLI's loop is timed rather than sampled).

On a machine short of CPU the process may wait for a core in the middle of a turn, and
the turn's length then measures the machine as much as the scheduler. So each long turn
also takes the CPU time the process used meanwhile: the length capped by that CPU time is
the part of the stall our own work explains (on an idle machine the two are equal).

kube-scheduler has no counterpart (goroutines do not stall each other); the names
follow its style with our ``workload_scheduler_`` prefix:

- ``workload_scheduler_event_loop_lag_seconds`` (histogram), how long each turn of the
  loop kept everything else waiting;
- ``workload_scheduler_event_loop_longest_stall_seconds`` (gauge), the longest turn
  since the process started;
- ``workload_scheduler_event_loop_longest_busy_stall_seconds`` (gauge), the same capped
  by the CPU time the process used during it.
"""

from __future__ import annotations

import asyncio
import bisect
import selectors
import time
import weakref
from collections.abc import Iterator, Mapping
from typing import Any, Final

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

INTERVAL_SECONDS: Final = 0.05
"""How often a loop not made here is sampled."""
LAG_BUCKETS: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BUSY_CHECK_SECONDS: Final = 0.001
"""Turns longer than this also read the process's CPU time (a system call); a shorter
turn cannot be a stall worth telling apart from the machine's load."""

LAG = "workload_scheduler_event_loop_lag_seconds"
LONGEST = "workload_scheduler_event_loop_longest_stall_seconds"
LONGEST_BUSY = "workload_scheduler_event_loop_longest_busy_stall_seconds"


class LoopTurns:
    """Turns of one event loop: a histogram of their lengths and the longest, in plain
    numbers (a turn costs a bisect and a few additions; Prometheus reads them at scrape)."""

    __slots__ = ("count", "counts", "longest", "longest_busy", "total")

    def __init__(self) -> None:
        self.counts = [0] * (len(LAG_BUCKETS) + 1)
        """Turns per bucket (not cumulative); the last is above every bound."""
        self.count = 0
        self.total = 0.0
        self.longest = 0.0
        self.longest_busy = 0.0

    def record(self, seconds: float, cpu: float | None = None) -> None:
        """A turn (or a timer's lag) of ``seconds``, with ``cpu`` seconds used meanwhile."""
        seconds = max(0.0, seconds)
        self.counts[bisect.bisect_left(LAG_BUCKETS, seconds)] += 1
        self.count += 1
        self.total += seconds
        self.longest = max(self.longest, seconds)
        busy = seconds if cpu is None else min(seconds, max(0.0, cpu))
        self.longest_busy = max(self.longest_busy, busy)


class TimedSelector(selectors.BaseSelector):
    """A selector that times the loop's turns: from one ``select`` returning to the next
    one being called. Everything else is the wrapped selector's."""

    def __init__(self, inner: selectors.BaseSelector, turns: LoopTurns) -> None:
        self._inner = inner
        self._turns = turns
        self._returned: float | None = None
        self._cpu = 0.0

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        if self._returned is not None:
            seconds = time.perf_counter() - self._returned
            if seconds > BUSY_CHECK_SECONDS:
                self._turns.record(seconds, time.process_time() - self._cpu)
            else:
                self._turns.record(seconds)
        ready = self._inner.select(timeout)
        self._returned = time.perf_counter()
        self._cpu = time.process_time()
        return ready

    def register(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._inner.register(fileobj, events, data)

    def unregister(self, fileobj: Any) -> selectors.SelectorKey:
        return self._inner.unregister(fileobj)

    def modify(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._inner.modify(fileobj, events, data)

    def get_key(self, fileobj: Any) -> selectors.SelectorKey:
        return self._inner.get_key(fileobj)

    def get_map(self) -> Mapping[Any, selectors.SelectorKey]:
        return self._inner.get_map()

    def close(self) -> None:
        self._inner.close()


_TIMED: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, LoopTurns] = (
    weakref.WeakKeyDictionary()
)


def new_event_loop() -> asyncio.AbstractEventLoop:
    """An event loop whose turns are timed (``asyncio.Runner(loop_factory=...)``)."""
    turns = LoopTurns()
    loop = asyncio.SelectorEventLoop(TimedSelector(selectors.DefaultSelector(), turns))
    _TIMED[loop] = turns
    return loop


def turns_of(loop: asyncio.AbstractEventLoop) -> LoopTurns | None:
    """The turns of a loop ``new_event_loop`` made (None for any other loop)."""
    return _TIMED.get(loop)


class LoopMonitor(Collector):
    """The loop's metrics; ``run`` (a task of its own) finds the running loop's turns, or
    samples a loop made elsewhere."""

    def __init__(self, registry: CollectorRegistry, interval: float = INTERVAL_SECONDS) -> None:
        self.interval = interval
        self.turns = LoopTurns()
        registry.register(self)

    @property
    def longest(self) -> float:
        return self.turns.longest

    @property
    def longest_busy(self) -> float:
        return self.turns.longest_busy

    async def run(self) -> None:
        """Forever: read the running loop's turns, or sample its lag."""
        loop = asyncio.get_running_loop()
        timed = turns_of(loop)
        if timed is not None:
            self.turns = timed
            await loop.create_future()  # nothing to do: the selector times every turn
        clock = loop.time
        while True:
            started, cpu = clock(), time.process_time()
            await asyncio.sleep(self.interval)
            self.turns.record(clock() - started - self.interval, time.process_time() - cpu)

    def describe(self) -> Iterator[Metric]:
        return self._families(LoopTurns())

    def collect(self) -> Iterator[Metric]:
        return self._families(self.turns)

    @staticmethod
    def _families(turns: LoopTurns) -> Iterator[Metric]:
        cumulative, buckets = 0, []
        for bound, count in zip((*map(repr, LAG_BUCKETS), "+Inf"), turns.counts, strict=True):
            cumulative += count
            buckets.append((bound, cumulative))
        yield HistogramMetricFamily(
            LAG,
            "How long each turn of the scheduler's event loop kept everything else (watches, "
            "bindings, Events, the Lease renewal, HTTP) waiting.",
            buckets=buckets,
            sum_value=turns.total,
        )
        yield GaugeMetricFamily(
            LONGEST,
            "The longest turn of the event loop since the scheduler started.",
            value=turns.longest,
        )
        yield GaugeMetricFamily(
            LONGEST_BUSY,
            "The longest turn of the event loop since the scheduler started, capped by the "
            "CPU time the process used during it (the part its own work explains).",
            value=turns.longest_busy,
        )
