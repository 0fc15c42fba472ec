"""Leader election on a Lease, with the official client's asyncio implementation.

Only the leader schedules; the others keep their caches warm. A leader that
loses its lease exits (as kube-scheduler does) so it restarts with a clean
state instead of racing the new leader.

A leader told to stop (SIGTERM: a rolling update, a drained node) stops
scheduling, waits for its bindings in flight, and then releases the Lease
(empty holder, as client-go's ``ReleaseOnCancel``), so a follower takes over
at its next retry (``leader_elect_retry_period``) instead of after the whole
lease duration.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import socket
import uuid
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Any

import structlog

from scheduler.config import Settings

log = structlog.get_logger(__name__)

RELEASE_TIMEOUT_SECONDS = 5.0


def identity() -> str:
    return f"{socket.gethostname()}_{uuid.uuid4().hex[:8]}"


async def run_for_leadership(
    settings: Settings,
    ident: str,
    on_started_leading: Callable[[], Coroutine[Any, Any, None]],
    on_stopped_leading: Callable[[], Coroutine[Any, Any, None]],
) -> None:
    # The official client's asyncio half takes about 0.2 s to import: in a thread, so the
    # event loop (watches, /healthz) keeps turning meanwhile; the imports below then find
    # the modules loaded.
    await asyncio.to_thread(_import_client)
    from kubernetes.aio import client, config
    from kubernetes.aio.leaderelection import electionconfig, leaderelection
    from kubernetes.aio.leaderelection.resourcelock.leaselock import LeaseLock

    cfg = client.Configuration()
    if settings.kubeconfig:
        await config.load_kube_config(config_file=settings.kubeconfig, client_configuration=cfg)
    elif os.environ.get("KUBERNETES_SERVICE_HOST"):
        config.load_incluster_config(client_configuration=cfg)
    else:
        await config.load_kube_config(client_configuration=cfg)
    # The client's session trusts the environment by default: every request then looks up
    # ~/.netrc and the proxy variables in a worker thread (about a third of an idle
    # leader's CPU). Our own client (``api.client``) never reads them; neither does this.
    cfg.client_session_kwargs = {"trust_env": False}

    class _LeaseLock(LeaseLock):
        """The client's LeaseLock creates the Lease with ``pretty=True``, which its own
        (pydantic-validated) API method rejects; create it without."""

        async def create(self, name: str, namespace: str, election_record: Any) -> bool:
            body = client.V1Lease(
                metadata=client.V1ObjectMeta(name=name),
                spec=self.update_lease(election_record),
            )
            try:
                await self.api_instance.create_namespaced_lease(namespace, body)
            except client.ApiException as exc:
                log.warning("could not create the lease", error=str(exc.reason))
                return False
            return True

    leading: asyncio.Task[Any] | None = None

    async def started() -> None:
        nonlocal leading
        leading = asyncio.current_task()
        await on_started_leading()

    name, namespace = settings.leader_elect_lease_name, settings.leader_elect_namespace
    async with client.ApiClient(configuration=cfg) as api:
        lock = _LeaseLock(name, namespace, ident, api)
        election = leaderelection.LeaderElection(
            electionconfig.Config(
                lock,
                # Whole seconds: the client writes str(lease_duration) into the record and
                # parses it back with int(), so 15.0 would fail.
                lease_duration=max(2, round(settings.leader_elect_lease_duration)),
                renew_deadline=settings.leader_elect_renew_deadline,
                retry_period=settings.leader_elect_retry_period,
                onstarted_leading=started,
                onstopped_leading=on_stopped_leading,
            )
        )
        log.info("waiting for leadership", lease=f"{namespace}/{name}", identity=ident)
        try:
            await election.run()
        except asyncio.CancelledError:
            if leading is not None:
                # Stop scheduling (the scheduling task waits for its bindings) before
                # anyone else may start.
                leading.cancel()
                await asyncio.gather(leading, return_exceptions=True)
                try:
                    async with asyncio.timeout(RELEASE_TIMEOUT_SECONDS):
                        await _release(client.CoordinationV1Api(api), name, namespace, ident)
                except Exception as exc:  # the lease then simply runs out
                    log.warning("could not release the lease", error=str(exc))
            raise


def _import_client() -> None:
    for module in (
        "kubernetes.aio.client",
        "kubernetes.aio.config",
        "kubernetes.aio.leaderelection.electionconfig",
        "kubernetes.aio.leaderelection.leaderelection",
        "kubernetes.aio.leaderelection.resourcelock.leaselock",
    ):
        importlib.import_module(module)


async def _release(api: Any, name: str, namespace: str, ident: str) -> None:
    """Give the Lease up: no holder, so a follower may take it at once."""
    lease = await api.read_namespaced_lease(name, namespace)
    if lease.spec is None or lease.spec.holder_identity != ident:
        return  # not ours (any more): nothing to give up
    now = datetime.now(UTC)
    lease.spec.holder_identity = None
    lease.spec.lease_duration_seconds = 1
    lease.spec.acquire_time = now
    lease.spec.renew_time = now
    await api.replace_namespaced_lease(name, namespace, lease)
    log.info("lease released", lease=f"{namespace}/{name}", identity=ident)
