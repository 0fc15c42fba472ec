"""NodePorts: a pod's host ports must be free on the node.

A port bound on 0.0.0.0 conflicts with the same protocol and port on any address,
and a port on a specific address conflicts with that address or 0.0.0.0.
"""

from __future__ import annotations

from typing import ClassVar, Final

from scheduler.framework.types import NodeInfo, PodInfo

REASON: Final = "node(s) didn't have free ports for the requested pod ports"
_REASONS: Final = (REASON,)
ANY_IP: Final = "0.0.0.0"


def conflicts(used: set[tuple[str, str, int]], ip: str, protocol: str, port: int) -> bool:
    if ip == ANY_IP:
        # Rare (only pods with host ports get here) and sets are small: a scan is fine.
        for _, used_protocol, used_port in used:
            if used_port == port and used_protocol == protocol:
                return True
        return False
    return (ANY_IP, protocol, port) in used or (ip, protocol, port) in used


class NodePorts:
    name: ClassVar[str] = "NodePorts"
    __slots__ = ()

    def filter(self, pod: PodInfo, node: NodeInfo) -> tuple[str, ...] | None:
        wanted = pod.host_ports
        if not wanted:
            return None
        used = node.used_ports
        if not used:
            return None
        for ip, protocol, port in wanted:
            if conflicts(used, ip, protocol, port):
                return _REASONS
        return None
