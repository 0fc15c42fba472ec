"""``policy/v1`` PodDisruptionBudgets, as much of them as preemption reads.

Preemption needs a budget's namespace, its pod selector, how many disruptions
it allows now and which pods the API server has already counted as disrupted
(upstream's ``filterPodsWithPDBViolation``); nothing else is declared.
"""

from __future__ import annotations

import msgspec

from scheduler.model.objects import ObjectMeta, _Obj


class PdbSelectorRequirement(_Obj):
    key: str
    operator: str  # In, NotIn, Exists, DoesNotExist
    values: list[str] = []


class PdbSelector(_Obj):
    """A label selector: ``{}`` selects everything, but a budget with an empty (or
    absent) selector matches no pod, as upstream treats it."""

    match_labels: dict[str, str] = {}
    match_expressions: list[PdbSelectorRequirement] = []


class PodDisruptionBudgetSpec(_Obj):
    selector: PdbSelector | None = None


class PodDisruptionBudgetStatus(_Obj):
    disruptions_allowed: int = 0
    disrupted_pods: dict[str, str] = {}
    """Pod name -> when the API server's eviction handler counted it."""


class PodDisruptionBudget(_Obj):
    metadata: ObjectMeta = msgspec.field(default_factory=ObjectMeta)
    spec: PodDisruptionBudgetSpec = msgspec.field(default_factory=PodDisruptionBudgetSpec)
    status: PodDisruptionBudgetStatus = msgspec.field(default_factory=PodDisruptionBudgetStatus)
