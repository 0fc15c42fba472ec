"""Watch events on Workload and PodGroup objects become registry updates.

When an object appears, changes or goes, the members of its groups are checked
again: a gated pod may now be admitted, or must now wait with a new message.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from scheduler.api.watch import DELETED
from scheduler.gang.model import GroupKey, GroupObject, ObjectKey
from scheduler.gang.registry import GangRegistry

T = TypeVar("T")


class GroupObjectEvents(Generic[T]):
    def __init__(
        self,
        kind: str,
        registry: GangRegistry,
        convert: Callable[[T], GroupObject],
        on_change: Callable[[list[GroupKey]], None],
    ) -> None:
        self.kind = kind
        self.registry = registry
        self.convert = convert
        self.on_change = on_change

    def replace(self, items: list[T]) -> None:
        objects = [self.convert(item) for item in items]
        keep = {obj.key for obj in objects}
        changed: list[GroupKey] = []
        for key in [k for k in self.registry.objects if k.kind == self.kind and k not in keep]:
            changed += self.registry.delete_object(key)
        for obj in objects:
            changed += self.registry.set_object(obj)
        self.on_change(changed)

    def apply(self, event_type: str, item: T) -> None:
        obj = self.convert(item)
        if event_type == DELETED:
            self.on_change(self.registry.delete_object(ObjectKey(*obj.key)))
        else:
            self.on_change(self.registry.set_object(obj))
