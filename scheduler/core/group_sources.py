"""Which pod-group APIs to watch, found through API discovery at start-up.

Each API the cluster serves gets a reflector whose events ``group_events`` turns into
registry updates: the native v1alpha1 Workload (Kubernetes 1.35), the standalone
PodGroup (1.36+, whichever version is served) and our own Workload CRD. The registry
learns which kinds are served, so a pod naming an API the cluster lacks is told so.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar

import structlog

from scheduler.api.client import ApiClient
from scheduler.api.sources.discovery import SCHEDULING_GROUP, discover
from scheduler.api.sources.policies import podgroup_object, workload_object
from scheduler.api.sources.shapes import PodGroup, Workload
from scheduler.api.watch import Reflector
from scheduler.core.event_hold import EventHold
from scheduler.core.group_events import GroupObjectEvents
from scheduler.gang.model import (
    CRD_GROUP,
    CRD_VERSION,
    CRD_WORKLOAD,
    PODGROUP,
    WORKLOAD,
    GroupKey,
    GroupObject,
)
from scheduler.gang.registry import GangRegistry

log = structlog.get_logger(__name__)
T = TypeVar("T")


async def group_reflectors(
    client: ApiClient,
    gangs: GangRegistry,
    on_change: Callable[[list[GroupKey]], None],
    on_error: Callable[[str], None],
    hold: EventHold,
) -> list[Reflector[Any]]:
    """A reflector per pod-group API the cluster serves; ``gangs.served`` is set to them.

    ``on_change`` gets the groups whose members should pass (or fail) their gate again;
    events apply through ``hold``, as every watch does (a gang pass in flight sees none).
    """
    served = await discover(client)
    log.info("pod-group APIs", served=served.describe())

    def watch(
        kind: str, api: str, plural: str, item_type: type[T], convert: Callable[[T], GroupObject]
    ) -> Reflector[Any]:
        handler = GroupObjectEvents(kind, gangs, convert, on_change)
        return Reflector(
            client, f"/apis/{api}/{plural}", item_type, hold.wrap(handler), on_error=on_error
        )

    reflectors: list[Reflector[Any]] = []
    kinds = set()
    if served.native_workloads:
        api = f"{SCHEDULING_GROUP}/v1alpha1"
        convert_workload = partial(workload_object, kind=WORKLOAD, api_version=api)
        reflectors.append(watch(WORKLOAD, api, "workloads", Workload, convert_workload))
        kinds.add(WORKLOAD)
    if served.podgroup_version:
        api = f"{SCHEDULING_GROUP}/{served.podgroup_version}"
        convert_podgroup = partial(podgroup_object, api_version=api, resource=f"/apis/{api}")
        reflectors.append(watch(PODGROUP, api, "podgroups", PodGroup, convert_podgroup))
        kinds.add(PODGROUP)
    if served.crd_workloads:
        api = f"{CRD_GROUP}/{CRD_VERSION}"
        convert_crd = partial(
            workload_object, kind=CRD_WORKLOAD, api_version=api, resource=f"/apis/{api}"
        )
        reflectors.append(watch(CRD_WORKLOAD, api, "workloads", Workload, convert_crd))
        kinds.add(CRD_WORKLOAD)
    gangs.served = kinds
    return reflectors
