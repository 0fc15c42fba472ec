"""Raw JSON requests to the API server over one pooled aiohttp session.

Callers get bytes and decode them into ``scheduler.model`` structs (or
nothing at all): no client model objects on the hot path. Bindings and the
rest (events, status writes) draw on separate request budgets, so reporting
can never delay a bind.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from types import TracebackType
from typing import Any

import aiohttp
import orjson

from scheduler.api.connection import Connection
from scheduler.api.ratelimit import TokenBucket

JSON = "application/json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"  # JSON is valid YAML


class ApiError(Exception):
    """A non-2xx answer; ``status`` is the HTTP code, ``reason`` the Status reason
    (``NotFound``, ``Conflict``, ``AlreadyExists``, ...), ``kind`` the Status details'
    kind (the resource the server names, e.g. ``pods`` or ``pods/binding``)."""

    def __init__(self, status: int, body: bytes, method: str, path: str) -> None:
        self.status = status
        self.reason = ""
        self.kind = ""
        self.message = body[:300].decode(errors="replace")
        try:
            parsed = orjson.loads(body)
            if isinstance(parsed, dict):
                self.reason = str(parsed.get("reason", ""))
                self.message = str(parsed.get("message", self.message))
                details = parsed.get("details")
                if isinstance(details, dict):
                    self.kind = str(details.get("kind", ""))
        except orjson.JSONDecodeError:
            pass
        super().__init__(f"{method} {path}: {status} {self.reason}: {self.message}")


class ApiClient:
    def __init__(
        self,
        connection: Connection,
        *,
        qps: float = 1000.0,
        burst: int = 1000,
        user_agent: str = "workload-scheduler",
        max_connections: int = 100,
    ) -> None:
        self.connection = connection
        self.user_agent = user_agent
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None
        # Bindings get a budget of their own: a storm of events or status
        # patches must never hold a pod back from its node.
        self.bind_budget = TokenBucket(qps, burst)
        self.budget = TokenBucket(qps, burst)

    async def __aenter__(self) -> ApiClient:
        self.open()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    def open(self) -> None:
        if self._session is None:
            connector = aiohttp.TCPConnector(
                ssl=self.connection.ssl_context, limit=self._max_connections
            )
            self._session = aiohttp.ClientSession(
                base_url=None,
                connector=connector,
                headers={"User-Agent": self.user_agent, "Accept": JSON},
                json_serialize=lambda o: orjson.dumps(o).decode(),
            )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("ApiClient is not open")
        return self._session

    def url(self, path: str) -> str:
        return self.connection.server + path

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Any = None,
        content_type: str = JSON,
        budget: TokenBucket | None = None,
        timeout: float = 30.0,
        throttle: bool = True,
    ) -> bytes:
        """One request; raises ``ApiError`` on non-2xx. ``body`` is bytes or JSON-able.
        ``throttle=False``: the caller has already taken the token from the budget."""
        if throttle:
            await (budget or self.budget).acquire()
        data = body if body is None or isinstance(body, bytes) else orjson.dumps(body)
        headers = {**self.connection.auth_headers(), "Content-Type": content_type}
        async with self.session.request(
            method,
            self.url(path),
            params=params,
            data=data,
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=timeout),
        ) as resp:
            payload = await resp.read()
            if resp.status >= 300:
                raise ApiError(resp.status, payload, method, path)
            return payload

    async def get(
        self,
        path: str,
        params: Mapping[str, str] | None = None,
        *,
        budget: TokenBucket | None = None,
    ) -> bytes:
        return await self.request("GET", path, params=params, budget=budget)

    async def post(self, path: str, body: Any, *, budget: TokenBucket | None = None) -> bytes:
        return await self.request("POST", path, body=body, budget=budget)

    async def patch(self, path: str, body: Any, content_type: str = MERGE_PATCH) -> bytes:
        return await self.request("PATCH", path, body=body, content_type=content_type)

    async def delete(self, path: str) -> bytes:
        return await self.request("DELETE", path)

    async def stream_lines(
        self, path: str, params: Mapping[str, str], *, timeout: float
    ) -> AsyncIterator[bytes]:
        """A watch: one JSON document per line until the server closes the stream."""
        await self.budget.acquire()
        async with self.session.get(
            self.url(path),
            params=params,
            headers=self.connection.auth_headers(),
            timeout=aiohttp.ClientTimeout(total=timeout, sock_connect=10),
        ) as resp:
            if resp.status >= 300:
                raise ApiError(resp.status, await resp.read(), "WATCH", path)
            buffer = b""
            async for chunk in resp.content.iter_any():
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    if line:
                        yield line
            if buffer.strip():
                yield buffer


async def gather_limited(limit: int, *coros: Any) -> list[Any]:
    """Run coroutines with at most ``limit`` in flight, returning results or exceptions."""
    sem = asyncio.Semaphore(limit)

    async def run(c: Any) -> Any:
        async with sem:
            return await c

    return await asyncio.gather(*(run(c) for c in coros), return_exceptions=True)
