"""The gang cycle with a scripted binder and a recording reporter: placing a whole gang,
binding it, repairing a member whose bind failed, and what the group object is told."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from factories import make_node
from fakes import RETRY_500, Cycles, ScriptedBinder, pod

from scheduler.api.sources.policies import workload_object
from scheduler.api.sources.shapes import Workload
from scheduler.binder.binder import BindOutcome
from scheduler.core import gang_cycle
from scheduler.gang.model import (
    CRD_GROUP,
    CRD_VERSION,
    CRD_WORKLOAD,
    LABEL_POD_GROUP,
    LABEL_WORKLOAD,
    GroupObject,
)
from scheduler.model.objects import Node, Pod

GANG = "ns/train/workers"
TIMEOUTS = "workload_scheduler_gang_timeouts_total"
PODGROUP_ATTEMPTS = "scheduler_podgroup_schedule_attempts_total"


def train(min_count: int, topology_key: str | None = None) -> GroupObject:
    """Our CRD Workload ``ns/train`` with one gang ``workers`` (its API has status)."""
    entry: dict[str, Any] = {"name": "workers", "policy": {"gang": {"minCount": min_count}}}
    if topology_key:
        entry["schedulingConstraints"] = {"topology": [{"key": topology_key}]}
    wl = msgspec.convert(
        {
            "metadata": {"name": "train", "namespace": "ns", "uid": "uid-train"},
            "spec": {"podGroups": [entry]},
        },
        Workload,
    )
    api = f"{CRD_GROUP}/{CRD_VERSION}"
    return workload_object(wl, kind=CRD_WORKLOAD, api_version=api, resource=f"/apis/{api}")


def member(name: str, cpu: str = "1", **kwargs: Any) -> Pod:
    labels = {LABEL_WORKLOAD: "train", LABEL_POD_GROUP: "workers"}
    return pod(name, cpu=cpu, labels=labels, **kwargs)


def members(count: int, cpu: str = "1") -> list[Pod]:
    return [member(f"w{i}", cpu) for i in range(count)]


def racks(**sizes: int) -> list[Node]:
    """``racks(a=2, b=3)``: nodes a0, a1 labelled rack=a and b0..b2 labelled rack=b, 1 cpu each."""
    return [
        make_node(f"{rack}{i}", cpu="1", labels={"rack": rack})
        for rack, count in sizes.items()
        for i in range(count)
    ]


def group_events(cycles: Cycles) -> list[tuple[str, str]]:
    return [(r.reason, r.message) for r in cycles.reporter.about("train")]


def condition(cycles: Cycles, reason: str) -> dict[str, Any] | None:
    """The status entry written with the group's ``reason`` event (None: none written)."""
    [report] = [r for r in cycles.reporter.about("train") if r.reason == reason]
    if report.status_apply is None:
        return None
    path, body = report.status_apply.path, report.status_apply.body
    assert path == f"/apis/{CRD_GROUP}/{CRD_VERSION}/namespaces/ns/workloads/train/status"
    [entry] = body["status"]["groups"]
    return dict(entry)


async def test_gang_is_placed_bound_and_reported_on_the_group() -> None:
    cycles = Cycles([make_node(f"n{i}", cpu="2") for i in range(3)], groups=[train(3)])
    cycles.add(*members(3))
    await cycles.schedule_next()  # one member's turn places the whole gang
    assert sorted(cycles.reporter.scheduled()) == ["w0", "w1", "w2"]
    assert len(cycles.binder.calls) == 3
    assert cycles.queue.pods_in_any() == []
    assert group_events(cycles) == [
        ("GangAdmitted", f"gang {GANG}: 3 pods placed; binding, deadline 300s"),
        ("Scheduled", f"gang {GANG}: all 3 pods bound"),
    ]
    entry = condition(cycles, "Scheduled")
    assert entry is not None and entry["scheduled"] is True and entry["reason"] == "Scheduled"
    assert condition(cycles, "GangAdmitted") is None
    assert (
        cycles.counter(PODGROUP_ATTEMPTS, {"result": "scheduled", "profile": "workload-scheduler"})
        == 1
    )


async def test_gang_that_does_not_fit_places_nothing() -> None:
    cycles = Cycles([make_node("a", cpu="1"), make_node("b", cpu="1")], groups=[train(3)])
    cycles.add(*members(3))
    await cycles.schedule_next()
    message = f"gang {GANG} needs 3 x {{cpu: 1}}; short by 1 cpu (at most 2 fit)"
    assert cycles.binder.calls == []
    for name in ("w0", "w1", "w2"):
        [report] = cycles.reporter.about(name)
        assert (report.kind, report.message) == ("pod_unschedulable", message)
        assert cycles.where(name) == "unschedulable"
        assert cycles.node_of(name) is None  # every trial assumption rolled back
    assert group_events(cycles) == [("FailedScheduling", message)]
    entry = condition(cycles, "FailedScheduling")
    assert entry is not None and entry["scheduled"] is False
    assert entry["reason"] == "Unschedulable"


async def test_members_pending_for_another_scheduler_keep_the_gang_waiting() -> None:
    cycles = Cycles([make_node("n", cpu="8")], groups=[train(3)])
    elsewhere = member("w2", schedulerName="default-scheduler")
    cycles.gangs.observe_pod(elsewhere, "")  # a member, but not in our queue
    cycles.add(member("w0"), member("w1"))
    await cycles.schedule_next()
    assert cycles.binder.calls == []
    for name in ("w0", "w1"):
        qp = cycles.queue.get(f"uid-ns-{name}")
        assert qp is not None and qp.where == "gated"
        assert qp.gate_message == (
            f"waiting for gang {GANG}: 2 of 3 more members are pending for this scheduler"
        )


async def test_member_already_assigned_counts_as_bound() -> None:
    conflict = [BindOutcome.ALREADY_ASSIGNED]  # a 409: someone bound it meanwhile
    cycles = Cycles([make_node("n", cpu="8")], ScriptedBinder({"w1": conflict}), groups=[train(3)])
    cycles.add(*members(3))
    await cycles.schedule_next()
    assert sorted(cycles.reporter.scheduled()) == ["w0", "w2"]
    assert cycles.where("w1") is None and cycles.node_of("w1") is None
    assert group_events(cycles)[-1] == ("Scheduled", f"gang {GANG}: all 3 pods bound")


async def test_gated_sibling_stays_out_of_the_gang_pass() -> None:
    """A sibling still carrying schedulingGates (as Kueue leaves them until admission)."""
    cycles = Cycles([make_node("n", cpu="8")], groups=[train(3)])
    cycles.add(member("w0"), member("w1"), member("w2", schedulingGates=[{"name": "kueue"}]))
    assert cycles.where("w2") == "gated"
    await cycles.schedule_next()
    assert cycles.binder.calls == []
    assert cycles.where("w2") == "gated"
    assert group_events(cycles) == []


async def test_failed_member_is_repaired_on_another_node_of_its_domain() -> None:
    """The node a member was placed on vanished and the bind failed: it is bound again on
    a free node in the rack its gang runs in."""
    cycles = Cycles(racks(a=3, b=4), groups=[train(2, topology_key="rack")])

    cycles.binder.script["w0"] = [cycles.node_vanishes(RETRY_500)]
    cycles.add(*members(2))
    await cycles.schedule_next()
    first, second = cycles.binder.nodes_of("w0")
    # Rack a leaves the least over (1 free cpu of the gang's 2, against b's 2).
    assert first.startswith("a") and second.startswith("a") and second != first
    assert cycles.reporter.scheduled()["w0"] == second
    assert cycles.reporter.scheduled()["w1"].startswith("a")
    assert group_events(cycles) == [
        ("GangAdmitted", f"gang {GANG}: 2 pods placed in rack=a; binding, deadline 300s"),
        ("Scheduled", f"gang {GANG}: all 2 pods bound"),
    ]
    assert cycles.counter("workload_scheduler_bind_errors_total", {"reason": "retry"}) == 1


async def test_member_bound_to_a_vanished_node_counts_as_bound() -> None:
    """The API server accepts a Binding to a node that is gone."""
    cycles = Cycles([make_node(f"n{i}", cpu="2") for i in range(3)], groups=[train(3)])

    cycles.binder.script["w0"] = [cycles.node_vanishes(BindOutcome.BOUND)]
    cycles.add(*members(3))
    await cycles.schedule_next()
    # The cycle trusts the binder's answer: the real Binder checks the node right before
    # the request leaves (node_exists) and answers RETRY instead; this is the race after it.
    [node] = cycles.binder.nodes_of("w0")
    assert cycles.cache.node(node) is None
    assert group_events(cycles)[-1] == ("Scheduled", f"gang {GANG}: all 3 pods bound")


async def test_member_with_no_node_until_the_deadline_is_given_up(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(gang_cycle, "REPAIR_POLL_SECONDS", 0.01)
    cycles = Cycles(racks(a=2), groups=[train(2)], gang_timeout=0.2)

    cycles.binder.script["w0"] = [cycles.node_vanishes(RETRY_500)]
    cycles.add(*members(2))
    await cycles.schedule_next()
    assert len(cycles.binder.nodes_of("w0")) == 1  # no node was left to try again on
    assert cycles.reporter.scheduled().keys() == {"w1"}
    [report] = cycles.reporter.about("w0")
    assert (report.kind, report.reason) == ("pod_unschedulable", "SchedulerError")
    assert report.message == f"gang {GANG}: binding failed until the deadline: {RETRY_500[1]}"
    assert cycles.where("w0") == "backoff"
    assert cycles.node_of("w0") is None
    assert group_events(cycles)[-1] == (
        "GangTimeout",
        f"gang {GANG}: only 1 of 2 pods bound before the deadline; the rest were released "
        "and will be retried",
    )
    entry = condition(cycles, "GangTimeout")
    assert entry is not None and entry["scheduled"] is False
    assert entry["reason"] == "SchedulerError"
    assert cycles.counter(TIMEOUTS) == 1


async def test_member_deleted_during_binding_leaves_the_gang_short() -> None:
    gone = [BindOutcome.POD_GONE]  # a 404
    cycles = Cycles([make_node("n", cpu="8")], ScriptedBinder({"w2": gone}), groups=[train(3)])
    cycles.add(*members(3))
    await cycles.schedule_next()
    assert cycles.where("w2") is None and cycles.node_of("w2") is None
    # Reported as a timeout, although no deadline passed: the message is the same.
    assert group_events(cycles)[-1] == (
        "GangTimeout",
        f"gang {GANG}: only 2 of 3 pods bound before the deadline; the rest were released "
        "and will be retried",
    )
    assert cycles.counter(TIMEOUTS) == 1


async def test_member_bound_meanwhile_during_repair_counts_as_bound() -> None:
    """The bind failed, but the watch meanwhile reports the pod bound elsewhere."""
    cycles = Cycles(racks(a=3), groups=[train(2)])
    infos = cycles.add(*members(2))

    def bound_elsewhere(pod: Pod, node: str) -> Any:
        other = next(n.name for n in cycles.cache.nodes() if n.name != node and not n.pods)
        cycles.cache.set_assigned_pod(infos[0], other)
        return RETRY_500

    cycles.binder.script["w0"] = [bound_elsewhere]
    qp = await cycles.pop()  # w0's turn places the gang
    assert qp.key == "ns/w0"
    await cycles.scheduler.schedule(qp)
    [task] = await cycles.settle()
    assert task.exception() is None
    assert group_events(cycles)[-1] == ("Scheduled", f"gang {GANG}: all 2 pods bound")


async def test_new_member_joins_its_running_gang_inside_the_domain() -> None:
    nodes = [
        *(make_node(f"a{i}", cpu="2", labels={"rack": "a"}) for i in range(2)),
        *(make_node(f"b{i}", cpu="8", labels={"rack": "b"}) for i in range(2)),
    ]
    cycles = Cycles(nodes, groups=[train(2, topology_key="rack")])
    cycles.add(member("w0", node_name="a0"), member("w1", node_name="a1"))
    cycles.add(member("w2"))
    await cycles.schedule_next()
    # b's nodes are emptier (LeastAllocated would pick them), but the gang runs in rack a.
    assert cycles.reporter.scheduled()["w2"].startswith("a")
    assert cycles.reporter.about("train") == []  # a member joining is not a gang pass
    cycles.add(member("w3", cpu="2"))
    await cycles.schedule_next()
    [report] = cycles.reporter.about("w3")
    assert report.message == "0/2 nodes are available: 2 Insufficient cpu."


async def test_extra_member_beyond_min_count_waits_for_room() -> None:
    cycles = Cycles(racks(a=2), groups=[train(2)])
    cycles.add(*members(3))
    await cycles.schedule_next()
    assert sorted(cycles.reporter.scheduled()) in (["w0", "w1"], ["w0", "w2"], ["w1", "w2"])
    [extra] = {"w0", "w1", "w2"} - cycles.reporter.scheduled().keys()
    [report] = cycles.reporter.about(extra)
    assert report.message == f"gang {GANG} is placed; no room for this extra member yet"
    assert cycles.where(extra) == "unschedulable"
    assert group_events(cycles)[-1] == ("Scheduled", f"gang {GANG}: all 2 pods bound")


async def test_group_object_gone_since_admission_sends_the_member_back_to_the_gate() -> None:
    cycles = Cycles([make_node("n", cpu="8")], groups=[train(2)])
    cycles.add(*members(2))
    qp = await cycles.pop()
    cycles.gangs.delete_object(train(2).key)
    await cycles.scheduler.schedule(qp)
    assert qp.where == "gated"
    assert qp.gate_message == (
        "waiting for Workload (workload-scheduler.io/v1alpha1) ns/train to appear"
    )


async def test_scheduled_stays_the_groups_status_once_written() -> None:
    """Once every member was bound, later trouble is an Event, not a status change."""
    cycles = Cycles(racks(a=2), groups=[train(2)])
    first = cycles.add(*members(2))
    await cycles.schedule_next()
    assert group_events(cycles)[-1] == ("Scheduled", f"gang {GANG}: all 2 pods bound")
    for info in first:  # the members finish; replacements that need more room arrive
        cycles.cache.remove_pod(info.uid)
        cycles.gangs.forget_pod(info.uid)
    cycles.add(member("w8", cpu="2"), member("w9", cpu="2"))
    await cycles.schedule_next()
    assert group_events(cycles)[-1][0] == "FailedScheduling"
    assert condition(cycles, "FailedScheduling") is None
