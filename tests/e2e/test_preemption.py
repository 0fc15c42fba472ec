"""Pod preemption side by side with the real kube-scheduler v1.35 on the same control plane.

The same scenario goes to each scheduler in turn, in a fresh namespace on the same three
nodes: low- and mid-priority pods fill the nodes (bound directly, ``spec.nodeName``), one
of them guarded by a PodDisruptionBudget that allows no disruption. Then:

- a high-priority pod that fits nowhere: both schedulers must pick the same node and the
  same victims (several candidate nodes; the PDB decides between them), mark the victims
  ``DisruptionTarget``/``PreemptionByScheduler``, delete them, nominate the node, and bind
  the preemptor there once the victims are gone;
- a ``preemptionPolicy: Never`` pod, a pod too big for any node even when emptied and a
  pod whose node selector matches no node: nobody is evicted, and the FailedScheduling
  messages (with their ``preemption: ...`` tail) are the same word for word.

Two more scenarios, on their own nodes, check that the dry run sees InterPodAffinity and
PodTopologySpread with the victims removed: a pod with required anti-affinity evicts
exactly the lower-priority pod it selects, and a pod under a zone spread constraint evicts
one pod of the crowded zone; same victims (count), node, binding and message as upstream.
A pod whose required affinity needs a lower-priority pod loses it in the dry run (every
lower-priority pod is removed first): nothing evicted, the same message.

Victims carry a finalizer, so the test sees them while they terminate (it plays the
kubelet: it lets them go once both the condition and the deletion are there); the nodes are
not kwok's, which would finish the victims at once.
"""

from __future__ import annotations

import time
from typing import Any

from kubernetes.client.exceptions import ApiException

from tests.e2e.conftest import delete_namespace, new_namespace
from tests.e2e.k8s import pod_manifest, pods_by_name, wait_until
from tests.e2e.scheduler_process import SchedulerProcess

HOLD = "e2e.workload-scheduler.io/hold"
CLASSES = {"e2e-low": (10, None), "e2e-mid": (50, None), "e2e-high": (1000, None)}
CLASSES["e2e-never"] = (1000, "Never")
NODES = ("pre-a", "pre-b", "pre-c")


def ensure_priority_classes(kube_request: Any) -> None:
    for name, (value, policy) in CLASSES.items():
        body: dict[str, Any] = {
            "apiVersion": "scheduling.k8s.io/v1",
            "kind": "PriorityClass",
            "metadata": {"name": name},
            "value": value,
        }
        if policy:
            body["preemptionPolicy"] = policy
        try:
            kube_request("POST", "/apis/scheduling.k8s.io/v1/priorityclasses", body)
        except ApiException as error:
            if error.status != 409:
                raise


def pod(name: str, cls: str, cpu: str, scheduler: str, **kw: Any) -> dict[str, Any]:
    # Every taint tolerated: the nodes have no kubelet (nor kwok, which would finish the
    # victims at once), so the node lifecycle controller taints them not-ready meanwhile.
    extra = {
        "priorityClassName": cls,
        "tolerations": [{"operator": "Exists"}],
        **kw.pop("extra_spec", {}),
    }
    return pod_manifest(name, cpu=cpu, memory="64Mi", scheduler=scheduler, extra_spec=extra, **kw)


def running(name: str, cls: str, cpu: str, node: str, labels: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    manifest = pod(name, cls, cpu, "none", labels=labels, extra_spec={"nodeName": node})
    manifest["metadata"]["finalizers"] = [HOLD]
    return manifest


def unschedulable_message(pod: Any) -> str | None:
    for c in pod.status.conditions or []:
        if c.type == "PodScheduled" and c.status == "False" and c.reason == "Unschedulable":
            return str(c.message)
    return None


def release(core: Any, ns: str, names: list[str]) -> None:
    for name in names:
        core.patch_namespaced_pod(name, ns, {"metadata": {"finalizers": None}})


def clean_up(core: Any, ns: str) -> None:
    """Let every held pod go and delete the namespace."""
    pods = pods_by_name(core, ns)
    release(core, ns, [n for n, p in pods.items() if p.metadata.finalizers])
    delete_namespace(core, ns)


def nominated_then_bound(
    core: Any, ns: str, name: str, scheduler: str, victims: list[str]
) -> tuple[str, str | None, str]:
    """The preemptor's nominated node and FailedScheduling message once it is nominated;
    then the victims are let go and the node it binds to."""
    nominated = wait_until(
        lambda: pods_by_name(core, ns)[name].status.nominated_node_name,
        timeout=30,
        what=f"{scheduler}: nominatedNodeName",
    )
    message = unschedulable_message(pods_by_name(core, ns)[name])
    release(core, ns, victims)
    bound = wait_until(
        lambda: pods_by_name(core, ns)[name].spec.node_name,
        timeout=60,
        what=f"{scheduler}: preemptor bound",
    )
    return nominated, message, bound


def run_round(core: Any, kube_request: Any, scheduler: str) -> dict[str, Any]:
    ns = new_namespace(core)
    victims_seen: list[str] = []
    try:
        kube_request(
            "POST",
            f"/apis/policy/v1/namespaces/{ns}/poddisruptionbudgets",
            {
                "apiVersion": "policy/v1",
                "kind": "PodDisruptionBudget",
                "metadata": {"name": "guarded"},
                "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "guarded"}}},
            },
        )
        # pre-a: two small low pods; pre-b: one mid pod; pre-c: one low pod under the PDB.
        # Without the PDB pre-c would win (one victim); with it, pre-a (no violation).
        for manifest in (
            running("low-a1", "e2e-low", "2", "pre-a"),
            running("low-a2", "e2e-low", "2", "pre-a"),
            running("mid-b", "e2e-mid", "4", "pre-b"),
            running("low-c", "e2e-low", "4", "pre-c", labels={"app": "guarded"}),
        ):
            core.create_namespaced_pod(ns, manifest)
        core.create_namespaced_pod(ns, pod("high", "e2e-high", "3", scheduler))

        def victims_terminating() -> list[str] | None:
            pods = pods_by_name(core, ns)
            deleted = sorted(n for n, p in pods.items() if p.metadata.deletion_timestamp)
            return deleted if len(deleted) >= 2 else None

        wait_until(victims_terminating, timeout=60, what=f"{scheduler}: victims deleted")
        time.sleep(2)  # anything more would be over-eviction: give it a chance to show
        pods = pods_by_name(core, ns)
        victims_seen = sorted(n for n, p in pods.items() if p.metadata.deletion_timestamp)
        conditions = {
            n: [
                (c.type, c.status, c.reason, c.message)
                for c in pods[n].status.conditions or []
                if c.type == "DisruptionTarget"
            ]
            for n in victims_seen
        }
        nominated, high_message, bound = nominated_then_bound(
            core, ns, "high", scheduler, victims_seen
        )
        # Victim, then what upstream's Eventf(victim, preemptor, ...) says: the preemptor
        # as the related object, the action, the note (its uid shown as <uid>).
        preempted_events = sorted(
            (
                e.involved_object.name,
                e.related.kind if e.related else None,
                e.related.name if e.related else None,
                e.action,
                e.message.replace(e.related.uid, "<uid>") if e.related else e.message,
            )
            for e in core.list_namespaced_event(ns).items
            if e.reason == "Preempted"
        )

        for manifest in (
            pod("never", "e2e-never", "3", scheduler),
            pod("huge", "e2e-high", "5", scheduler),
            pod("picky", "e2e-high", "1", scheduler, node_selector={"zone": "nowhere"}),
        ):
            core.create_namespaced_pod(ns, manifest)

        def messages() -> dict[str, str] | None:
            pods = pods_by_name(core, ns)
            found = {n: unschedulable_message(pods[n]) for n in ("never", "huge", "picky")}
            return found if all(found.values()) else None  # type: ignore[return-value]

        failed = wait_until(messages, timeout=60, what=f"{scheduler}: unschedulable pods")
        time.sleep(2)
        later = sorted(
            n for n, p in pods_by_name(core, ns).items() if p.metadata.deletion_timestamp
        )
        return {
            "victims": victims_seen,
            "conditions": conditions,
            "nominated": nominated,
            "bound": bound,
            "high_message": high_message,
            "preempted_events": preempted_events,
            "failed": failed,
            "evicted_later": later,
        }
    finally:
        clean_up(core, ns)


def test_same_victims_and_outcome_as_kube_scheduler(
    core_api: Any,
    kube_request: Any,
    node_factory: Any,
    workload_scheduler: SchedulerProcess,
) -> None:
    ensure_priority_classes(kube_request)
    for name in NODES:
        node_factory(name, cpu="4", memory="8Gi", kwok=False)
    ours = run_round(core_api, kube_request, "workload-scheduler")
    theirs = run_round(core_api, kube_request, "default-scheduler")

    assert theirs["victims"] == ["low-a1", "low-a2"], theirs  # the oracle, as reasoned above
    assert ours["victims"] == theirs["victims"]
    assert ours["nominated"] == theirs["nominated"] == "pre-a"
    assert ours["bound"] == theirs["bound"] == "pre-a"
    assert [e[0] for e in theirs["preempted_events"]] == ["low-a1", "low-a2"]
    assert ours["preempted_events"] == theirs["preempted_events"]
    for _, kind, name, action, note in ours["preempted_events"]:
        assert (kind, name, action, note) == (
            "Pod",
            "high",
            "Preempting",
            "Preempted by pod <uid> on node pre-a",
        )
    # The condition's message names the preemptor's scheduler.
    for name in ours["victims"]:
        assert ours["conditions"][name] == [
            (
                "DisruptionTarget",
                "True",
                "PreemptionByScheduler",
                "workload-scheduler: preempting to accommodate a higher priority pod",
            )
        ]
        assert theirs["conditions"][name] == [
            (
                "DisruptionTarget",
                "True",
                "PreemptionByScheduler",
                "default-scheduler: preempting to accommodate a higher priority pod",
            )
        ]
    assert ours["high_message"] == theirs["high_message"]
    # Never, too big, unresolvable: no victims, the same words.
    assert ours["evicted_later"] == theirs["evicted_later"] == []
    assert ours["failed"] == theirs["failed"], (ours["failed"], theirs["failed"])
    assert "preemption: not eligible due to preemptionPolicy=Never." in ours["failed"]["never"]


ANTI_NODES = ("paa-a", "paa-b", "paa-c")
HOSTNAME = "kubernetes.io/hostname"
ANTI_X = {
    "podAntiAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": [
            {"labelSelector": {"matchLabels": {"app": "x"}}, "topologyKey": HOSTNAME}
        ]
    }
}


def run_one_victim_round(
    core: Any, scheduler: str, existing: list[dict[str, Any]], preemptor: dict[str, Any]
) -> dict[str, Any]:
    """``existing`` pods bound directly, then ``preemptor`` (named ``pre``) to ``scheduler``:
    its victims, nominated node, final node and FailedScheduling message."""
    ns = new_namespace(core)
    try:
        for manifest in existing:
            core.create_namespaced_pod(ns, manifest)
        core.create_namespaced_pod(ns, preemptor)

        def deleted() -> list[str] | None:
            pods = pods_by_name(core, ns)
            names = sorted(n for n, p in pods.items() if p.metadata.deletion_timestamp)
            return names or None

        wait_until(deleted, timeout=60, what=f"{scheduler}: victim deleted")
        time.sleep(2)  # anything more would be over-eviction: give it a chance to show
        victims = deleted() or []
        nominated, message, bound = nominated_then_bound(core, ns, "pre", scheduler, victims)
        return {"victims": victims, "nominated": nominated, "bound": bound, "message": message}
    finally:
        clean_up(core, ns)


def anti_affinity_round(core: Any, scheduler: str) -> dict[str, Any]:
    """A high pod with required anti-affinity to ``app: x`` pods, which are on every node:
    only on paa-a is that pod of lower priority. Resources alone would need no victim."""
    existing = [
        running("low-x", "e2e-low", "1", "paa-a", labels={"app": "x"}),
        running("low-plain", "e2e-low", "1", "paa-a"),
        running("high-x-b", "e2e-high", "1", "paa-b", labels={"app": "x"}),
        running("low-b", "e2e-low", "1", "paa-b"),
        running("high-x-c", "e2e-high", "1", "paa-c", labels={"app": "x"}),
    ]
    preemptor = pod("pre", "e2e-high", "1", scheduler, affinity=ANTI_X)
    return run_one_victim_round(core, scheduler, existing, preemptor)


def test_anti_affinity_preemption_same_victims_as_kube_scheduler(
    core_api: Any,
    kube_request: Any,
    node_factory: Any,
    workload_scheduler: SchedulerProcess,
) -> None:
    """The dry run sees InterPodAffinity with the victims removed: exactly the pod the
    preemptor's anti-affinity rejects is evicted, not its neighbour."""
    ensure_priority_classes(kube_request)
    for name in ANTI_NODES:
        node_factory(name, cpu="4", memory="8Gi", kwok=False, labels={HOSTNAME: name})
    ours = anti_affinity_round(core_api, "workload-scheduler")
    theirs = anti_affinity_round(core_api, "default-scheduler")

    assert theirs["victims"] == ["low-x"], theirs  # the oracle
    assert ours["victims"] == theirs["victims"]
    assert ours["nominated"] == theirs["nominated"] == "paa-a"
    assert ours["bound"] == theirs["bound"] == "paa-a"
    assert ours["message"] == theirs["message"], (ours["message"], theirs["message"])


ZONE = "topology.kubernetes.io/zone"
SPREAD_S = [
    {
        "maxSkew": 1,
        "topologyKey": ZONE,
        "whenUnsatisfiable": "DoNotSchedule",
        "labelSelector": {"matchLabels": {"app": "s"}},
    }
]


def spread_round(core: Any, scheduler: str) -> dict[str, Any]:
    """maxSkew 1 over zones a (spa-a: two low ``app: s`` pods) and b (spa-b, full: one high
    ``app: s`` pod): a high ``app: s`` pod fits only once one pod in zone a is gone."""
    s = {"app": "s"}
    existing = [
        running("low-1", "e2e-low", "1", "spa-a", labels=s),
        running("low-2", "e2e-low", "1", "spa-a", labels=s),
        running("high-b", "e2e-high", "1", "spa-b", labels=s),
    ]
    spread = {"topologySpreadConstraints": SPREAD_S}
    preemptor = pod("pre", "e2e-high", "1", scheduler, labels=s, extra_spec=spread)
    return run_one_victim_round(core, scheduler, existing, preemptor)


def test_spread_preemption_same_outcome_as_kube_scheduler(
    core_api: Any,
    kube_request: Any,
    node_factory: Any,
    workload_scheduler: SchedulerProcess,
) -> None:
    """The dry run sees PodTopologySpread with the victims removed: one pod of the crowded
    zone is evicted (the other is reprieved), as kube-scheduler does. Which one is not
    compared: neither pod has a start time (no kubelet), so upstream's order between them
    is arbitrary."""
    ensure_priority_classes(kube_request)
    node_factory("spa-a", cpu="4", memory="8Gi", kwok=False, labels={ZONE: "a"})
    node_factory("spa-b", cpu="1", memory="8Gi", kwok=False, labels={ZONE: "b"})
    ours = spread_round(core_api, "workload-scheduler")
    theirs = spread_round(core_api, "default-scheduler")

    assert len(theirs["victims"]) == 1 and theirs["victims"][0].startswith("low-"), theirs
    assert len(ours["victims"]) == 1 and ours["victims"][0].startswith("low-"), ours
    assert ours["nominated"] == theirs["nominated"] == "spa-a"
    assert ours["bound"] == theirs["bound"] == "spa-a"
    assert ours["message"] == theirs["message"], (ours["message"], theirs["message"])


def affinity_lost_round(core: Any, scheduler: str) -> dict[str, Any]:
    """A high pod with required affinity to a low ``app: x`` pod on a node another low pod
    fills: the dry run removes both, the affinity is lost, nothing is evicted."""
    ns = new_namespace(core)
    try:
        core.create_namespaced_pod(ns, running("target", "e2e-low", "1", "aff-a", {"app": "x"}))
        core.create_namespaced_pod(ns, running("filler", "e2e-low", "3", "aff-a"))
        affinity = {"podAffinity": ANTI_X["podAntiAffinity"]}
        core.create_namespaced_pod(ns, pod("pre", "e2e-high", "1", scheduler, affinity=affinity))
        message = wait_until(
            lambda: unschedulable_message(pods_by_name(core, ns)["pre"]),
            timeout=60,
            what=f"{scheduler}: unschedulable",
        )
        time.sleep(2)
        deleted = sorted(
            n for n, p in pods_by_name(core, ns).items() if p.metadata.deletion_timestamp
        )
        return {"message": message, "deleted": deleted}
    finally:
        clean_up(core, ns)


def test_affinity_lost_with_the_victims_same_message_as_kube_scheduler(
    core_api: Any,
    kube_request: Any,
    node_factory: Any,
    workload_scheduler: SchedulerProcess,
) -> None:
    ensure_priority_classes(kube_request)
    node_factory("aff-a", cpu="4", memory="8Gi", kwok=False, labels={HOSTNAME: "aff-a"})
    ours = affinity_lost_round(core_api, "workload-scheduler")
    theirs = affinity_lost_round(core_api, "default-scheduler")
    assert theirs["deleted"] == ours["deleted"] == []
    assert ours["message"] == theirs["message"], (ours["message"], theirs["message"])
    assert theirs["message"].endswith(
        "preemption: 0/1 nodes are available: 1 node(s) didn't match pod affinity rules."
    ), theirs
