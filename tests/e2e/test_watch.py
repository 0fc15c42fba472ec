"""The list+watch reflector against the real API server: a resourceVersion that etcd has
compacted away (410 Gone) makes it list again, and it carries on watching from the new list.

The dev API server serves PodTemplates without its watch cache (``UNCACHED_RESOURCE``), so
their watches go to etcd, and compacting etcd makes an old version really gone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import aiohttp
import msgspec
import orjson
import pytest

from devcluster import ClusterInfo
from devcluster.controlplane import UNCACHED_RESOURCE
from scheduler.api.client import ApiClient
from scheduler.api.connection import load_connection
from scheduler.api.watch import Reflector
from scheduler.model.objects import ObjectMeta


class _Item(msgspec.Struct, rename="camel"):
    metadata: ObjectMeta = msgspec.field(default_factory=ObjectMeta)


class _Recorder:
    """A watch handler that remembers every list and event."""

    def __init__(self) -> None:
        self.lists: list[set[str]] = []
        self.events: list[tuple[str, str]] = []
        self.changed = asyncio.Event()

    def replace(self, items: list[_Item]) -> None:
        self.lists.append({i.metadata.name for i in items})
        self.changed.set()

    def apply(self, event_type: str, obj: _Item) -> None:
        self.events.append((event_type, obj.metadata.name))
        self.changed.set()

    async def until(self, condition: Callable[[], bool], timeout: float = 30) -> None:
        async def wait() -> None:
            while not condition():
                self.changed.clear()
                await self.changed.wait()

        await asyncio.wait_for(wait(), timeout)


def _template(name: str) -> dict[str, object]:
    return {
        "metadata": {"name": name},
        "template": {"spec": {"containers": [{"name": "c", "image": "registry.k8s.io/pause"}]}},
    }


async def _compact_etcd(etcd_url: str) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{etcd_url}/v3/maintenance/status", json={}) as resp:
            revision = orjson.loads(await resp.read())["header"]["revision"]
        body = {"revision": revision, "physical": True}
        async with http.post(f"{etcd_url}/v3/kv/compaction", json=body) as resp:
            assert resp.status == 200, await resp.text()


async def test_watch_relists_when_its_resource_version_is_gone(
    kubeconfig: str, namespace: str, control_plane: ClusterInfo | None
) -> None:
    if control_plane is None:
        pytest.fail("needs the dev control plane's etcd (an external kubeconfig has none)")
    assert UNCACHED_RESOURCE == "podtemplates"
    connection = await asyncio.to_thread(load_connection, kubeconfig)
    path = f"/api/v1/namespaces/{namespace}/podtemplates"
    async with ApiClient(connection) as api:
        first = orjson.loads(await api.post(path, _template("before-1")))
        stale_version = first["metadata"]["resourceVersion"]
        await api.post(path, _template("before-2"))
        await api.delete(f"{path}/before-1")
        await _compact_etcd(control_plane.etcd_url)

        recorder = _Recorder()
        errors: list[str] = []
        reflector = Reflector(api, path, _Item, recorder, on_error=errors.append)
        # As if the scheduler had been watching since before-1 and its stream had dropped:
        # it resumes from a version that no longer exists.
        reflector.resource_version = stale_version
        task = asyncio.create_task(reflector.run())
        try:
            await recorder.until(lambda: bool(recorder.lists))
            assert recorder.lists[0] == {"before-2"}, "the relist shows the current state"
            assert not recorder.events, "nothing replayed from the compacted history"
            assert reflector.synced.is_set()
            assert int(reflector.resource_version) > int(stale_version)

            # The watch resumed from the new list: later changes arrive as events.
            await api.post(path, _template("after"))
            await api.delete(f"{path}/before-2")
            await recorder.until(
                lambda: {("ADDED", "after"), ("DELETED", "before-2")} <= set(recorder.events)
            )
            assert len(recorder.lists) == 1, "listed once, not in a loop"
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
