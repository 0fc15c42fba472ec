"""Watch events wait while a gang decision is in flight, then apply in arrival order."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

from scheduler.core.event_hold import EventHold


class Recorder:
    def __init__(self) -> None:
        self.seen: list[str] = []

    def replace(self, items: list[str]) -> None:
        self.seen.append(f"replace {','.join(items)}")

    def apply(self, event_type: str, obj: str) -> None:
        if obj == "bad":
            raise ValueError(obj)
        self.seen.append(f"{event_type} {obj}")


async def test_events_wait_during_a_decision_and_apply_in_order_after() -> None:
    hold = EventHold(slice_seconds=0.0)  # one event per turn: the loop runs in between
    nodes, pods = Recorder(), Recorder()
    node_handler, pod_handler = hold.wrap(nodes), hold.wrap(pods)
    node_handler.apply("ADDED", "n0")
    assert nodes.seen == ["ADDED n0"], "nothing in flight: applied at once"

    await hold.hold()
    node_handler.apply("MODIFIED", "n0")
    pod_handler.apply("ADDED", "p0")
    pod_handler.apply("ADDED", "bad")  # fails when applied; the rest still apply
    pod_handler.replace(["p0", "p1"])
    await asyncio.sleep(0)
    assert nodes.seen == ["ADDED n0"] and pods.seen == [], "applied under a decision"
    hold.release()
    node_handler.apply("DELETED", "n0")  # arrives while the backlog drains: after it
    await hold.hold()  # the next decision waits for everything received so far
    assert nodes.seen == ["ADDED n0", "MODIFIED n0", "DELETED n0"]
    assert pods.seen == ["ADDED p0", "replace p0,p1"]
    assert hold.most_pending == 5
    hold.release()
    assert hold.pending == 0


def test_without_a_loop_release_applies_at_once() -> None:
    hold = EventHold()
    recorder = Recorder()
    handler = hold.wrap(recorder)
    hold._held = True  # as hold() does, without a loop
    handler.apply("ADDED", "p0")
    assert recorder.seen == []
    hold.release()
    assert recorder.seen == ["ADDED p0"]


class SteppedRecorder(Recorder):
    """A handler whose relist comes in steps (as ``PodEvents.replace_steps``)."""

    def replace_steps(self, items: list[str]) -> Iterator[None]:
        for item in items:
            if item == "bad":
                raise ValueError(item)
            self.seen.append(f"listed {item}")
            yield


async def test_a_relist_in_steps_applies_a_slice_at_a_time_in_its_place() -> None:
    hold = EventHold(slice_seconds=0.0)  # one step per turn
    recorder = SteppedRecorder()
    handler = hold.wrap(recorder)
    handler.replace(["p0", "p1", "p2"])
    handler.apply("MODIFIED", "p1")  # arrives during the relist: after it
    await asyncio.sleep(0)
    assert recorder.seen == ["listed p0"], "the loop gets a turn between steps"
    await hold.drained()
    assert recorder.seen == ["listed p0", "listed p1", "listed p2", "MODIFIED p1"]
    handler.replace(["q0", "bad", "q1"])  # a failing relist is dropped, the rest go on
    handler.apply("ADDED", "p3")
    await hold.drained()
    assert recorder.seen[-2:] == ["listed q0", "ADDED p3"]
