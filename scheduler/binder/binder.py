"""POST a Binding; classify what the API server answers.

The Binding carries the pod's UID, so a pod deleted and recreated under the
same name is never bound by mistake, and the API server refuses to bind a pod
that already has a node or is being deleted: together with the cache's
assumed state, nothing is bound twice.
"""

from __future__ import annotations

from enum import Enum

from scheduler.api.client import ApiClient, ApiError
from scheduler.model.objects import Pod


class BindOutcome(Enum):
    BOUND = "bound"
    POD_GONE = "pod_gone"
    """404, or the UID no longer matches: forget the pod."""
    ALREADY_ASSIGNED = "already_assigned"
    """409: someone (maybe an earlier attempt of ours) assigned it; the watch will say where."""
    RETRY = "retry"
    """Anything else (node gone, throttled, API trouble): forget and try again later."""


class Binder:
    def __init__(self, client: ApiClient) -> None:
        self.client = client

    async def bind(self, pod: Pod, node_name: str) -> tuple[BindOutcome, str]:
        meta = pod.metadata
        body = {
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": meta.name, "namespace": meta.namespace, "uid": meta.uid},
            "target": {"apiVersion": "v1", "kind": "Node", "name": node_name},
        }
        try:
            await self.client.post(
                f"/api/v1/namespaces/{meta.namespace}/pods/{meta.name}/binding",
                body,
                budget=self.client.bind_budget,
            )
        except ApiError as exc:
            return classify(exc), str(exc)
        except Exception as exc:  # connection reset, timeout: the bind may or may not have landed
            return BindOutcome.RETRY, f"{type(exc).__name__}: {exc}"
        return BindOutcome.BOUND, ""


def classify(exc: ApiError) -> BindOutcome:
    if exc.status == 404:
        return BindOutcome.POD_GONE
    if exc.status == 409:
        # A UID precondition failure is a 409 too: the pod was recreated.
        if "UID" in exc.message or "uid" in exc.message:
            return BindOutcome.POD_GONE
        return BindOutcome.ALREADY_ASSIGNED
    return BindOutcome.RETRY
