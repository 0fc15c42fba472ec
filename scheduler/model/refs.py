"""Object references and API timestamps: plain values every layer may hold.

An ``ObjectRef`` names the object an Event or status write is about (a pod, a
Workload, a PodGroup); the gang model keeps one per group object and the cycles
build one per pod, so it lives here at the bottom rather than beside the
reporter that writes it (``scheduler.api.events``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime


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
