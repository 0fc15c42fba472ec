"""HTTP endpoints: ``/healthz`` and ``/readyz`` for probes, ``/metrics`` for Prometheus."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from scheduler.config import split_address


async def serve(
    health_address: str,
    metrics_address: str,
    registry: CollectorRegistry,
    ready: Callable[[], bool],
) -> list[web.AppRunner]:
    """Start the servers (one when both addresses are the same); returns their runners."""

    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def readyz(_: web.Request) -> web.Response:
        return web.Response(text="ok") if ready() else web.Response(status=503, text="not ready")

    async def metrics(_: web.Request) -> web.Response:
        body = generate_latest(registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    health_routes = [web.get("/healthz", healthz), web.get("/readyz", readyz)]
    metrics_routes = [web.get("/metrics", metrics)]
    if health_address == metrics_address:
        plan = [(health_address, health_routes + metrics_routes)]
    else:
        plan = [(health_address, health_routes), (metrics_address, metrics_routes)]
    runners = []
    for address, routes in plan:
        app = web.Application()
        app.add_routes(routes)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        host, port = split_address(address)
        await web.TCPSite(runner, host, port).start()
        runners.append(runner)
    return runners
