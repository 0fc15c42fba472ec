"""List + watch one resource, keeping a handler in step with the cluster.

The loop client-go's reflector runs, in a few lines: list (paged) to get a
resourceVersion, watch from it with bookmarks, resume from the last version
seen when the stream ends, and list again when the server says the version is
gone (410). Objects are decoded straight into msgspec structs.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from typing import Any, Generic, Protocol, TypeVar

import msgspec
import structlog

from scheduler.api.client import ApiClient, ApiError
from scheduler.model.objects import ListMeta

T = TypeVar("T")

log = structlog.get_logger(__name__)

ADDED, MODIFIED, DELETED = "ADDED", "MODIFIED", "DELETED"
YIELD_EVERY_SECONDS = 0.005
"""How long a burst of watch events is applied before the event loop gets a turn."""


class WatchHandler(Protocol[T]):
    def replace(self, items: list[T]) -> None:
        """The full current set after a (re)list: add, update and drop accordingly."""

    def apply(self, event_type: str, obj: T) -> None:
        """One ADDED, MODIFIED or DELETED event."""


class _Event(msgspec.Struct):
    type: str
    object: msgspec.Raw


class _Meta(msgspec.Struct, rename="camel"):
    resource_version: str = ""


class _Object(msgspec.Struct):
    metadata: _Meta = msgspec.field(default_factory=_Meta)


class _Status(msgspec.Struct):
    code: int = 0
    reason: str = ""
    message: str = ""


class _GoneError(Exception):
    pass


class Reflector(Generic[T]):
    def __init__(
        self,
        client: ApiClient,
        path: str,
        item_type: type[T],
        handler: WatchHandler[T],
        *,
        params: dict[str, str] | None = None,
        page_size: int = 500,
        watch_timeout: int = 300,
        on_error: Callable[[str], None] | None = None,
        inspect: Callable[[msgspec.Raw, T], None] | None = None,
    ) -> None:
        """``inspect`` sees each object's raw JSON beside its decoded struct, before the
        handler does (pods: which fields we do not know, ``model.pod_fields``)."""
        self.client = client
        self.path = path
        self.handler = handler
        self.params = params or {}
        self.page_size = page_size
        self.watch_timeout = watch_timeout
        self.synced = asyncio.Event()
        self.resource_version = ""
        self._on_error = on_error
        self._inspect = inspect

        # With ``inspect`` the items of a page stay raw and are decoded one by one.
        element: Any = item_type if inspect is None else msgspec.Raw
        list_type = msgspec.defstruct(
            f"{item_type.__name__}List",
            [
                ("metadata", ListMeta, msgspec.field(default_factory=ListMeta)),
                ("items", list[element], msgspec.field(default_factory=list)),
            ],
        )
        self._list_decoder: msgspec.json.Decoder[Any] = msgspec.json.Decoder(list_type)
        self._item_decoder = msgspec.json.Decoder(item_type)
        self._event_decoder = msgspec.json.Decoder(_Event)
        self._meta_decoder = msgspec.json.Decoder(_Object)
        self._status_decoder = msgspec.json.Decoder(_Status)

    async def run(self) -> None:
        """Forever: list, then watch until the version expires; errors back off and retry."""
        delay = 0.5
        while True:
            try:
                if not self.resource_version:
                    await self._list()
                await self._watch()
                delay = 0.5
            except _GoneError:
                log.info("watch version expired, listing again", path=self.path)
                self.resource_version = ""
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the loop must survive any API hiccup
                log.warning("watch failed, retrying", path=self.path, error=str(exc), delay=delay)
                if self._on_error:
                    self._on_error(self.path)
                if isinstance(exc, ApiError) and exc.status == 410:
                    self.resource_version = ""
                await asyncio.sleep(delay * (1 + random.random() / 2))
                delay = min(delay * 2, 30.0)

    async def _list(self) -> None:
        items: list[T] = []
        cont = ""
        while True:
            params = {**self.params, "limit": str(self.page_size)}
            if cont:
                params["continue"] = cont
            page = self._list_decoder.decode(await self.client.get(self.path, params))
            if self._inspect is None:
                items.extend(page.items)
            else:
                items.extend(self._decode(raw) for raw in page.items)
            cont = page.metadata.continue_
            if not cont:
                self.resource_version = page.metadata.resource_version
                break
        self.handler.replace(items)
        self.synced.set()
        log.debug("listed", path=self.path, count=len(items), rv=self.resource_version)

    def _decode(self, raw: msgspec.Raw) -> T:
        obj = self._item_decoder.decode(raw)
        if self._inspect is not None:
            self._inspect(raw, obj)
        return obj

    async def _watch(self) -> None:
        params = {
            **self.params,
            "watch": "true",
            "resourceVersion": self.resource_version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(self.watch_timeout),
        }
        lines = self.client.stream_lines(self.path, params, timeout=self.watch_timeout + 30)
        turn = time.perf_counter()
        async for line in lines:
            # A burst of buffered events is read without suspending: let the loop run
            # every few milliseconds (bindings, Events, the Lease, /healthz).
            if time.perf_counter() - turn > YIELD_EVERY_SECONDS:
                await asyncio.sleep(0)
                turn = time.perf_counter()
            event = self._event_decoder.decode(line)
            if event.type == "ERROR":
                status = self._status_decoder.decode(event.object)
                if status.code == 410:
                    raise _GoneError(status.message)
                raise ApiError(status.code, bytes(event.object), "WATCH", self.path)
            if event.type == "BOOKMARK":
                self.resource_version = self._meta_decoder.decode(
                    event.object
                ).metadata.resource_version
                continue
            obj = self._decode(event.object)
            self.resource_version = obj.metadata.resource_version  # type: ignore[attr-defined]
            try:
                self.handler.apply(event.type, obj)
            except Exception:  # one bad object must not stop the stream
                log.exception("watch handler failed", path=self.path, event=event.type)
