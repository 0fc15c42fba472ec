"""VolumeBinding's Reserve, PreBind and Unreserve: a pod's unbound ``WaitForFirstConsumer``
claims are bound at its node before the pod is, as upstream's volume binder does.

1. Reserve (in the scheduling cycle, right after the node is chosen): the plugin works out
   the bindings for that node and assumes them in the ``VolumeStore``, so the next pod's
   cycle does not choose the same PV.
2. PreBind (in the binding cycle, before the pod's Binding): every chosen PV gets the
   claim reference (``spec.claimRef``, with ``pv.kubernetes.io/bound-by-controller``),
   every claim to provision gets ``volume.kubernetes.io/selected-node``; both writes carry
   the resourceVersion we decided on, so a concurrent change fails them instead of being
   overwritten. Then it waits, up to the bind timeout (upstream's ``bindTimeoutSeconds``,
   600 s by default), for the PV controller (and the external provisioner) to finish: each
   claim bound (``spec.volumeName`` and ``pv.kubernetes.io/bind-completed``), each PV's
   node affinity matching the node. A claim whose selected node was taken away (the
   provisioner gave up), a PV whose claim reference was reset, the pod deleted, or the
   timeout fail the PreBind.
3. Unreserve (on failure): the assumptions are dropped; the pod goes back to the queue
   with ``running PreBind plugin "VolumeBinding": binding volumes: <why>`` (reason
   ``SchedulerError``), as kube-scheduler reports it. What was written stays written, as
   upstream (there is no API rollback): the PV controller sees to it.

What the wait reads is the watch's latest objects, not our assumptions (upstream's
``GetAPIPV``/``GetAPIPVC``), and an object older than the one our write returned is not
judged yet.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Final, Protocol

import msgspec
import structlog

from scheduler.api.client import ApiError
from scheduler.cache.volumes import VolumeStore
from scheduler.framework.plugins.volume_binding import PodVolumes, VolumeBinding
from scheduler.framework.types import NodeInfo, PodInfo
from scheduler.framework.volumes import volume_fits_node
from scheduler.model.volumes import (
    ANN_BOUND_BY_CONTROLLER,
    ANN_SELECTED_NODE,
    PersistentVolume,
    PersistentVolumeClaim,
)

log = structlog.get_logger(__name__)

BIND_TIMEOUT_SECONDS: Final = 600.0
"""Upstream's VolumeBindingArgs ``bindTimeoutSeconds`` default."""
PREFIX: Final = 'running PreBind plugin "VolumeBinding": binding volumes: '


class Patcher(Protocol):
    """Sends a JSON merge patch and returns the object the server answers with
    (``ApiClient.patch``); raises ``ApiError``."""

    async def patch(self, path: str, body: object) -> bytes: ...


def _version(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        return 0


class VolumePreBind:
    def __init__(
        self,
        client: Patcher,
        store: VolumeStore,
        plugin: VolumeBinding,
        pod_present: Callable[[str], bool],
        node_labels: Callable[[str], dict[str, str] | None],
        timeout: float = BIND_TIMEOUT_SECONDS,
    ) -> None:
        self.client = client
        self.store = store
        self.plugin = plugin
        self.pod_present = pod_present
        """Whether the pod (by UID) is still ours to bind (the cache still has it)."""
        self.node_labels = node_labels
        self.timeout = timeout

    def reserve(self, pod: PodInfo, node: NodeInfo) -> PodVolumes | None:
        """Assume the pod's volume bindings at ``node``; None: nothing to bind."""
        return self.plugin.reserve(pod, node)

    def unreserve(self, volumes: PodVolumes) -> None:
        for pv, _ in volumes.static:
            self.store.restore_volume(pv.metadata.name)
        for claim in volumes.provision:
            self.store.restore_claim(claim.key)

    async def bind(self, pod: PodInfo, node_name: str, volumes: PodVolumes) -> str | None:
        """Write the bindings and wait for them to complete; None when done, otherwise the
        FailedScheduling message (the assumptions are then dropped)."""
        try:
            written = await self._write(volumes, node_name)
            error = await self._wait(pod, node_name, written)
        except ApiError as exc:
            error = str(exc)
        if error is None:
            log.info("volumes bound", pod=pod.key, node=node_name)
            return None
        self.unreserve(volumes)
        log.warning("binding volumes failed", pod=pod.key, node=node_name, error=error)
        return PREFIX + error

    async def _write(self, volumes: PodVolumes, node_name: str) -> PodVolumes:
        written = PodVolumes()
        for pv, claim in volumes.static:
            api_pv = self.store.api_volume(pv.metadata.name)
            if api_pv is not None and pv.bound_to(claim) and api_pv == pv:
                written.static.append((pv, claim))  # pre-bound by the user: nothing to write
                continue
            meta = claim.metadata
            body = {
                "metadata": {
                    "resourceVersion": pv.metadata.resource_version,
                    "annotations": {ANN_BOUND_BY_CONTROLLER: "yes"}
                    if ANN_BOUND_BY_CONTROLLER in pv.metadata.annotations
                    else {},
                },
                "spec": {
                    "claimRef": {
                        "kind": "PersistentVolumeClaim",
                        "apiVersion": "v1",
                        "namespace": meta.namespace,
                        "name": meta.name,
                        "uid": meta.uid,
                        "resourceVersion": meta.resource_version,
                    }
                },
            }
            answer = await self.client.patch(f"/api/v1/persistentvolumes/{pv.metadata.name}", body)
            log.info("claim bound to volume", claim=claim.key, volume=pv.metadata.name)
            written.static.append((msgspec.json.decode(answer, type=PersistentVolume), claim))
        for claim in volumes.provision:
            meta = claim.metadata
            body = {
                "metadata": {
                    "resourceVersion": meta.resource_version,
                    "annotations": {ANN_SELECTED_NODE: node_name},
                }
            }
            answer = await self.client.patch(
                f"/api/v1/namespaces/{meta.namespace}/persistentvolumeclaims/{meta.name}", body
            )
            written.provision.append(msgspec.json.decode(answer, type=PersistentVolumeClaim))
        return written

    async def _wait(self, pod: PodInfo, node_name: str, written: PodVolumes) -> str | None:
        deadline = time.monotonic() + self.timeout
        while True:
            done, error = self.check(pod, node_name, written)
            if error is not None or done:
                return error
            left = deadline - time.monotonic()
            if left <= 0:
                return "context deadline exceeded"
            # Look again at every change, and at least once a second as upstream polls.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.store.changed(), timeout=min(left, 1.0))

    def check(self, pod: PodInfo, node_name: str, written: PodVolumes) -> tuple[bool, str | None]:
        """(all bound, why binding failed) from the watch's latest objects
        (upstream's ``checkBindings``)."""
        if not self.pod_present(pod.uid):
            return False, "pod does not exist any more"
        labels = self.node_labels(node_name)
        if labels is None:
            return False, f'failed to get node "{node_name}"'
        for pv, claim in written.static:
            api_pv = self.store.api_volume(pv.metadata.name)
            api_claim = self.store.api_claim(claim.key)
            if api_pv is None:
                return (
                    False,
                    f'failed to check binding: persistentvolume "{pv.metadata.name}" not found',
                )
            if api_claim is None:
                return False, (
                    f'failed to check binding: persistentvolumeclaim "{claim.key}" not found'
                )
            if _version(pv.metadata.resource_version) > _version(api_pv.metadata.resource_version):
                return False, None  # our write has not come back through the watch yet
            if not volume_fits_node(api_pv, labels):
                return False, (
                    f'pv "{pv.metadata.name}" node affinity doesn\'t match node "{node_name}"'
                )
            ref = api_pv.spec.claim_ref
            if ref is None or not ref.uid:
                return False, f'ClaimRef got reset for pv "{pv.metadata.name}"'
            if not api_claim.fully_bound:
                return False, None
        for claim in written.provision:
            api_claim = self.store.api_claim(claim.key)
            if api_claim is None:
                return False, (
                    f'failed to check provisioning pvc: persistentvolumeclaim "{claim.key}" '
                    "not found"
                )
            if _version(claim.metadata.resource_version) > _version(
                api_claim.metadata.resource_version
            ):
                return False, None
            if api_claim.metadata.annotations.get(ANN_SELECTED_NODE) != node_name:
                # The provisioner takes the annotation away when it gives up.
                return False, f'provisioning failed for PVC "{api_claim.metadata.name}"'
            if api_claim.spec.volume_name:
                api_pv = self.store.api_volume(api_claim.spec.volume_name)
                if api_pv is None:
                    return False, None  # not seen yet
                if not volume_fits_node(api_pv, labels):
                    return False, (
                        f'pv "{api_pv.metadata.name}" node affinity doesn\'t match node '
                        f'"{node_name}"'
                    )
            if not api_claim.fully_bound:
                return False, None
        return True, None
