"""nodeSelector and node affinity compiled into matchers, with kube-scheduler's semantics.

Selectors are compiled once per pod (``compile_required`` / ``compile_preferred``,
stored on ``PodInfo`` by ``make_pod_info``) so that the per-node work is a few dict
lookups. The NodeAffinity plugin runs them; they live here, beside ``podinfo``,
because building a pod's facts must not reach up into a plugin (upstream keeps
these rules in component-helpers' ``nodeaffinity`` for the same reason).

Upstream rules kept here:

* nodeSelector: every key must be present with exactly that value;
* required affinity: terms are ORed, a term's expressions and fields are ANDed; a
  required affinity with no terms matches no node, and an empty term (no expressions,
  no fields) or one that does not parse (e.g. ``In`` with no values, ``Gt`` with a
  non-integer) matches nothing;
* ``matchFields`` only knows ``metadata.name`` with ``In``/``NotIn`` and exactly one value;
* preferred terms with weight 0 or an empty preference never count.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Final

from scheduler.model.objects import (
    Node,
    NodeSelector,
    NodeSelectorRequirement,
    NodeSelectorTerm,
    Pod,
)

_IN, _NOT_IN, _EXISTS, _DOES_NOT_EXIST, _GT, _LT = range(6)
_OPERATORS: Final = {
    "In": _IN,
    "NotIn": _NOT_IN,
    "Exists": _EXISTS,
    "DoesNotExist": _DOES_NOT_EXIST,
    "Gt": _GT,
    "Lt": _LT,
}
# strconv.ParseInt(s, 10, 64): optional sign, ASCII digits, nothing else (Python's
# int() would also take spaces, underscores and non-ASCII digits).
_INT64: Final = re.compile(r"[+-]?[0-9]+")
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_NAME_FIELD: Final = "metadata.name"


def _parse_int64(text: str) -> int | None:
    if _INT64.fullmatch(text) is None:
        return None
    value = int(text)
    return value if _INT64_MIN <= value <= _INT64_MAX else None


class _Requirement:
    """One label expression, validated the way labels.NewRequirement validates it."""

    __slots__ = ("bound", "key", "op", "values")

    def __init__(self, key: str, op: int, values: frozenset[str], bound: int) -> None:
        self.key = key
        self.op = op
        self.values = values
        self.bound = bound

    def matches(self, labels: Mapping[str, str]) -> bool:
        value = labels.get(self.key)
        op = self.op
        if op == _IN:
            return value is not None and value in self.values
        if op == _NOT_IN:
            return value is None or value not in self.values
        if op == _EXISTS:
            return value is not None
        if op == _DOES_NOT_EXIST:
            return value is None
        if value is None:
            return False
        # A label that is not an integer fails Gt/Lt rather than erroring.
        number = _parse_int64(value)
        if number is None:
            return False
        return number > self.bound if op == _GT else number < self.bound


def _requirement(expr: NodeSelectorRequirement) -> _Requirement | None:
    op = _OPERATORS.get(expr.operator)
    if op is None:
        return None
    values = frozenset(expr.values)
    if op in (_IN, _NOT_IN):
        return _Requirement(expr.key, op, values, 0) if values else None
    if op in (_EXISTS, _DOES_NOT_EXIST):
        return None if values else _Requirement(expr.key, op, values, 0)
    if len(expr.values) != 1:
        return None
    bound = _parse_int64(expr.values[0])
    return None if bound is None else _Requirement(expr.key, op, values, bound)


class _Term:
    """A parsed NodeSelectorTerm: label requirements and metadata.name conditions."""

    __slots__ = ("fields", "labels")

    def __init__(
        self, labels: tuple[_Requirement, ...], fields: tuple[tuple[bool, str], ...]
    ) -> None:
        self.labels = labels
        self.fields = fields  # (must equal?, node name)

    def matches(self, node: Node) -> bool:
        meta = node.metadata
        labels = meta.labels
        for requirement in self.labels:
            if not requirement.matches(labels):
                return False
        # Upstream skips field selectors for a node without fields (no name).
        name = meta.name
        if name:
            for equal, wanted in self.fields:
                if (name == wanted) != equal:
                    return False
        return True


def _term(term: NodeSelectorTerm) -> _Term | None:
    """The parsed term, or None when it can match nothing (empty or invalid)."""
    if not term.match_expressions and not term.match_fields:
        return None
    labels: list[_Requirement] = []
    for expr in term.match_expressions:
        requirement = _requirement(expr)
        if requirement is None:
            return None
        labels.append(requirement)
    fields: list[tuple[bool, str]] = []
    for expr in term.match_fields:
        if expr.key != _NAME_FIELD or len(expr.values) != 1:
            return None
        if expr.operator == "In":
            fields.append((True, expr.values[0]))
        elif expr.operator == "NotIn":
            fields.append((False, expr.values[0]))
        else:
            return None
    return _Term(tuple(labels), tuple(fields))


class _RequiredMatcher:
    """nodeSelector AND (any required term); ``terms is None`` means no affinity."""

    __slots__ = ("selector", "terms")

    def __init__(
        self, selector: tuple[tuple[str, str], ...], terms: tuple[_Term, ...] | None
    ) -> None:
        self.selector = selector
        self.terms = terms

    def __call__(self, node: Node) -> bool:
        labels = node.metadata.labels
        for key, value in self.selector:
            if labels.get(key) != value:
                return False
        terms = self.terms
        if terms is None:
            return True
        # Plain loops rather than any(): these run per pod x node and a generator
        # costs more than the work it wraps.
        for term in terms:  # noqa: SIM110
            if term.matches(node):
                return True
        return False


class _PreferenceScorer:
    __slots__ = ("terms",)

    def __init__(self, terms: tuple[tuple[int, _Term], ...]) -> None:
        self.terms = terms

    def __call__(self, node: Node) -> int:
        total = 0
        for weight, term in self.terms:
            if term.matches(node):
                total += weight
        return total


def _match_all(node: Node) -> bool:
    return True


def _prefer_none(node: Node) -> int:
    return 0


def compile_required(pod: Pod) -> Callable[[Node], bool]:
    """A predicate for nodeSelector and required node affinity together."""
    spec = pod.spec
    affinity = spec.affinity
    node_affinity = affinity.node_affinity if affinity is not None else None
    required = (
        node_affinity.required_during_scheduling_ignored_during_execution
        if node_affinity is not None
        else None
    )
    if not spec.node_selector and required is None:
        return _match_all
    terms: tuple[_Term, ...] | None = None
    if required is not None:
        parsed = (_term(t) for t in required.node_selector_terms)
        terms = tuple(t for t in parsed if t is not None)
    return _RequiredMatcher(tuple(spec.node_selector.items()), terms)


def compile_preferred(pod: Pod) -> Callable[[Node], int]:
    """A function giving the summed weight of the preferred terms a node matches."""
    affinity = pod.spec.affinity
    node_affinity = affinity.node_affinity if affinity is not None else None
    if node_affinity is None:
        return _prefer_none
    terms: list[tuple[int, _Term]] = []
    for preferred in node_affinity.preferred_during_scheduling_ignored_during_execution:
        if preferred.weight == 0:
            continue
        term = _term(preferred.preference)
        if term is not None:
            terms.append((preferred.weight, term))
    return _PreferenceScorer(tuple(terms)) if terms else _prefer_none


def compile_label_terms(selector: NodeSelector) -> Callable[[Mapping[str, str]], bool]:
    """A predicate over a node's labels alone for a NodeSelector (a PV's node affinity:
    upstream checks it against a node that has only labels, so ``matchFields`` are
    skipped); terms that cannot match anything are dropped, no terms match nothing."""
    parsed = (_term(t) for t in selector.node_selector_terms)
    terms = tuple(t.labels for t in parsed if t is not None)

    def matches(labels: Mapping[str, str]) -> bool:
        return any(all(r.matches(labels) for r in term) for term in terms)

    return matches
