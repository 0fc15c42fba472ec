"""The reporter: coalescing, retries through an outage, bounded memory, no stale False."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from scheduler.api import events
from scheduler.api.events import Reporter
from scheduler.model.refs import pod_ref


class FakeClient:
    """Records writes; fails the first ``outage`` requests with a connection error."""

    def __init__(self, outage: int = 0) -> None:
        self.outage = outage
        self.writes: list[tuple[str, str, Any]] = []
        self.changed = asyncio.Event()

    async def _call(self, method: str, path: str, body: Any) -> bytes:
        await asyncio.sleep(0)
        if self.outage > 0:
            self.outage -= 1
            raise ConnectionRefusedError("connection refused")
        self.writes.append((method, path, body))
        self.changed.set()
        return b"{}"

    async def request(self, method: str, path: str, **kwargs: Any) -> bytes:
        return await self._call(method, path, kwargs.get("body"))

    async def patch(self, path: str, body: Any, content_type: str = "") -> bytes:
        return await self._call("PATCH", path, body)

    async def post(self, path: str, body: Any, **kwargs: Any) -> bytes:
        return await self._call("POST", path, body)


def reporter(client: FakeClient) -> Reporter:
    return Reporter(client, "test-scheduler", "test-1", workers=2)  # type: ignore[arg-type]


async def run_until(rep: Reporter, client: FakeClient, done: Any, timeout: float = 5.0) -> None:
    task = asyncio.create_task(rep.run())
    try:
        async with asyncio.timeout(timeout):
            while not done():
                client.changed.clear()
                await client.changed.wait()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def notes(client: FakeClient) -> list[str]:
    return [body["note"] for method, path, body in client.writes if path.endswith("/events")]


async def test_reports_survive_an_outage(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(events, "RETRY_INITIAL_SECONDS", 0.01)
    client = FakeClient(outage=6)
    rep = reporter(client)
    for i in range(5):
        rep.pod_unschedulable(pod_ref("ns", f"p{i}", f"u{i}"), f"no room for p{i}")
    await run_until(rep, client, lambda: len(notes(client)) == 5)
    assert sorted(notes(client)) == [f"no room for p{i}" for i in range(5)]
    assert rep.dropped == 0 and rep.pending == 0


async def test_backoff_is_shared_and_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(events, "RETRY_INITIAL_SECONDS", 0.01)
    monkeypatch.setattr(events, "RETRY_MAX_SECONDS", 0.04)
    client = FakeClient(outage=10**9)
    rep = Reporter(client, "s", "i", workers=4)  # type: ignore[arg-type]
    rep.pod_unschedulable(pod_ref("ns", "p", "u"), "no room")
    task = asyncio.create_task(rep.run())
    await asyncio.sleep(0.5)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    attempts = 10**9 - client.outage
    # Four workers, one report: 0.5 s at most 0.04 s apart is about a dozen tries, not a storm.
    assert 5 <= attempts <= 30, attempts
    assert rep.pending == 1


async def test_memory_is_bounded_oldest_dropped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(events, "MAX_PENDING", 3)
    rep = reporter(FakeClient())
    for i in range(5):
        rep.pod_unschedulable(pod_ref("ns", f"p{i}", f"u{i}"), "no room")
    assert rep.pending == 3 and rep.dropped == 2
    assert [slot[0] for slot in rep._pending] == ["u2", "u3", "u4"]


async def test_binding_cancels_a_queued_failed_scheduling() -> None:
    client = FakeClient()
    rep = reporter(client)
    ref = pod_ref("ns", "p", "u")
    rep.pod_unschedulable(ref, "no room")
    rep.pod_scheduled(ref, "n1")
    await run_until(rep, client, lambda: len(notes(client)) == 1)
    assert notes(client) == ["Successfully assigned ns/p to n1"]
    assert not [w for w in client.writes if w[0] == "PATCH"], "no condition written"


async def test_a_false_already_written_is_followed_by_true() -> None:
    client = FakeClient()
    rep = reporter(client)
    ref = pod_ref("ns", "p", "u")
    rep.pod_unschedulable(ref, "no room")
    await run_until(rep, client, lambda: len(notes(client)) == 1)
    rep.pod_scheduled(ref, "n1")
    await run_until(rep, client, lambda: len(notes(client)) == 2)
    conditions = [
        body["status"]["conditions"][0] for method, _, body in client.writes if method == "PATCH"
    ]
    assert [(c["status"], c["reason"]) for c in conditions] == [
        ("False", "Unschedulable"),
        ("True", None),
    ]


async def test_reports_wait_while_a_gang_is_bound_and_not_for_ever(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(events, "DEFER_POLL_SECONDS", 0.01)
    client = FakeClient()
    rep = reporter(client)
    binding = [True]
    rep.defer_while = lambda: binding[0]
    rep.pod_scheduled(pod_ref("ns", "p0", "u0"), "n0")
    task = asyncio.create_task(rep.run())
    try:
        await asyncio.sleep(0.05)
        assert client.writes == [], "written while the gang's Bindings were going out"
        binding[0] = False
        await asyncio.wait_for(client.changed.wait(), 5)
        assert notes(client) == ["Successfully assigned ns/p0 to n0"]
        # A gang that binds for longer than DEFER_MAX_SECONDS holds nothing back after it.
        monkeypatch.setattr(events, "DEFER_MAX_SECONDS", 0.05)
        binding[0] = True
        client.changed.clear()
        rep.pod_scheduled(pod_ref("ns", "p1", "u1"), "n0")
        await asyncio.wait_for(client.changed.wait(), 5)
        assert notes(client)[-1] == "Successfully assigned ns/p1 to n0"
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_event_carries_related_object() -> None:
    client = FakeClient()
    rep = reporter(client)
    preemptor = pod_ref("default", "high", "uid-high")
    rep.event(pod_ref("default", "low", "uid-low"), "Preempted", "x", related=preemptor)
    rep.event(pod_ref("default", "other", "uid-other"), "Scheduled", "y")
    await run_until(rep, client, lambda: len(client.writes) == 2)
    bodies = {body["regarding"]["name"]: body for _, _, body in client.writes}
    assert bodies["low"]["related"] == {
        "apiVersion": "v1",
        "kind": "Pod",
        "namespace": "default",
        "name": "high",
        "uid": "uid-high",
    }
    assert "related" not in bodies["other"]
