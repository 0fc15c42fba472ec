"""Which cluster events can make an unplaceable gang fit (no futile retries).

A gang that found no place is parked with one ``GangRetryHint`` shared by its members
(``SchedulingQueue.requeue_unschedulable``). The hint holds what each domain was short
of (``DomainShortfall``) and says yes to:

- any node event (added, changed in what scheduling reads, relisted): a node may
  have come, grown, lost a taint or gained a label;
- a pod gone (deleted, finished, an assumption forgotten) from a node of a domain
  that may use it, once the capacity given back there since the failure covers
  what the domain was short of (every resource, pod slots included); in a domain
  that had the capacity but not the fit (fragmented, ports), any pod gone;
- anything it cannot judge (an event without node or amounts, a domain it never
  saw).

It says no to a pod gone from a node outside every domain (no topology label), from
a domain whose nodes the gang may not use at all (taints, selector: freeing capacity
does not change that), or too small to close a domain's gap. As kube-scheduler's
QueueingHints, a yes only moves the members to back-off: the gang's back-off still
applies, and the retry is a full pass against the cache of the moment.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from scheduler.gang.placement import DomainShortfall, GangPlacement
from scheduler.queue.scheduling_queue import ClusterEvent

POD_GONE_EVENTS = frozenset({"AssignedPodDelete", "AssumedPodForgotten", "AssumedPodExpired"})
"""Events that give capacity back on one node."""


class GangRetryHint:
    """A ``RetryHint`` for the members of one gang after one failed pass."""

    __slots__ = ("_answer", "_domain_of", "_freed", "_last", "_only", "_short")

    def __init__(
        self, attempt: GangPlacement, domain_of: Callable[[str], str | None] | None
    ) -> None:
        """``domain_of`` maps a node name to its domain (None: in none); None without a
        topology key (the whole cluster is the one domain)."""
        self._short: dict[str | None, DomainShortfall] = {s.domain: s for s in attempt.shortfalls}
        self._only = attempt.domain
        """The domain the gang runs in (its other members), if any: the rest do not count."""
        self._domain_of = domain_of
        self._freed: dict[str | None, Counter[str]] = {}
        self._last: ClusterEvent | None = None
        self._answer = False

    def __call__(self, event: ClusterEvent) -> bool:
        # Members share this object and each is asked: count an event once.
        if event is self._last:
            return self._answer
        self._last = event
        self._answer = self._could_fit(event)
        return self._answer

    def _could_fit(self, event: ClusterEvent) -> bool:
        if event.name not in POD_GONE_EVENTS or event.node is None or event.freed is None:
            return True
        domain = self._domain_of(event.node) if self._domain_of is not None else None
        if self._domain_of is not None and (
            domain is None or (self._only is not None and domain != self._only)
        ):
            return False  # not in any domain, or not in the one the gang runs in
        shortfall = self._short.get(domain)
        if shortfall is None:
            return True
        if shortfall.usable == 0:
            return False
        if not shortfall.short:
            return True
        freed = self._freed.setdefault(domain, Counter())
        freed.update(event.freed)
        return all(freed[resource] >= amount for resource, amount in shortfall.short.items())
