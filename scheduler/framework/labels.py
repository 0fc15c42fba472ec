"""Label selectors compiled once into small values that match label maps quickly.

Semantics are apimachinery's ``LabelSelectorAsSelector``: ``matchLabels`` and
``matchExpressions`` are ANDed; an empty selector (``{}``) selects everything, an absent
one selects nothing; ``NotIn`` and ``DoesNotExist`` also select objects without the key.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final, Literal

from scheduler.model.objects import LabelSelector

Operator = Literal["In", "NotIn", "Exists", "DoesNotExist"]
OPERATORS: Final = frozenset({"In", "NotIn", "Exists", "DoesNotExist"})


class SelectorError(ValueError):
    """A selector the API server should not have accepted (unknown operator, ...)."""


@dataclass(frozen=True, slots=True)
class Requirement:
    key: str
    operator: Operator
    values: frozenset[str] = frozenset()

    def matches(self, labels: Mapping[str, str]) -> bool:
        value = labels.get(self.key)
        operator = self.operator
        if operator == "In":
            return value is not None and value in self.values
        if operator == "NotIn":
            return value is None or value not in self.values
        if operator == "Exists":
            return value is not None
        return value is None


@dataclass(frozen=True, slots=True)
class Selector:
    requirements: tuple[Requirement, ...] = ()
    nothing: bool = False
    """True for an absent selector: it matches no labels at all."""
    guard_key: str | None = field(default=None, init=False, compare=False, repr=False)
    """The key of the first ``In`` requirement (None without one), with ``guard_values``
    its values: labels whose value for it is not among them cannot match, which hot loops
    over many pods check inline before calling ``matches`` (see ``may_match``)."""
    guard_values: frozenset[str] = field(default=frozenset(), init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        for requirement in self.requirements:
            if requirement.operator == "In":
                object.__setattr__(self, "guard_key", requirement.key)
                object.__setattr__(self, "guard_values", requirement.values)
                break

    def may_match(self, labels: Mapping[str, str]) -> bool:
        """False when ``labels`` certainly do not match (the ``In`` guard fails); True means
        ``matches`` decides. The inline form, for hot loops: ``key = s.guard_key;
        key is None or labels.get(key) in s.guard_values``."""
        key = self.guard_key
        return key is None or labels.get(key) in self.guard_values

    @property
    def empty(self) -> bool:
        """Selects everything (apimachinery's ``Selector.Empty()``)."""
        return not self.nothing and not self.requirements

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        if self.nothing:
            return False
        if labels is None:
            labels = {}
        # A plain loop: cheaper than all() over a generator, and this runs per pod per term.
        for requirement in self.requirements:  # noqa: SIM110
            if not requirement.matches(labels):
                return False
        return True

    def add(self, requirements: Iterable[Requirement]) -> Selector:
        """This selector ANDed with more requirements (nothing stays nothing)."""
        if self.nothing:
            return self
        return Selector((*self.requirements, *requirements))


EVERYTHING: Final = Selector()
NOTHING: Final = Selector(nothing=True)


def compile_selector(selector: LabelSelector | None) -> Selector:
    """Raises ``SelectorError`` on an unknown operator or a value list that does not fit it."""
    if selector is None:
        return NOTHING
    requirements = [Requirement(k, "In", frozenset((v,))) for k, v in selector.match_labels.items()]
    for expression in selector.match_expressions:
        operator = expression.operator
        if operator not in OPERATORS:
            raise SelectorError(f"{expression.key}: unknown operator {operator!r}")
        values = frozenset(expression.values)
        if operator in ("In", "NotIn") and not values:
            raise SelectorError(f"{expression.key}: {operator} needs values")
        if operator in ("Exists", "DoesNotExist") and values:
            raise SelectorError(f"{expression.key}: {operator} takes no values")
        requirements.append(Requirement(expression.key, operator, values))  # type: ignore[arg-type]
    return Selector(tuple(requirements))


def label_keys(
    labels: Mapping[str, str], match: Iterable[str], mismatch: Iterable[str] = ()
) -> list[Requirement]:
    """``matchLabelKeys`` / ``mismatchLabelKeys`` as requirements on the given (the incoming
    pod's) labels: ``key In (value)`` / ``key NotIn (value)``; keys it lacks are ignored."""
    out = [Requirement(k, "In", frozenset((labels[k],))) for k in match if k in labels]
    out += [Requirement(k, "NotIn", frozenset((labels[k],))) for k in mismatch if k in labels]
    return out
