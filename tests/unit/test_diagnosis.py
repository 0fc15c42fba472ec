"""The "0/N nodes are available" message, word for word as kube-scheduler writes it."""

from __future__ import annotations

from scheduler.framework.diagnosis import count_reasons, unschedulable_message


def test_message_counts_and_sorts_reasons() -> None:
    reasons = {
        "n1": ("Insufficient cpu",),
        "n2": ("Insufficient cpu",),
        "n3": ("node(s) had untolerated taint(s)",),
    }
    # Sorted as whole "<count> <reason>" strings, so the 1 comes before the 2 (the
    # familiar "1 node(s) had untolerated taint(s), 2 Insufficient cpu." order).
    assert unschedulable_message(3, reasons) == (
        "0/3 nodes are available: 1 node(s) had untolerated taint(s), 2 Insufficient cpu."
    )


def test_multiple_reasons_per_node_each_count() -> None:
    reasons = {
        "n1": ("Insufficient cpu", "Insufficient memory"),
        "n2": ("Insufficient memory",),
        "n3": ("Too many pods",),
        "n4": ("node(s) didn't match Pod's node affinity/selector",),
    }
    assert unschedulable_message(5, reasons) == (
        "0/5 nodes are available: 1 Insufficient cpu, 1 Too many pods, "
        "1 node(s) didn't match Pod's node affinity/selector, 2 Insufficient memory."
    )


def test_sorting_is_lexicographic_like_upstream() -> None:
    reasons = {f"n{i}": ("Insufficient cpu",) for i in range(10)}
    reasons["m"] = ("node(s) were unschedulable",)
    reasons["m2"] = ("node(s) were unschedulable",)
    # "10 ..." sorts before "2 ...", as Go's sort.Strings puts it.
    assert unschedulable_message(12, reasons) == (
        "0/12 nodes are available: 10 Insufficient cpu, 2 node(s) were unschedulable."
    )


def test_no_nodes() -> None:
    assert unschedulable_message(0, {}) == "no nodes available to schedule pods"


def test_no_reasons_recorded() -> None:
    assert unschedulable_message(2, {}) == "0/2 nodes are available:"


def test_count_reasons() -> None:
    counts = count_reasons({"a": ["x", "y"], "b": ["x"], "c": []})
    assert counts == {"x": 2, "y": 1}
