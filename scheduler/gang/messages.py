"""What a gang waits for or why it cannot be placed, in words a user can act on."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from scheduler.framework.cycle import Feasibility
from scheduler.framework.diagnosis import count_reasons
from scheduler.framework.types import PodInfo, ResourceList
from scheduler.gang.model import GroupKey
from scheduler.gang.placement import DomainShortfall, GangPlacement
from scheduler.model.quantity import CPU, MEMORY, PODS, format_amount


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
    """Why the gang found no place, from the domain closest to holding it:

    - ``gang ns/train/workers needs 4 x {cpu: 2, nvidia.com/gpu: 1}; only 3 fit:
      5 nodes Insufficient nvidia.com/gpu`` (tried: the first member that found no
      node and why; ``only 3 of the first 4 fit`` when the trial stopped early)
    - ``gang ns/train/workers needs 4 x {cpu: 2, nvidia.com/gpu: 1}; short by 1
      nvidia.com/gpu (at most 3 fit)`` (not tried: the free capacity cannot hold it)
    - ``gang ns/train/workers needs 2000 x {cpu: 300m} in one rack domain; none of
      50 rack domains holds it: best rack r12: short by 46 cpu (at most 1846 fit)``
    """
    where = f" in one {topology_key} domain" if topology_key else ""
    if topology_key and attempt.domain is not None:
        where = f" in {topology_key} {attempt.domain}, where it runs"
    wanted = gang_shape(pods) if need == len(pods) else f"{need} of {gang_shape(pods)}"
    message = f"gang {key} needs {wanted}{where}"
    best = attempt.best_shortfall()
    if best is None:
        if attempt.nodes_considered == 0:
            return (
                message
                + "; only 0 fit: no nodes"
                + (f" carry the label {topology_key}" if topology_key else "")
            )
        return message + f"; only {len(attempt.placed)} fit"
    if topology_key and attempt.domain is None:
        count = len(attempt.shortfalls)
        plural = "s" if count != 1 else ""
        return (
            f"{message}; none of {count} {topology_key} domain{plural} holds it: "
            f"best {topology_key} {best.domain}: {shortfall(best, len(pods))}"
        )
    return f"{message}; {shortfall(best, len(pods))}"


def shortfall(s: DomainShortfall, members: int) -> str:
    """``only 3 fit: 5 nodes Insufficient cpu`` (a trial), ``short by 46 cpu (at most
    1846 fit)``, ``20 nodes didn't match Pod's node affinity/selector`` (no trial)."""
    if s.fit is not None:
        text = f"only {s.fit} fit"
        if s.tried < members:
            text = f"only {s.fit} of the first {s.tried} fit"
        if s.failure is not None and s.failure.reasons:
            return f"{text}: {node_reasons(s.failure)}"
        if s.failure is not None and s.failure.pre_filter_message:
            return f"{text}: {s.failure.pre_filter_message}"  # refused for every node
        return text
    if s.failure is not None and s.failure.reasons:
        return node_reasons(s.failure)
    if s.short:
        amounts = ", ".join(
            f"{format_amount(r, amount)} {r}" for r, amount in _resource_order(s.short)
        )
        return f"short by {amounts} (at most {s.at_most} fit)"
    return f"at most {s.at_most} fit: too little room left on each node"


def node_reasons(fit: Feasibility) -> str:
    """``5 nodes Insufficient cpu, 1 node had untolerated taint(s)``"""
    counts = count_reasons(fit.reasons)
    return ", ".join(
        sorted(
            f"{n} node{'s' if n != 1 else ''} {reason.removeprefix('node(s) ')}"
            for reason, n in counts.items()
        )
    )


def _resource_order(amounts: ResourceList) -> list[tuple[str, int]]:
    """cpu, memory, then the rest by name, pods last."""
    rank = {CPU: 0, MEMORY: 1, PODS: 3}
    return sorted(amounts.items(), key=lambda item: (rank.get(item[0], 2), item[0]))
