"""A gang member's turn on the loop: the pass yields, watch events wait for its decision,
and an unplaceable gang stays parked until an event could make it fit."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
from factories import make_node, make_pod

from scheduler.api.sources.policies import workload_object
from scheduler.api.sources.shapes import Workload
from scheduler.binder.binder import BindOutcome
from scheduler.cache.cluster_cache import ClusterCache
from scheduler.core.event_handlers import NodeEvents, PodEvents
from scheduler.core.scheduler import Scheduler
from scheduler.framework.cycle import Profile
from scheduler.gang.model import CRD_WORKLOAD
from scheduler.gang.registry import GangRegistry
from scheduler.metrics import Metrics
from scheduler.model.objects import Node, Pod
from scheduler.queue.scheduling_queue import UNSCHEDULABLE, SchedulingQueue

NAME = "workload-scheduler"
LABELS = {"workload-scheduler.io/workload": "train", "workload-scheduler.io/pod-group": "g"}


class Binder:
    def __init__(self) -> None:
        self.bound: dict[str, str] = {}

    async def bind(self, pod: Pod, node_name: str) -> tuple[BindOutcome, str]:
        self.bound[pod.metadata.name] = node_name
        return BindOutcome.BOUND, ""


class Reporter:
    def __init__(self) -> None:
        self.messages: list[str] = []

    def event(self, ref: Any, reason: str, message: str, **_: Any) -> None:
        self.messages.append(f"{reason}: {message}")

    def pod_unschedulable(self, ref: Any, message: str, reason: str = "", delay: float = 0) -> None:
        self.messages.append(message)

    def pod_scheduled(self, ref: Any, node: str) -> None:
        pass


class World:
    """A scheduler wired as ``App`` wires it (watch handlers behind the hold), no API."""

    def __init__(self, members: int, cpu: str) -> None:
        self.cache = ClusterCache()
        self.gangs = GangRegistry()
        self.queue = SchedulingQueue(gate=self.gangs.gate)
        self.binder, self.reporter = Binder(), Reporter()
        self.scheduler = Scheduler(
            name=NAME,
            cache=self.cache,
            queue=self.queue,
            profile=Profile.default(),
            binder=self.binder,
            reporter=self.reporter,
            metrics=Metrics(),
            gangs=self.gangs,
            seed=1,
        )
        self.scheduler.gang_cycle.yield_every = 0.0  # hand the loop back after every step
        hold = self.scheduler.hold
        self.nodes = hold.wrap(NodeEvents(self.cache, self.queue))
        pod_events = PodEvents(NAME, self.cache, self.queue, lambda p, m: None, lambda u: None)
        pod_events.gangs = self.gangs
        self.pods = hold.wrap(pod_events)
        for r in range(3):
            for i in range(4):
                self.nodes.apply("ADDED", self.node(f"r{r}-n{i}", r))
        self.gangs.set_object(
            workload_object(
                msgspec.convert(
                    {
                        "metadata": {"name": "train", "namespace": "ns"},
                        "spec": {
                            "podGroups": [
                                {
                                    "name": "g",
                                    "policy": {"gang": {"minCount": members}},
                                    "schedulingConstraints": {"topology": [{"key": "rack"}]},
                                }
                            ]
                        },
                    },
                    Workload,
                ),
                kind=CRD_WORKLOAD,
                api_version="workload-scheduler.io/v1alpha1",
            )
        )
        for i in range(members):
            self.pods.apply(
                "ADDED",
                make_pod(f"w{i}", namespace="ns", cpu=cpu, labels=LABELS, schedulerName=NAME),
            )

    @staticmethod
    def node(name: str, rack: int, cpu: str = "4") -> Node:
        return make_node(name, cpu=cpu, labels={"rack": f"r{rack}"})


async def run_until(world: World, done: Any, timeout: float = 10.0) -> None:
    task = asyncio.create_task(world.scheduler.run())
    try:
        async with asyncio.timeout(timeout):
            while not done():  # noqa: ASYNC110 - polling a condition is the point
                await asyncio.sleep(0)
    finally:
        task.cancel()


async def test_watch_events_wait_for_the_gang_decision_then_apply() -> None:
    world = World(members=12, cpu="1")
    seen_during: list[bool] = []

    async def meddle() -> None:
        # While the pass runs (held), a node of every rack goes away: not under it.
        while not world.scheduler.hold.held:  # noqa: ASYNC110
            await asyncio.sleep(0)
        for r in range(3):
            world.nodes.apply("DELETED", World.node(f"r{r}-n0", r))
        seen_during.append(all(world.cache.node(f"r{r}-n0") is not None for r in range(3)))

    meddler = asyncio.create_task(meddle())
    await run_until(world, lambda: len(world.binder.bound) == 12 and meddler.done())
    assert seen_during == [True], "the cache changed under the gang's decision"
    assert len({node.split("-")[0] for node in world.binder.bound.values()}) == 1
    await asyncio.sleep(0.05)  # the held events drain after the decision
    assert all(world.cache.node(f"r{r}-n0") is None for r in range(3))


async def test_an_unplaceable_gang_waits_for_an_event_that_could_make_it_fit() -> None:
    world = World(members=20, cpu="1")  # 16 cpu per rack: short by 4 everywhere
    # The turn is over (members parked, held events released): the failed pass hands the
    # loop back while it parks thousands of members.
    await run_until(
        world,
        lambda: len(world.queue.pods_in(UNSCHEDULABLE)) == 20 and not world.scheduler.hold.held,
    )
    assert any(
        "best rack r0: short by 4 cpu (at most 16 fit)" in m for m in world.reporter.messages
    )
    # A small pod finishing in r0 frees 1 cpu: not enough, the gang stays parked.
    small = make_pod("small", namespace="other", cpu="1", node_name="r0-n1")
    world.pods.apply("ADDED", small)
    world.pods.apply("DELETED", small)
    assert len(world.queue.pods_in(UNSCHEDULABLE)) == 20
    # A node joins r1: now it might fit; the members move on (to back-off) and bind.
    world.nodes.apply("ADDED", World.node("r1-n4", 1))
    assert not world.queue.pods_in(UNSCHEDULABLE)
    await run_until(world, lambda: len(world.binder.bound) == 20, timeout=30)
    assert {node.split("-")[0] for node in world.binder.bound.values()} == {"r1"}


async def test_waiting_members_are_told_the_current_count_once_a_second() -> None:
    """A member's arrival re-checks only its own gate (not every sibling's: O(members^2) for
    a big gang arriving); housekeeping's recount then tells the waiting siblings the count."""
    told: dict[str, str | None] = {}
    gangs = GangRegistry()
    queue = SchedulingQueue(
        gate=gangs.gate, on_gated=lambda qp, m: told.__setitem__(qp.info.pod.metadata.name, m)
    )
    events = PodEvents(NAME, ClusterCache(), queue, lambda p, m: None, lambda u: None, gangs)
    gangs.set_object(
        workload_object(
            msgspec.convert(
                {
                    "metadata": {"name": "train", "namespace": "ns"},
                    "spec": {"podGroups": [{"name": "g", "policy": {"gang": {"minCount": 4}}}]},
                },
                Workload,
            ),
            kind=CRD_WORKLOAD,
            api_version="workload-scheduler.io/v1alpha1",
        )
    )
    for i in range(2):
        events.apply("ADDED", make_pod(f"w{i}", namespace="ns", labels=LABELS, schedulerName=NAME))
    assert told["w1"] is not None and "2 of 4 pods exist" in told["w1"]
    assert told["w0"] is not None and "1 of 4 pods exist" in told["w0"]
    await events.recount_waiting()
    assert "2 of 4 pods exist" in told["w0"]
    told.clear()
    await events.recount_waiting()  # nothing changed since: nobody is told again
    assert told == {}
