"""The event-loop lag monitor: samples, the longest stall, and a real stall noticed."""

from __future__ import annotations

import asyncio
import time

from prometheus_client import CollectorRegistry

from scheduler.metrics.loop import LoopMonitor


def sample(registry: CollectorRegistry, name: str) -> float:
    value = registry.get_sample_value(name)
    assert value is not None, name
    return value


def test_longest_stall_keeps_the_maximum_and_negative_lag_counts_as_zero() -> None:
    registry = CollectorRegistry()
    monitor = LoopMonitor(registry)
    for lag in (0.002, 0.3, -0.001, 0.05):
        monitor.observe(lag, cpu=0.01 if lag == 0.3 else lag)
    assert sample(registry, "workload_scheduler_event_loop_longest_stall_seconds") == 0.3
    # 300 ms late with 10 ms of CPU used: the machine, not us (the 50 ms one was ours).
    assert sample(registry, "workload_scheduler_event_loop_longest_busy_stall_seconds") == 0.05
    assert sample(registry, "workload_scheduler_event_loop_lag_seconds_count") == 4
    assert (
        registry.get_sample_value(
            "workload_scheduler_event_loop_lag_seconds_bucket", {"le": "0.001"}
        )
        == 1
    )


def test_a_blocking_step_shows_as_a_stall() -> None:
    registry = CollectorRegistry()
    monitor = LoopMonitor(registry, interval=0.01)

    async def run() -> None:
        task = asyncio.create_task(monitor.run())
        await asyncio.sleep(0.03)
        time.sleep(0.2)  # noqa: ASYNC251 - the kind of step the gang pass must not take
        await asyncio.sleep(0.03)
        task.cancel()

    asyncio.run(run())
    # At least the stall minus one interval (no upper bound: the machine may be busy).
    assert monitor.longest >= 0.2 - 0.01
    assert monitor.longest_busy <= monitor.longest  # time.sleep burns no CPU
