"""PriorityClass names to values, for groups that name a class instead of a number.

Pods never need this: the API server's Priority admission writes ``spec.priority``
from ``spec.priorityClassName`` when a pod is created. Our Workload CRD's
``priorityClassName`` has no admission to resolve it, and a PodGroup may name a class
without a ``priority`` (a cluster whose admission does not fill it in), so the
scheduler resolves those names itself, from a watch of ``scheduling.k8s.io/v1``
PriorityClasses, as admission would: the two system classes first, then the watched
ones. A PriorityClass's ``value`` cannot change, so a name resolves the same way for as
long as its class exists.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from scheduler.model.objects import PriorityClass

SYSTEM_CLASSES: Final = {
    "system-cluster-critical": 2_000_000_000,
    "system-node-critical": 2_000_001_000,
}
"""Upstream's ``SystemPriorityClasses`` (``pkg/apis/scheduling``), known without a watch."""


class PriorityClasses:
    """Class name -> value; a watch handler (``replace``/``apply``)."""

    def __init__(self) -> None:
        self._values: dict[str, int] = {}
        self.on_new: Callable[[], object] = lambda: None
        """Called when a class appears (gangs that waited for it may preempt now)."""

    def value(self, name: str) -> int | None:
        """The class's value, or None when no class of that name exists (yet)."""
        system = SYSTEM_CLASSES.get(name)
        return system if system is not None else self._values.get(name)

    def replace(self, items: list[PriorityClass]) -> None:
        old = self._values
        self._values = {pc.metadata.name: pc.value for pc in items}
        if self._values.keys() - old.keys():
            self.on_new()

    def apply(self, event_type: str, obj: PriorityClass) -> None:
        if event_type == "DELETED":
            self._values.pop(obj.metadata.name, None)
        else:
            new = obj.metadata.name not in self._values
            self._values[obj.metadata.name] = obj.value
            if new:
                self.on_new()
