"""The API side of preemption: condition, then graceful delete, then Event; 404 is quiet."""

from __future__ import annotations

from typing import Any

from factories import make_pod

from scheduler.api.client import ApiError
from scheduler.api.preemption import PreemptionWriter
from scheduler.model.refs import ObjectRef, pod_ref


class FakeClient:
    def __init__(self, fail: dict[str, int] | None = None) -> None:
        self.calls: list[tuple[str, str, Any]] = []
        self.fail = fail or {}

    async def patch(self, path: str, body: Any, content_type: str = "") -> bytes:
        return await self.request("PATCH", path, body=body)

    async def request(self, method: str, path: str, *, body: Any = None, **_: Any) -> bytes:
        self.calls.append((method, path, body))
        status = self.fail.get(f"{method} {path}")
        if status:
            raise ApiError(status, b"{}", method, path)
        return b"{}"


class FakeReporter:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, str, str]] = []
        self.related: list[ObjectRef | None] = []

    def event(
        self,
        ref: Any,
        reason: str,
        message: str,
        *,
        action: str = "",
        related: ObjectRef | None = None,
        **_: Any,
    ) -> None:
        self.events.append((ref.name, reason, message, action))
        self.related.append(related)


def writer(client: FakeClient, reporter: FakeReporter) -> PreemptionWriter:
    return PreemptionWriter(client, reporter)  # type: ignore[arg-type]


async def test_victim_gets_condition_then_delete_then_event() -> None:
    client, reporter = FakeClient(), FakeReporter()
    w = writer(client, reporter)
    victim = make_pod("victim", cpu="1")
    preemptor = make_pod("p", cpu="1", schedulerName="workload-scheduler")
    w.evict(victim, preemptor, "n1")
    await w.drain()
    (patch, delete) = client.calls
    assert patch[0] == "PATCH" and patch[1].endswith("/pods/victim/status")
    condition = patch[2]["status"]["conditions"][0]
    assert {k: condition[k] for k in ("type", "status", "reason", "message")} == {
        "type": "DisruptionTarget",
        "status": "True",
        "reason": "PreemptionByScheduler",
        "message": "workload-scheduler: preempting to accommodate a higher priority pod",
    }
    assert delete[0] == "DELETE" and delete[1] == "/api/v1/namespaces/default/pods/victim"
    assert delete[2]["preconditions"] == {"uid": victim.metadata.uid}
    assert reporter.events == [
        (
            "victim",
            "Preempted",
            f"Preempted by pod {preemptor.metadata.uid} on node n1",
            "Preempting",
        )
    ]
    # upstream's Eventf(victim, preemptor, ...): the preemptor is the related object
    meta = preemptor.metadata
    assert reporter.related == [pod_ref(meta.namespace, meta.name, meta.uid)]


async def test_gang_victim_names_the_group_as_upstream_1_37() -> None:
    client, reporter = FakeClient(), FakeReporter()
    w = writer(client, reporter)
    group = ObjectRef("scheduling.k8s.io/v1beta1", "PodGroup", "default", "train", "pg-uid")
    member = make_pod("m0", cpu="1", schedulerName="workload-scheduler")
    w.evict(make_pod("victim", cpu="1"), member, "n1", group)
    await w.drain()
    condition = client.calls[0][2]["status"]["conditions"][0]
    assert condition["message"] == (
        "workload-scheduler: preempting to accommodate a higher priority podgroup"
    )
    assert reporter.events == [
        ("victim", "Preempted", "Preempted by podgroup pg-uid on node cluster", "Preempting")
    ]
    assert reporter.related == [group]


async def test_victim_already_gone_is_skipped_quietly() -> None:
    path = "/api/v1/namespaces/default/pods/victim/status"
    client, reporter = FakeClient({f"PATCH {path}": 404}), FakeReporter()
    w = writer(client, reporter)
    w.evict(make_pod("victim"), make_pod("p"), "n1")
    await w.drain()
    assert len(client.calls) == 1 and reporter.events == []


async def test_nomination_set_and_cleared() -> None:
    client, reporter = FakeClient(), FakeReporter()
    w = writer(client, reporter)
    w.nominate(make_pod("p"), "n1")
    w.nominate(make_pod("q"), "")
    await w.drain()
    bodies = sorted((path, body["status"]["nominatedNodeName"]) for _, path, body in client.calls)
    assert bodies == [
        ("/api/v1/namespaces/default/pods/p/status", "n1"),
        ("/api/v1/namespaces/default/pods/q/status", None),
    ]
