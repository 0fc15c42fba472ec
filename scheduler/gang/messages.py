"""What a gang waits for or why it cannot be placed, in words a user can act on."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from scheduler.framework.diagnosis import count_reasons
from scheduler.framework.types import PodInfo, ResourceList
from scheduler.gang.model import GroupKey
from scheduler.gang.placement import GangPlacement
from scheduler.model.quantity import format_amount


def shape(requests: ResourceList) -> str:
    """``{cpu: 2, nvidia.com/gpu: 1}``"""
    parts = [
        f"{name}: {format_amount(name, amount)}"
        for name, amount in sorted(requests.items())
        if amount > 0
    ]
    return "{" + ", ".join(parts) + "}"


def gang_shape(pods: Sequence[PodInfo]) -> str:
    """``4 x {cpu: 2}`` or ``2 x {cpu: 2} + 1 x {cpu: 8}``"""
    counts = Counter(shape(p.requests) for p in pods)
    return " + ".join(f"{n} x {s}" for s, n in counts.most_common())


def cannot_place(
    key: GroupKey,
    pods: Sequence[PodInfo],
    need: int,
    attempt: GangPlacement,
    topology_key: str | None,
) -> str:
    """``gang ns/train/workers needs 4 x {cpu: 2, nvidia.com/gpu: 1}; only 3 fit:
    5 nodes Insufficient nvidia.com/gpu``"""
    where = f" in one {topology_key} domain" if topology_key else ""
    wanted = gang_shape(pods) if need == len(pods) else f"{need} of {gang_shape(pods)}"
    message = f"gang {key} needs {wanted}{where}; only {len(attempt.placed)} fit"
    if attempt.failure is not None and attempt.failure.reasons:
        counts = count_reasons(attempt.failure.reasons)
        reasons = sorted(
            f"{n} node{'s' if n != 1 else ''} {reason.removeprefix('node(s) ')}"
            for reason, n in counts.items()
        )
        message += ": " + ", ".join(reasons)
    elif attempt.failure is not None and attempt.failure.pre_filter_message:
        message += ": " + attempt.failure.pre_filter_message
    elif attempt.nodes_considered == 0:
        message += ": no nodes" + (f" carry the label {topology_key}" if topology_key else "")
    return message
