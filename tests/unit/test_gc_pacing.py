"""Long-lived objects leave the collector's full passes when many have piled up."""

from __future__ import annotations

import gc
from typing import Any

from scheduler.core.gc_pacing import GcPacer


def test_survivors_are_frozen_only_when_many_have_piled_up() -> None:
    try:
        pacer = GcPacer(freeze_at=10**9)
        pacer.tick()
        assert pacer.freezes == 0
        kept = [[i] for i in range(1000)]  # tracked objects that survive
        gc.collect()
        pacer.freeze_at = 100
        pacer.tick()
        assert pacer.freezes == 1 and gc.get_freeze_count() >= len(kept)
        assert len(gc.get_objects(2)) <= pacer.freeze_at, "the oldest generation is emptied"
    finally:
        gc.unfreeze()


def test_the_oldest_generation_is_counted_only_after_a_promoting_collection(
    monkeypatch: Any,
) -> None:
    walks = []
    real = gc.get_objects

    def counting(generation: int | None = None) -> list[Any]:
        walks.append(generation)
        return real(generation)

    monkeypatch.setattr(gc, "get_objects", counting)
    gc.disable()  # no automatic collection between the ticks
    try:
        pacer = GcPacer(freeze_at=10**9)
        pacer.tick()
        pacer.tick()  # nothing collected meanwhile: nothing can have reached generation 2
        assert walks == [2]
        gc.collect(1)
        pacer.tick()
        assert walks == [2, 2]
    finally:
        gc.enable()
