"""The pod cycle with a scripted binder and a recording reporter: what happens to a pod,
the cache and the queue for each answer the API server can give to a Binding."""

from __future__ import annotations

from factories import make_node
from fakes import RETRY_500, Cycles, ScriptedBinder, pod

from scheduler.binder.binder import BindOutcome
from scheduler.model.objects import Node

BIND_ERRORS = "workload_scheduler_bind_errors_total"
ATTEMPTS = "scheduler_schedule_attempts_total"


def two_nodes() -> list[Node]:
    return [make_node("small", cpu="1"), make_node("big", cpu="8")]


async def test_bound_pod_is_assumed_reported_and_leaves_the_queue() -> None:
    cycles = Cycles([make_node("n1", cpu="2")])
    cycles.add(pod("web"))
    await cycles.schedule_next()
    assert cycles.binder.calls == [("web", "n1")]
    assert cycles.reporter.scheduled() == {"web": "n1"}
    assert cycles.where("web") is None
    # Assumed until the watch confirms it: the capacity stays taken meanwhile.
    assert cycles.node_of("web") == "n1"
    assert cycles.cache.is_assumed("uid-ns-web")
    assert cycles.counter(ATTEMPTS, {"result": "scheduled", "profile": "workload-scheduler"}) == 1


async def test_no_node_fits_the_pod_is_told_why_and_parked() -> None:
    cycles = Cycles([make_node("a", cpu="1"), make_node("b", cpu="1")])
    cycles.add(pod("big", cpu="4"))
    await cycles.schedule_next()
    assert cycles.binder.calls == []
    [report] = cycles.reporter.about("big")
    assert (report.kind, report.reason) == ("pod_unschedulable", "Unschedulable")
    assert report.message == "0/2 nodes are available: 2 Insufficient cpu."
    assert cycles.where("big") == "unschedulable"
    assert cycles.node_of("big") is None


async def test_conflict_already_assigned_drops_the_pod_quietly() -> None:
    """409: someone assigned it meanwhile; the watch will say where."""
    cycles = Cycles([make_node("n1")], ScriptedBinder({"web": [BindOutcome.ALREADY_ASSIGNED]}))
    cycles.add(pod("web"))
    await cycles.schedule_next()
    assert cycles.where("web") is None
    assert cycles.node_of("web") is None  # our assumption is forgotten
    assert cycles.reporter.reports == []
    assert cycles.counter(BIND_ERRORS, {"reason": "already_assigned"}) == 1


async def test_retry_releases_the_node_reports_and_backs_off_then_binds() -> None:
    cycles = Cycles([make_node("n1")], ScriptedBinder({"web": [RETRY_500]}))
    cycles.add(pod("web"))
    await cycles.schedule_next()
    [report] = cycles.reporter.about("web")
    assert (report.kind, report.reason) == ("pod_unschedulable", "SchedulerError")
    assert report.message == f"Binding rejected: {RETRY_500[1]}"
    assert cycles.node_of("web") is None
    assert cycles.where("web") == "backoff"
    assert cycles.counter(BIND_ERRORS, {"reason": "retry"}) == 1
    assert cycles.counter(ATTEMPTS, {"result": "error", "profile": "workload-scheduler"}) == 1
    # The next attempt (here without waiting out the back-off) binds.
    cycles.queue.activate(["uid-ns-web"])
    await cycles.schedule_next()
    assert cycles.binder.calls == [("web", "n1"), ("web", "n1")]
    assert cycles.reporter.scheduled() == {"web": "n1"}


async def test_pod_gone_or_recreated_is_forgotten() -> None:
    """404, or a 409 on the UID precondition (another pod under the name)."""
    gone = [BindOutcome.POD_GONE]
    cycles = Cycles([make_node("n1")], ScriptedBinder({"a": gone, "b": list(gone)}))
    cycles.add(pod("a"), pod("b"))
    await cycles.schedule_next()
    await cycles.schedule_next()
    assert cycles.where("a") is None and cycles.where("b") is None
    assert cycles.node_of("a") is None and cycles.node_of("b") is None
    assert cycles.reporter.reports == []
    assert cycles.counter(BIND_ERRORS, {"reason": "pod_gone"}) == 2


async def test_gated_pod_is_not_tried() -> None:
    cycles = Cycles([make_node("n1")])
    cycles.add(pod("held", schedulingGates=[{"name": "kueue.x-k8s.io/admission"}]))
    assert cycles.where("held") == "gated"
    assert cycles.queue.get("uid-ns-held").gate_message == (  # type: ignore[union-attr]
        "waiting for scheduling gates: kueue.x-k8s.io/admission"
    )


async def test_409_for_a_gated_pod_drops_it_until_its_gates_go() -> None:
    """The API server refuses to bind a pod that still has scheduling gates (a 409 on
    pods/binding); the binder reads the pod back and answers GATED."""
    cycles = Cycles([make_node("n1")], ScriptedBinder({"web": [BindOutcome.GATED]}))
    cycles.add(pod("web"))
    await cycles.schedule_next()
    assert cycles.counter(BIND_ERRORS, {"reason": "gated"}) == 1
    assert cycles.where("web") is None  # back with the update that removes its gates
    assert cycles.node_of("web") is None
    assert cycles.reporter.reports == []


async def test_node_vanished_before_the_bind_is_still_bound_there() -> None:
    """The API server accepts a Binding to a node that does not exist."""
    cycles = Cycles([make_node("n1")])
    cycles.binder.script["web"] = [cycles.node_vanishes(BindOutcome.BOUND)]
    cycles.add(pod("web"))
    await cycles.schedule_next()
    # The cycle trusts the binder's answer: the real Binder checks the node right before
    # the request leaves (node_exists) and answers RETRY instead; this is the race after it.
    assert cycles.reporter.scheduled() == {"web": "n1"}
    assert cycles.cache.node("n1") is None


async def test_node_vanished_and_the_bind_failed_goes_elsewhere_next_time() -> None:
    cycles = Cycles(two_nodes())
    cycles.binder.script["web"] = [cycles.node_vanishes(BindOutcome.RETRY)]
    cycles.add(pod("web", cpu="500m"))
    await cycles.schedule_next()
    first = cycles.binder.calls[0][1]
    assert cycles.where("web") == "backoff"
    cycles.queue.activate(["uid-ns-web"])
    await cycles.schedule_next()
    [(_, second)] = cycles.binder.calls[1:]
    assert second != first
    assert cycles.reporter.scheduled() == {"web": second}


async def test_pod_bound_or_deleted_meanwhile_is_not_placed_again() -> None:
    cycles = Cycles([make_node("n1")])
    [info] = cycles.add(pod("web"))
    qp = await cycles.pop()
    cycles.cache.assume(info, "n1")  # e.g. bound by an earlier attempt, confirmation pending
    await cycles.scheduler.schedule(qp)
    await cycles.settle()
    assert cycles.binder.calls == []
    assert cycles.where("web") is None


async def test_assumed_capacity_is_seen_by_the_next_pod() -> None:
    """The second pod sees the first one's node as full before either bind returns."""
    cycles = Cycles([make_node("a", cpu="1"), make_node("b", cpu="1")])
    cycles.add(pod("one"), pod("two"))
    for _ in range(2):
        await cycles.scheduler.schedule(await cycles.pop())
    await cycles.settle()
    assert sorted(cycles.reporter.scheduled().values()) == ["a", "b"]
