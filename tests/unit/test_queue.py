"""Scheduling queue: order, back-off, parking and moving, gating."""

from __future__ import annotations

import asyncio

import msgspec
import pytest

from scheduler.framework.types import PodInfo
from scheduler.model.objects import Pod
from scheduler.queue import scheduling_queue as sq
from scheduler.queue.scheduling_queue import SchedulingQueue, backoff_seconds


def info(name: str, priority: int = 0, created: str = "2026-01-01T00:00:00Z") -> PodInfo:
    pod = msgspec.convert(
        {
            "metadata": {
                "name": name,
                "namespace": "ns",
                "uid": f"uid-{name}",
                "creationTimestamp": created,
            },
            "spec": {"priority": priority},
        },
        Pod,
    )
    return PodInfo(pod=pod, requests={}, non_zero_requests={})


async def pop_now(q: SchedulingQueue) -> str:
    return (await asyncio.wait_for(q.pop(), 1)).info.pod.metadata.name


async def test_priority_then_creation_time() -> None:
    q = SchedulingQueue()
    q.add(info("late", created="2026-01-01T00:00:09Z"))
    q.add(info("early", created="2026-01-01T00:00:01Z"))
    q.add(info("urgent", priority=100, created="2026-01-01T00:00:05Z"))
    assert [await pop_now(q) for _ in range(3)] == ["urgent", "early", "late"]


async def test_unschedulable_waits_for_an_event() -> None:
    q = SchedulingQueue()
    q.add(info("a"))
    qp = await q.pop()
    q.requeue_unschedulable(qp)
    assert q.counts()["unschedulable"] == 1
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(q.pop(), 0.05)
    assert q.move_all("NodeAdd") == 1
    # Back-off of the first attempt (1 s) has mostly not passed: it sits in backoff.
    assert q.counts()["backoff"] + q.counts()["active"] == 1


async def test_event_during_attempt_means_retry_not_park(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sq, "INITIAL_BACKOFF", 0.01)
    q = SchedulingQueue()
    q.add(info("a"))
    qp = await q.pop()
    q.move_all("NodeAdd")  # arrives while the pod is being tried
    q.requeue_unschedulable(qp)
    assert q.counts()["unschedulable"] == 0
    assert await pop_now(q) == "a"


async def test_backoff_then_active(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sq, "INITIAL_BACKOFF", 0.05)
    q = SchedulingQueue()
    q.add(info("a"))
    q.requeue_backoff(await q.pop())
    assert q.counts()["backoff"] == 1
    assert await pop_now(q) == "a"


def test_backoff_doubles_up_to_ten_seconds() -> None:
    assert [backoff_seconds(n) for n in range(1, 7)] == [1, 2, 4, 8, 10, 10]


async def test_deleted_pod_is_never_popped() -> None:
    q = SchedulingQueue()
    q.add(info("a"))
    q.add(info("b"))
    q.delete("uid-a")
    assert await pop_now(q) == "b"
    assert len(q) == 1  # b is in flight until done()
    q.done("uid-b")
    assert len(q) == 0


async def test_gate_holds_pods_until_regated() -> None:
    blocked = {"uid-a"}
    q = SchedulingQueue(gate=lambda p: "waiting" if p.uid in blocked else None)
    q.add(info("a"))
    q.add(info("b"))
    assert q.counts()["gated"] == 1
    assert await pop_now(q) == "b"
    blocked.clear()
    assert q.regate() == 1
    assert await pop_now(q) == "a"


async def test_flush_moves_long_parked_pods() -> None:
    q = SchedulingQueue()
    q.add(info("a"))
    qp = await q.pop()
    q.requeue_unschedulable(qp)
    assert q.flush_unschedulable(now=qp.queued_at + sq.MAX_UNSCHEDULABLE_SECONDS + 1) == 1
    assert q.counts()["unschedulable"] == 0


async def test_update_of_parked_pod_retries_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sq, "INITIAL_BACKOFF", 0.0)
    q = SchedulingQueue()
    q.add(info("a"))
    q.requeue_unschedulable(await q.pop())
    q.add(info("a"))  # e.g. a toleration was added
    assert await pop_now(q) == "a"
