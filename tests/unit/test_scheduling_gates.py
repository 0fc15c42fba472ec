"""SchedulingGates (PreEnqueue): a gated pod waits, and says for which gates."""

from __future__ import annotations

from factories import pod_info

from scheduler.framework.cycle import Profile, pre_enqueue
from scheduler.framework.plugins import SchedulingGates


def test_no_gates_may_enter() -> None:
    assert SchedulingGates().pre_enqueue(pod_info()) is None
    assert pre_enqueue(Profile.default(), pod_info()) is None


def test_gates_are_named_in_order() -> None:
    gated = pod_info(schedulingGates=[{"name": "example.com/quota"}, {"name": "b"}])
    message = "waiting for scheduling gates: example.com/quota, b"
    assert SchedulingGates().pre_enqueue(gated) == message
    assert pre_enqueue(Profile.default(), gated) == message


def test_a_profile_without_the_plugin_lets_gated_pods_in() -> None:
    gated = pod_info(schedulingGates=[{"name": "a"}])
    assert pre_enqueue(Profile([], []), gated) is None
