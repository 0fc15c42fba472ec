"""The event-loop monitor: turns timed by the selector, the longest stall, the sampled
fallback for a loop made elsewhere."""

from __future__ import annotations

import asyncio
import time

from prometheus_client import CollectorRegistry, generate_latest

from scheduler.metrics.loop import LoopMonitor, LoopTurns, new_event_loop, turns_of


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    value = registry.get_sample_value(name, labels)
    assert value is not None, name
    return value


def test_longest_stall_keeps_the_maximum_and_negative_lag_counts_as_zero() -> None:
    registry = CollectorRegistry()
    monitor = LoopMonitor(registry)
    for lag in (0.002, 0.3, -0.001, 0.05):
        monitor.turns.record(lag, cpu=0.01 if lag == 0.3 else lag)
    assert sample(registry, "workload_scheduler_event_loop_longest_stall_seconds") == 0.3
    # 300 ms long with 10 ms of CPU used: the machine, not us (the 50 ms one was ours).
    assert sample(registry, "workload_scheduler_event_loop_longest_busy_stall_seconds") == 0.05
    assert sample(registry, "workload_scheduler_event_loop_lag_seconds_count") == 4
    lag = "workload_scheduler_event_loop_lag_seconds_bucket"
    assert sample(registry, lag, le="0.001") == 1
    assert sample(registry, lag, le="0.0025") == 2
    assert sample(registry, lag, le="0.05") == 3  # a bucket's bound is inclusive
    assert sample(registry, lag, le="+Inf") == 4
    assert sample(registry, "workload_scheduler_event_loop_lag_seconds_sum") == 0.352
    text = generate_latest(registry).decode()
    assert 'workload_scheduler_event_loop_lag_seconds_bucket{le="10.0"} 4.0' in text


def test_the_selector_times_every_turn_and_a_blocking_step_shows_whole() -> None:
    registry = CollectorRegistry()
    monitor = LoopMonitor(registry)

    async def run() -> None:
        task = asyncio.create_task(monitor.run())
        await asyncio.sleep(0.01)
        time.sleep(0.2)  # noqa: ASYNC251 - the kind of step the gang pass must not take
        await asyncio.sleep(0.01)
        task.cancel()

    loop = new_event_loop()
    try:
        assert turns_of(loop) is not None
        loop.run_until_complete(run())
    finally:
        loop.close()
    # The whole turn, not a lower bound: the blocking step and a little around it.
    assert 0.2 <= monitor.longest < 0.3
    assert monitor.longest_busy <= 0.05, "time.sleep burns no CPU: not our work"
    assert sample(registry, "workload_scheduler_event_loop_lag_seconds_count") >= 3
    assert sample(registry, "workload_scheduler_event_loop_lag_seconds_bucket", le="0.25") >= 1


def test_an_idle_timed_loop_wakes_for_nothing() -> None:
    """The timed loop needs no task of its own: sleeping 0.3 s is a handful of turns."""
    loop = new_event_loop()
    try:
        loop.run_until_complete(asyncio.sleep(0.3))
        turns = turns_of(loop)
        assert turns is not None and turns.count < 10
    finally:
        loop.close()


def test_a_loop_made_elsewhere_is_sampled() -> None:
    monitor = LoopMonitor(CollectorRegistry(), interval=0.01)

    async def run() -> None:
        task = asyncio.create_task(monitor.run())
        await asyncio.sleep(0.03)
        time.sleep(0.2)  # noqa: ASYNC251
        await asyncio.sleep(0.03)
        task.cancel()

    asyncio.run(run())
    # At least the stall minus one interval (no upper bound: the machine may be busy).
    assert monitor.longest >= 0.2 - 0.01
    assert monitor.longest_busy <= monitor.longest


def test_turns_count_cpu_only_for_long_turns() -> None:
    turns = LoopTurns()
    turns.record(0.0005)
    turns.record(0.004, cpu=0.001)
    assert turns.longest == 0.004 and turns.longest_busy == 0.001
    assert turns.count == 2 and turns.counts[0] == 1
