"""Keeping Python's cyclic garbage collector from stalling the event loop.

CPython's collector runs a full (generation 2) pass every so often, and a full pass
walks every container object the process still tracks: with the cache of a cluster
in memory (nodes, pods, their decoded structs) that is tens of thousands of objects
per thousand pods, and one pass held the loop for 75 to 250 ms while a 2,000-pod gang
was bound (1,000 nodes, 3,000 pods). Nothing else on the loop runs meanwhile.

What lives long here (the cache's objects) is freed by reference counting when it
goes; the cyclic collector is needed for short-lived cycles (tasks and their
exceptions, aiohttp internals), which die young. So the objects that survived a while
are moved out of the collector's sight (``gc.freeze``): once when the caches are
synced, then whenever the oldest generation holds more than ``FREEZE_AT`` objects
(looked at once a second by housekeeping, counted only after a collection that can
have moved objects there; a young-generation pass, ``gc.collect(1)``,
first). A full pass then walks at most about that many objects plus what arrived
since the last check: 20,000 objects are 10-40 ms on this project's test machine.

The price: a cycle among frozen objects that later becomes garbage is not reclaimed
(reference counting frees the rest). The start-up freeze (``App.run``) already takes
this trade for modules and settings; this extends it to the cache's long-lived objects.
"""

from __future__ import annotations

import gc
from typing import Final

FREEZE_AT: Final = 20_000
"""Objects in the oldest generation above which they are frozen."""


class GcPacer:
    """Freezes long-lived objects when there are many; ``tick`` from housekeeping."""

    def __init__(self, freeze_at: int = FREEZE_AT) -> None:
        self.freeze_at = freeze_at
        self.freezes = 0
        self._seen: int | None = None

    def freeze(self) -> None:
        """Move every object tracked now out of the collector's full passes."""
        gc.collect(1)
        gc.freeze()
        self.freezes += 1

    def tick(self) -> None:
        """Freeze when the oldest generation holds more than ``freeze_at`` objects.

        Objects reach the oldest generation only through a collection of the middle one, so
        it is counted (a walk of up to ``freeze_at`` objects) only after such a collection:
        an idle scheduler has none for many seconds."""
        collections = _promoting_collections()
        if collections == self._seen:
            return
        self._seen = collections
        if len(gc.get_objects(2)) > self.freeze_at:
            self.freeze()


def _promoting_collections() -> int:
    """Collections so far that can have moved objects into the oldest generation."""
    stats = gc.get_stats()
    return int(stats[1]["collections"]) + int(stats[2]["collections"])
