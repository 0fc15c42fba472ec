"""The binder against the real API server: every refusal it can meet, told apart by the
Status the server sends (never by the message text, which quotes pod and node names)."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
from kubernetes import client

from scheduler.api.client import ApiClient
from scheduler.api.connection import load_connection
from scheduler.binder.binder import Binder, BindOutcome
from scheduler.model.objects import Pod
from tests.e2e.conftest import KubeRequest, NodeFactory
from tests.e2e.k8s import pod_manifest


async def test_binding_refusals_are_classified_from_the_status(
    kubeconfig: str,
    namespace: str,
    node_factory: NodeFactory,
    kube_request: KubeRequest,
    core_api: client.CoreV1Api,
) -> None:
    # Names with "uid" in them: a message-text check for "uid" took these for a UID mismatch.
    node_factory("druid-0", cpu="4", memory="8Gi")
    node_factory("druid-1", cpu="4", memory="8Gi")
    pods = f"/api/v1/namespaces/{namespace}/pods"

    def create(name: str, **extra: Any) -> dict[str, Any]:
        manifest = pod_manifest(name, scheduler="nobody")
        manifest["metadata"].update(extra.pop("metadata", {}))
        manifest["spec"].update(extra)
        return kube_request("POST", pods, manifest)

    def as_pod(obj: dict[str, Any]) -> Pod:
        return msgspec.convert(obj, Pod)

    connection = await asyncio.to_thread(load_connection, kubeconfig)
    async with ApiClient(connection) as api:
        binder = Binder(api)

        fresh = as_pod(create("fluid-fresh"))
        assert (await binder.bind(fresh, "druid-0"))[0] is BindOutcome.BOUND

        # Bound meanwhile by someone else: the pod exists, with a node.
        taken = as_pod(create("fluid-taken"))
        kube_request(
            "POST",
            f"{pods}/fluid-taken/binding",
            {
                "apiVersion": "v1",
                "kind": "Binding",
                "metadata": {"name": "fluid-taken"},
                "target": {"apiVersion": "v1", "kind": "Node", "name": "druid-1"},
            },
        )
        outcome, detail = await binder.bind(taken, "druid-0")
        assert outcome is BindOutcome.ALREADY_ASSIGNED, detail

        # Still gated (as Kueue leaves pods until admission): not bindable, not bound.
        gated = as_pod(create("squid-gated", schedulingGates=[{"name": "example.com/admit"}]))
        outcome, detail = await binder.bind(gated, "druid-0")
        assert outcome is BindOutcome.GATED, detail

        # Deleted and recreated under the same name: the UID precondition refuses it.
        old = as_pod(create("liquid-again"))
        kube_request("DELETE", f"{pods}/liquid-again")
        create("liquid-again")
        outcome, detail = await binder.bind(old, "druid-0")
        assert outcome is BindOutcome.POD_GONE, detail

        # Being deleted (a finalizer holds it): gone for scheduling purposes.
        held = as_pod(create("fluid-held", metadata={"finalizers": ["example.com/hold"]}))
        kube_request("DELETE", f"{pods}/fluid-held")
        try:
            outcome, detail = await binder.bind(held, "druid-0")
            assert outcome is BindOutcome.POD_GONE, detail
        finally:
            core_api.patch_namespaced_pod(
                "fluid-held", namespace, {"metadata": {"finalizers": None}}
            )

        # Gone.
        gone = as_pod(create("fluid-gone"))
        kube_request("DELETE", f"{pods}/fluid-gone")
        outcome, detail = await binder.bind(gone, "druid-0")
        assert outcome is BindOutcome.POD_GONE, detail
