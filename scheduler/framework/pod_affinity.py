"""A pod's inter-pod affinity terms, compiled once (upstream's ``AffinityTerm`` in
``PodInfo``).

A term selects pods by labels within a set of namespaces: those listed, or the pod's own
namespace when neither ``namespaces`` nor ``namespaceSelector`` is given, or any namespace
whose labels the ``namespaceSelector`` selects. ``matchLabelKeys`` and
``mismatchLabelKeys`` are ANDed into the label selector with the pod's own label values
(the API server does the same when the pod is created, so doing it again changes nothing).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from scheduler.framework.labels import NOTHING, Selector, compile_selector, label_keys
from scheduler.model.objects import Pod, PodAffinity, PodAffinityTerm


@dataclass(frozen=True, slots=True)
class AffinityTerm:
    namespaces: frozenset[str]
    namespace_selector: Selector
    selector: Selector
    topology_key: str
    weight: int = 0
    """For preferred terms; 0 for required ones."""

    def matches(self, pod: Pod, namespace_labels: Mapping[str, str] | None) -> bool:
        """Whether ``pod`` (whose namespace carries ``namespace_labels``) is selected."""
        meta = pod.metadata
        if meta.namespace in self.namespaces or self.namespace_selector.matches(namespace_labels):
            return self.selector.matches(meta.labels)
        return False

    def with_namespaces(self, names: Mapping[str, Mapping[str, str]]) -> AffinityTerm:
        """The namespace selector unrolled into names (for the incoming pod's terms, so that
        matching existing pods needs no namespace lookup); an empty one, which selects every
        namespace, is kept as is."""
        if self.namespace_selector.empty or self.namespace_selector.nothing:
            return self
        chosen = {n for n, labels in names.items() if self.namespace_selector.matches(labels)}
        return AffinityTerm(
            self.namespaces | chosen, NOTHING, self.selector, self.topology_key, self.weight
        )


@dataclass(frozen=True, slots=True)
class PodAffinityTerms:
    required_affinity: tuple[AffinityTerm, ...] = ()
    required_anti_affinity: tuple[AffinityTerm, ...] = ()
    preferred_affinity: tuple[AffinityTerm, ...] = ()
    preferred_anti_affinity: tuple[AffinityTerm, ...] = ()

    scores_others: bool = field(default=False, init=False, compare=False, repr=False)
    """Whether these terms (of an existing pod) add to other pods' scores: required
    affinity (hardPodAffinityWeight) and preferred terms do, required anti-affinity alone
    does not."""

    def __post_init__(self) -> None:
        scores = bool(
            self.required_affinity or self.preferred_affinity or self.preferred_anti_affinity
        )
        object.__setattr__(self, "scores_others", scores)


def _term(pod: Pod, term: PodAffinityTerm, weight: int = 0) -> AffinityTerm:
    selector = compile_selector(term.label_selector)
    extra = label_keys(pod.metadata.labels, term.match_label_keys, term.mismatch_label_keys)
    if extra:
        selector = selector.add(extra)
    if not term.namespaces and term.namespace_selector is None:
        namespaces = frozenset((pod.metadata.namespace,))
    else:
        namespaces = frozenset(term.namespaces)
    return AffinityTerm(
        namespaces, compile_selector(term.namespace_selector), selector, term.topology_key, weight
    )


def _required(pod: Pod, affinity: PodAffinity | None) -> tuple[AffinityTerm, ...]:
    if affinity is None:
        return ()
    return tuple(
        _term(pod, t) for t in affinity.required_during_scheduling_ignored_during_execution
    )


def _preferred(pod: Pod, affinity: PodAffinity | None) -> tuple[AffinityTerm, ...]:
    if affinity is None:
        return ()
    return tuple(
        _term(pod, w.pod_affinity_term, w.weight)
        for w in affinity.preferred_during_scheduling_ignored_during_execution
        if w.weight
    )


def compile_pod_affinity(pod: Pod) -> PodAffinityTerms | None:
    """None when the pod has no inter-pod affinity at all (most pods).

    Raises ``SelectorError`` on a malformed selector.
    """
    affinity = pod.spec.affinity
    if affinity is None or (affinity.pod_affinity is None and affinity.pod_anti_affinity is None):
        return None
    terms = PodAffinityTerms(
        _required(pod, affinity.pod_affinity),
        _required(pod, affinity.pod_anti_affinity),
        _preferred(pod, affinity.pod_affinity),
        _preferred(pod, affinity.pod_anti_affinity),
    )
    if terms == PodAffinityTerms():
        return None
    return terms
