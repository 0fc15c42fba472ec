"""What the cycles need from the outside world: someone to bind, someone to tell.

The pod cycle and the gang cycle talk to the API server only through these two
protocols, so unit tests drive them with a scripted binder and a recording reporter
(``tests/unit/fakes.py``); ``scheduler.binder.binder.Binder`` and
``scheduler.api.events.Reporter`` are the real ones (checked at the bottom).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from scheduler.binder.binder import BindOutcome
from scheduler.model.objects import Pod
from scheduler.model.refs import ObjectRef, StatusApply


class Binder(Protocol):
    """Posts a pod's Binding and says how it went (outcomes as values, not exceptions)."""

    async def bind(self, pod: Pod, node_name: str) -> tuple[BindOutcome, str]:
        """The outcome and, when not bound, what the API server said."""
        ...


class Reporter(Protocol):
    """Takes Events and conditions to be written in the background; never blocks."""

    def event(
        self,
        ref: ObjectRef,
        reason: str,
        message: str,
        *,
        warning: bool = False,
        action: str = "Scheduling",
        pod_condition: tuple[str, str, str] | None = None,
        status_apply: StatusApply | None = None,
        delay: float = 0.0,
        related: ObjectRef | None = None,
    ) -> None:
        """An Event on ``ref`` (``related``: its secondary object); optionally a
        PodScheduled condition (status, reason, message) or a server-side apply of the
        object's status (path, body)."""
        ...

    def pod_unschedulable(
        self, ref: ObjectRef, message: str, reason: str = "Unschedulable", delay: float = 0.0
    ) -> None:
        """``FailedScheduling`` and ``PodScheduled=False`` with ``reason``."""
        ...

    def pod_scheduled(self, ref: ObjectRef, node: str) -> None:
        """``Scheduled``: ``Successfully assigned <ns>/<name> to <node>``."""
        ...


if TYPE_CHECKING:
    from scheduler.api import events
    from scheduler.binder import binder

    def _implements(real: binder.Binder, reporter: events.Reporter) -> tuple[Binder, Reporter]:
        return real, reporter  # mypy checks that the real ones satisfy the protocols
