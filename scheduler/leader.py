"""Leader election on a Lease, with the official client's asyncio implementation.

Only the leader schedules; the others keep their caches warm. A leader that
loses its lease exits (as kube-scheduler does) so it restarts with a clean
state instead of racing the new leader.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable, Coroutine
from typing import Any

import structlog

from scheduler.config import Settings

log = structlog.get_logger(__name__)


def identity() -> str:
    return f"{socket.gethostname()}_{uuid.uuid4().hex[:8]}"


async def run_for_leadership(
    settings: Settings,
    ident: str,
    on_started_leading: Callable[[], Coroutine[Any, Any, None]],
    on_stopped_leading: Callable[[], Coroutine[Any, Any, None]],
) -> None:
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
    async with client.ApiClient(configuration=cfg) as api:
        lock = LeaseLock(
            settings.leader_elect_lease_name, settings.leader_elect_namespace, ident, api
        )
        election = leaderelection.LeaderElection(
            electionconfig.Config(
                lock,
                lease_duration=settings.leader_elect_lease_duration,
                renew_deadline=settings.leader_elect_renew_deadline,
                retry_period=settings.leader_elect_retry_period,
                onstarted_leading=on_started_leading,
                onstopped_leading=on_stopped_leading,
            )
        )
        log.info(
            "waiting for leadership",
            lease=f"{settings.leader_elect_namespace}/{settings.leader_elect_lease_name}",
            identity=ident,
        )
        await election.run()
