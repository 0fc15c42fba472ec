"""Object references and API timestamps: plain values every layer may hold.

An ``ObjectRef`` names the object an Event or status write is about (a pod, a
Workload, a PodGroup); the gang model keeps one per group object and the cycles
build one per pod, so it lives here at the bottom rather than beside the
reporter that writes it (``scheduler.api.events``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple


@dataclass(frozen=True, slots=True)
class ObjectRef:
    """The ``regarding`` object of an Event: enough to name it and to address it."""

    api_version: str
    kind: str
    namespace: str
    name: str
    uid: str

    @property
    def key(self) -> str:
        return f"{self.kind}/{self.namespace}/{self.name}"


def pod_ref(namespace: str, name: str, uid: str) -> ObjectRef:
    """``ObjectRef`` of a core/v1 Pod."""
    return ObjectRef("v1", "Pod", namespace, name, uid)


def now_micro() -> str:
    """Now as a MicroTime (``2026-01-02T03:04:05.123456Z``), as Events' ``eventTime`` wants."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def now_rfc3339() -> str:
    """Now as an RFC 3339 Time (``2026-01-02T03:04:05Z``), as conditions want."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class StatusApply(NamedTuple):
    """A server-side apply of a group object's status: where, what, and as whom.

    ``field_manager`` names the owner of the applied fields ("" for the reporter's own):
    entries of a list that one apply leaves out are removed only when the same manager
    owned them, so each gang's entry in our CRD's ``status.groups`` has a manager of its
    own and a report about one gang never deletes another's.
    """

    path: str
    body: dict[str, Any]
    field_manager: str = ""
