"""POST a Binding; classify what the API server answers.

The Binding carries the pod's UID, so a pod deleted and recreated under the
same name is never bound by mistake, and the API server refuses to bind a pod
that already has a node, is being deleted or still has scheduling gates:
together with the cache's assumed state, nothing is bound twice.

The API server does not check that the target node exists: a Binding to a
deleted node is accepted, and the pod is lost there. So the last thing before
the request leaves (after any wait for the request budget) is asking the cache
whether the node is still there; if not, the outcome is ``RETRY`` without a
request (a pod goes back to the queue, a gang member is repaired).

Refusals are told apart by the Status the server sends, never by its message
text (which quotes pod and node names). Every refusal is a 409 ``Conflict``:
the UID precondition fails in the storage layer, which names the resource
``pods``; the binding's own checks name ``pods/binding`` and say why only in
words, so for those the pod is read back to see which it is.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum

import msgspec

from scheduler.api.client import ApiClient, ApiError
from scheduler.model.objects import Pod

CONFLICT = "Conflict"
NOT_FOUND = "NotFound"


class BindOutcome(Enum):
    BOUND = "bound"
    POD_GONE = "pod_gone"
    """404, a different pod under the name (UID), or being deleted: forget the pod."""
    ALREADY_ASSIGNED = "already_assigned"
    """Someone (maybe an earlier attempt of ours) bound it; the watch will say where."""
    GATED = "gated"
    """The pod still has scheduling gates: it may not be bound yet."""
    RETRY = "retry"
    """Anything else (throttled, forbidden, API trouble): forget and try again later."""


class Binder:
    def __init__(self, client: ApiClient, node_exists: Callable[[str], bool] | None = None) -> None:
        self.client = client
        self.node_exists = node_exists
        """Asked right before each Binding leaves (the cluster cache's view)."""

    async def bind(self, pod: Pod, node_name: str) -> tuple[BindOutcome, str]:
        meta = pod.metadata
        body = {
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": meta.name, "namespace": meta.namespace, "uid": meta.uid},
            "target": {"apiVersion": "v1", "kind": "Node", "name": node_name},
        }
        await self.client.bind_budget.acquire()
        if self.node_exists is not None and not self.node_exists(node_name):
            return BindOutcome.RETRY, f"node {node_name} was deleted after it was chosen"
        try:
            await self.client.request(
                "POST",
                f"/api/v1/namespaces/{meta.namespace}/pods/{meta.name}/binding",
                body=body,
                throttle=False,
            )
        except ApiError as exc:
            outcome = classify(exc)
            if outcome is None:
                return await self._why_refused(pod, str(exc))
            return outcome, str(exc)
        except Exception as exc:  # connection reset, timeout: the bind may or may not have landed
            return BindOutcome.RETRY, f"{type(exc).__name__}: {exc}"
        return BindOutcome.BOUND, ""

    async def _why_refused(self, pod: Pod, detail: str) -> tuple[BindOutcome, str]:
        """The binding was refused for the pod's state: read the pod to see which state."""
        meta = pod.metadata
        try:
            raw = await self.client.get(
                f"/api/v1/namespaces/{meta.namespace}/pods/{meta.name}",
                budget=self.client.bind_budget,
            )
        except ApiError as exc:
            if exc.status == 404:
                return BindOutcome.POD_GONE, detail
            return BindOutcome.RETRY, detail
        except Exception:
            return BindOutcome.RETRY, detail
        return refusal(msgspec.json.decode(raw, type=Pod), meta.uid), detail


def classify(exc: ApiError) -> BindOutcome | None:
    """The outcome of a failed Binding from its Status; None when the pod must be read
    to tell (a ``pods/binding`` Conflict)."""
    if exc.status == 404 or exc.reason == NOT_FOUND:
        return BindOutcome.POD_GONE
    if exc.status == 409 and exc.reason == CONFLICT:
        if exc.kind == "pods":  # the UID precondition: the pod was deleted and recreated
            return BindOutcome.POD_GONE
        if exc.kind == "pods/binding":
            return None
    return BindOutcome.RETRY


def refusal(current: Pod, uid: str) -> BindOutcome:
    """Why the API server refused to bind the pod with ``uid``, from the pod as it is now."""
    if current.metadata.uid != uid or current.metadata.deletion_timestamp is not None:
        return BindOutcome.POD_GONE
    if current.spec.node_name:
        return BindOutcome.ALREADY_ASSIGNED
    if current.spec.scheduling_gates:
        return BindOutcome.GATED
    return BindOutcome.RETRY
