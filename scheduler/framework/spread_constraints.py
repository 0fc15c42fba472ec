"""A pod's topology spread constraints, compiled (upstream's ``topologySpreadConstraint``):
the selector with ``matchLabelKeys`` ANDed in, and the defaults filled in (minDomains 1,
nodeAffinityPolicy Honor, nodeTaintsPolicy Ignore)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from scheduler.framework.labels import Selector, compile_selector, label_keys
from scheduler.model.objects import Pod, TopologySpreadConstraint

Action = Literal["DoNotSchedule", "ScheduleAnyway"]


class SpreadError(ValueError):
    """A constraint the API server should not have accepted."""


@dataclass(frozen=True, slots=True)
class SpreadConstraint:
    max_skew: int
    topology_key: str
    selector: Selector
    min_domains: int = 1
    honor_node_affinity: bool = True
    honor_node_taints: bool = False


def compile_constraints(
    pod: Pod, constraints: Iterable[TopologySpreadConstraint], action: Action
) -> list[SpreadConstraint]:
    """The pod's constraints with ``whenUnsatisfiable == action``; raises ``SpreadError``."""
    out = []
    labels = pod.metadata.labels
    for c in constraints:
        if c.when_unsatisfiable != action:
            continue
        try:
            selector = compile_selector(c.label_selector)
        except ValueError as exc:
            raise SpreadError(f"topologySpreadConstraints[{c.topology_key}]: {exc}") from None
        extra = label_keys(labels, c.match_label_keys)
        if extra:
            selector = selector.add(extra)
        out.append(
            SpreadConstraint(
                c.max_skew,
                c.topology_key,
                selector,
                c.min_domains if c.min_domains is not None else 1,
                c.node_affinity_policy != "Ignore",
                c.node_taints_policy == "Honor",
            )
        )
    return out
