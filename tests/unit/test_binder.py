"""Binding refusals are classified from the Status (reason, details.kind), not its text."""

from __future__ import annotations

import orjson
from factories import make_pod

from scheduler.api.client import ApiError
from scheduler.binder.binder import BindOutcome, classify, refusal


def status(code: int, reason: str, kind: str, message: str) -> ApiError:
    body = {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "message": message,
        "reason": reason,
        "details": {"name": "fluid-0", "kind": kind},
        "code": code,
    }
    return ApiError(code, orjson.dumps(body), "POST", "/api/v1/namespaces/ns/pods/fluid-0/binding")


def test_uid_precondition_is_a_conflict_on_pods() -> None:
    exc = status(
        409,
        "Conflict",
        "pods",
        'Operation cannot be fulfilled on pods "fluid-0": Precondition failed: '
        "UID in precondition: a, UID in object meta: b",
    )
    assert classify(exc) is BindOutcome.POD_GONE


def test_binding_refusal_is_looked_up_whatever_its_text_says() -> None:
    # "uid" in a pod or node name must not make it look like a UID mismatch.
    exc = status(
        409,
        "Conflict",
        "pods/binding",
        'Operation cannot be fulfilled on pods/binding "fluid-0": pod fluid-0 is already '
        'assigned to node "druid-1"',
    )
    assert classify(exc) is None


def test_not_found_and_other_errors() -> None:
    assert classify(status(404, "NotFound", "pods", 'pods "fluid-0" not found')) is (
        BindOutcome.POD_GONE
    )
    assert classify(status(403, "Forbidden", "pods", "forbidden")) is BindOutcome.RETRY
    assert classify(status(409, "AlreadyExists", "pods", "exists")) is BindOutcome.RETRY
    assert classify(ApiError(500, b"not json", "POST", "/x")) is BindOutcome.RETRY


def test_refusal_from_the_pod_as_it_is_now() -> None:
    pod = make_pod("fluid-0")
    uid = pod.metadata.uid
    assert refusal(make_pod("fluid-0", node_name="druid-1"), uid) is BindOutcome.ALREADY_ASSIGNED
    gated = make_pod("fluid-0", schedulingGates=[{"name": "example.com/admit"}])
    assert refusal(gated, uid) is BindOutcome.GATED
    assert refusal(pod, "another-uid") is BindOutcome.POD_GONE
    pod.metadata.deletion_timestamp = "2026-01-01T00:00:00Z"
    assert refusal(pod, uid) is BindOutcome.POD_GONE


async def test_no_binding_leaves_for_a_node_the_cache_no_longer_has() -> None:
    from typing import Any

    from scheduler.api.ratelimit import TokenBucket
    from scheduler.binder.binder import Binder

    class NoRequests:
        bind_budget = TokenBucket(100.0, 10)

        async def request(self, *args: Any, **kwargs: Any) -> bytes:
            raise AssertionError("a Binding was sent to a deleted node")

    binder = Binder(NoRequests(), node_exists=lambda name: name != "gone")  # type: ignore[arg-type]
    outcome, detail = await binder.bind(make_pod("p"), "gone")
    assert outcome is BindOutcome.RETRY
    assert detail == "node gone was deleted after it was chosen"
