"""``/healthz`` and ``/readyz`` for probes, ``/metrics`` for Prometheus.

The health endpoints are plain HTTP and open to anyone, as kubelet probes need
(kube-scheduler, too, lets anyone read them). ``/metrics`` is, by default, served as
on kube-scheduler's secure port: HTTPS (``scheduler.server.tls``), and only to a
bearer token the API server accepts whose user may ``get`` the non-resource URL
``/metrics`` (``scheduler.server.auth``)::

    401 Unauthorized                     no token, or one the API server rejects
    403 forbidden: User "..." cannot get path "/metrics"
    500 Internal Server Error            the access review itself failed

With ``secure_metrics: false`` (``--no-secure-metrics``) it is plain HTTP for anyone
who reaches the port. When both bind addresses are the same, one server answers all
three paths (HTTPS when secure; the health paths stay unauthenticated).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

import orjson
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from scheduler.api.client import ApiClient
from scheduler.api.reviews import ApiReviewer
from scheduler.config import Settings, split_address
from scheduler.server.auth import Decision, DelegatedAuth, Outcome
from scheduler.server.tls import ServingCertificate, certificate_source

METRICS_PATH = "/metrics"
_STATUS_REASONS = {
    Outcome.UNAUTHENTICATED: "Unauthorized",
    Outcome.FORBIDDEN: "Forbidden",
    Outcome.ERROR: "InternalError",
}


async def serve(
    settings: Settings,
    client: ApiClient,
    registry: CollectorRegistry,
    ready: Callable[[], bool],
) -> list[web.AppRunner]:
    """Start the servers (one when both addresses are the same); returns their runners.

    Raises ``scheduler.server.tls.CertificateError`` when the serving certificate files
    cannot be loaded."""

    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def readyz(_: web.Request) -> web.Response:
        return web.Response(text="ok") if ready() else web.Response(status=503, text="not ready")

    async def metrics(_: web.Request) -> web.Response:
        body = generate_latest(registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    certificate: ServingCertificate | None = None
    handler: Callable[[web.Request], Awaitable[web.Response]] = metrics
    if settings.secure_metrics:
        host, _ = split_address(settings.metrics_bind_address)
        certificate = ServingCertificate(
            certificate_source(settings.tls_cert_file, settings.tls_private_key_file, host)
        )
        await certificate.load()
        auth = DelegatedAuth(ApiReviewer(client))

        async def secure_metrics(request: web.Request) -> web.Response:
            decision = await auth.check(request.headers.get("Authorization"), "get", METRICS_PATH)
            if decision.outcome is not Outcome.ALLOWED:
                return status_response(decision)
            return await metrics(request)

        handler = secure_metrics

    health_routes = [web.get("/healthz", healthz), web.get("/readyz", readyz)]
    # No HEAD: the authorizer is asked about "get" only.
    metrics_routes = [web.get(METRICS_PATH, handler, allow_head=False)]
    if settings.health_bind_address == settings.metrics_bind_address:
        plan = [(settings.metrics_bind_address, health_routes + metrics_routes, certificate)]
    else:
        plan = [
            (settings.health_bind_address, health_routes, None),
            (settings.metrics_bind_address, metrics_routes, certificate),
        ]
    runners = []
    for address, routes, tls in plan:
        app = web.Application()
        app.add_routes(routes)
        if tls is not None:
            app.cleanup_ctx.append(_keep_current(tls))
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        host, port = split_address(address)
        context = tls.context if tls is not None else None
        await web.TCPSite(runner, host, port, ssl_context=context).start()
        runners.append(runner)
    return runners


def _keep_current(
    certificate: ServingCertificate,
) -> Callable[[web.Application], AsyncIterator[None]]:
    """The certificate's refresh loop, running as long as the server does."""

    async def context(_: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(certificate.run(), name="serving certificate")
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    return context


def status_response(decision: Decision) -> web.Response:
    """A ``meta.k8s.io`` Status, as the API server's own filters answer."""
    code = decision.outcome.value
    body = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": decision.message,
        "reason": _STATUS_REASONS[decision.outcome],
        "details": {},
        "code": code,
    }
    return web.Response(status=code, body=orjson.dumps(body), content_type="application/json")
