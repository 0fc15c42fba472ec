"""PodDisruptionBudgets, kept in step by their watch, compiled for preemption."""

from __future__ import annotations

from scheduler.framework.preemption import Budget, compile_budget
from scheduler.model.policy import PodDisruptionBudget


class DisruptionBudgets:
    """The budgets preemption consults; a watch handler (``replace``/``apply``)."""

    def __init__(self) -> None:
        self._budgets: dict[str, Budget] = {}
        self._list: list[Budget] | None = None

    def budgets(self) -> list[Budget]:
        if self._list is None:
            self._list = list(self._budgets.values())
        return self._list

    def replace(self, items: list[PodDisruptionBudget]) -> None:
        self._budgets = {pdb.metadata.uid: compile_budget(pdb) for pdb in items}
        self._list = None

    def apply(self, event_type: str, obj: PodDisruptionBudget) -> None:
        if event_type == "DELETED":
            self._budgets.pop(obj.metadata.uid, None)
        else:
            self._budgets[obj.metadata.uid] = compile_budget(obj)
        self._list = None
