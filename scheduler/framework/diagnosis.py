"""The "0/N nodes are available: ..." text kube-scheduler puts in a pod's
PodScheduled condition and FailedScheduling event."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

NO_NODES_AVAILABLE = "no nodes available to schedule pods"
"""Upstream's ErrNoNodesAvailable text, used as is when the cluster has no nodes."""


def count_reasons(reasons_per_node: Mapping[str, Sequence[str]]) -> Counter[str]:
    """How many nodes gave each reason."""
    counts: Counter[str] = Counter()
    for reasons in reasons_per_node.values():
        counts.update(reasons)
    return counts


def unschedulable_message(
    total_nodes: int, reasons_per_node: Mapping[str, Sequence[str]], pre_filter_message: str = ""
) -> str:
    """FitError's text, e.g. ``0/3 nodes are available: 2 Insufficient cpu, 1 node(s)
    had untolerated taint(s).``

    "<count> <reason>" entries are sorted as strings, as upstream sorts them (so
    "10 ..." comes before "2 ..."). When a pre-filter rejected the pod for every node,
    its message stands alone: ``0/3 nodes are available: workload-scheduler does not
    support PersistentVolumeClaim volumes yet.``
    """
    if total_nodes == 0:
        return NO_NODES_AVAILABLE
    message = f"0/{total_nodes} nodes are available:"
    if pre_filter_message:
        return f"{message} {pre_filter_message}."
    counts = count_reasons(reasons_per_node)
    histogram = sorted(f"{count} {reason}" for reason, count in counts.items())
    if histogram:
        message += f" {', '.join(histogram)}."
    return message
