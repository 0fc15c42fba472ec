"""How long the event loop was unable to run anything: lag and the longest stall.

Everything the scheduler does (watches, the scheduling cycles, bindings, Events, the
leader's Lease renewal, the HTTP endpoints) shares one asyncio event loop, so a step
that computes for a long time without awaiting holds all of them up. A monitor task
sleeps ``INTERVAL_SECONDS`` and measures how much later than asked it woke up: that
overshoot is the loop's lag. A stall of *s* seconds shows as a lag between
*s* - ``INTERVAL_SECONDS`` and *s*, so the figures are a lower bound precise to the
interval.

On a machine short of CPU the process may wait for a core, and the lag then measures the
machine as much as the scheduler. So each sample also takes the CPU time the process used
meanwhile: the lag, capped by that CPU time, is the part of the stall our own work can
explain (on an idle machine the two are equal).

kube-scheduler has no counterpart (goroutines do not stall each other); the names
follow its style with our ``workload_scheduler_`` prefix:

- ``workload_scheduler_event_loop_lag_seconds`` (histogram), one sample per wake-up;
- ``workload_scheduler_event_loop_longest_stall_seconds`` (gauge), the longest lag
  seen since the process started;
- ``workload_scheduler_event_loop_longest_busy_stall_seconds`` (gauge), the longest lag
  capped by the CPU time the process used during it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Final

from prometheus_client import CollectorRegistry, Gauge, Histogram

INTERVAL_SECONDS: Final = 0.05
LAG_BUCKETS: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class LoopMonitor:
    """Measures the event loop's lag while ``run`` runs (a task of its own)."""

    def __init__(
        self,
        registry: CollectorRegistry,
        interval: float = INTERVAL_SECONDS,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.interval = interval
        self._clock = clock
        self.longest = 0.0
        self.longest_busy = 0.0
        self.lag = Histogram(
            "workload_scheduler_event_loop_lag_seconds",
            "How much later than asked a timer on the scheduler's event loop fired "
            f"(sampled every {interval * 1000:.0f} ms): time nothing else could run.",
            buckets=LAG_BUCKETS,
            registry=registry,
        )
        self.longest_stall = Gauge(
            "workload_scheduler_event_loop_longest_stall_seconds",
            "The longest event-loop lag seen since the scheduler started.",
            registry=registry,
        )
        self.longest_busy_stall = Gauge(
            "workload_scheduler_event_loop_longest_busy_stall_seconds",
            "The longest event-loop lag since the scheduler started, capped by the CPU time "
            "the process used during it (the part its own work explains).",
            registry=registry,
        )

    def observe(self, lag: float, cpu: float | None = None) -> None:
        """One wake-up ``lag`` seconds late, with ``cpu`` seconds used meanwhile."""
        lag = max(0.0, lag)
        self.lag.observe(lag)
        if lag > self.longest:
            self.longest = lag
            self.longest_stall.set(lag)
        busy = lag if cpu is None else min(lag, max(0.0, cpu))
        if busy > self.longest_busy:
            self.longest_busy = busy
            self.longest_busy_stall.set(busy)

    async def run(self) -> None:
        """Forever: sleep, then record how late the wake-up came."""
        clock = self._clock or asyncio.get_running_loop().time
        while True:
            started, cpu = clock(), time.process_time()
            await asyncio.sleep(self.interval)
            self.observe(clock() - started - self.interval, time.process_time() - cpu)
