"""Long-lived objects leave the collector's full passes when many have piled up."""

from __future__ import annotations

import gc

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
