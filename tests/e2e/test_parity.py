"""Differential test against the real kube-scheduler v1.35 on the same control plane
(issue 12's proof): hypothesis makes small clusters and pods, our scheduler places them,
and kube-scheduler judges every decision in the same state.

How one example runs:

1. Its nodes are created as plain API Nodes (kwok keeps them Ready). Each carries an
   extended resource of its own, ``parity.example.com/n<i>``, that no pod of ours asks for.
2. **Our round.** The pods are created one at a time in a fresh namespace pair (``main`` and
   ``other``, for the namespace fields of affinity terms); each waits until we bound it or
   marked it unschedulable. A pod we leave Pending is deleted at once, so that a later pod
   cannot revive it: every decision is taken in a state the test knows exactly (the pods
   bound before it, on the nodes we chose).
3. **The twins' round.** The same pods again, one at a time, for kube-scheduler in a fresh
   namespace pair, once the first round's pods are gone. A pod we bound becomes a twin
   that also requests one unit of the chosen node's own resource: NodeResourcesFit then
   rules out every other node, and kube-scheduler's other filters judge our node in the
   same state we did. A pinned twin that stays Pending is a placement kube-scheduler
   refuses. A pod we refused goes unchanged: kube-scheduler must refuse it too, with the
   same "0/N nodes are available: ..." text (what preemption found included: which nodes
   it calls "not helpful" shows which reasons each side counts as unresolvable), and the
   twin is deleted.

Pinning by a resource rather than by node affinity (as ``test_compare_kube_scheduler``
does) matters for topology spread: a ``matchFields`` pin would narrow the nodes whose
domains count under ``nodeAffinityPolicy: Honor`` and change the verdict being checked.

Capacity order: kube-scheduler never places these pods on its own, so there is no run of
its choices to compare, and no case where a pod's feasibility depends on which nodes
*its* earlier pods took: every verdict it gives is on our placements. Scores are not
compared (a different node is a legitimate choice whenever both are feasible); they
matter only through the states they lead to, which both sides then share.

Not covered here: pods created together (our batching; one at a time is what makes each
verdict's state known), gangs, priorities and preemption's victims (every pod has
priority 0: preemption's part of the message only says which nodes it would not try),
and volumes beyond a missing claim (``test_volumes.py`` has its own cases).

No deliberate differences: a pod whose PersistentVolumeClaim does not exist is compared
like any other (``persistentvolumeclaim "missing" not found`` on both sides).

Examples: seven explicit ones (issue 12's table, corners of spreading), then
``PARITY_EXAMPLES`` generated ones (default 15; about two minutes in all). ``PARITY_SEED``
picks them (default: a fixed sequence, the same every run); ``make parity`` runs many with
a random seed and prints it. ``PARITY_REPORT=path`` appends every mismatch there as a JSON
line and goes on with the next example (the test still fails at the end).
"""

from __future__ import annotations

import copy
import json
import os
import time
import uuid
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from hypothesis import HealthCheck, Phase, example, given, seed, settings
from hypothesis import strategies as st
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from devcluster.nodes import node_manifest
from tests.e2e.k8s import pod_manifest, wait_until
from tests.e2e.scheduler_process import SchedulerProcess

OURS = "workload-scheduler"
THEIRS = "default-scheduler"
HOST = "kubernetes.io/hostname"
ZONE = "topology.kubernetes.io/zone"
RACK = "example.com/rack"
EXAMPLE = "parity.example.com/example"
PIN = "parity.example.com/n"
OTHER = "<other>"
"""Stands for the round's ``other`` namespace in generated affinity terms."""

EXAMPLES = int(os.environ.get("PARITY_EXAMPLES", "15"))
SEED = os.environ.get("PARITY_SEED")
REPORT = os.environ.get("PARITY_REPORT")
TRACE = os.environ.get("PARITY_TRACE")
"""A file to append every example and both sides' verdicts to (JSON lines)."""

TAINTS = {
    "infra": {"key": "dedicated", "value": "infra", "effect": "NoSchedule"},
    "spot": {"key": "spot", "value": "", "effect": "PreferNoSchedule"},
    "maint": {"key": "maintenance", "value": "", "effect": "NoExecute"},
}

# -- strategies ---------------------------------------------------------------------------


@st.composite
def nodes(draw: st.DrawFn) -> list[dict[str, Any]]:
    count = draw(st.integers(2, 6))
    out = []
    for i in range(count):
        labels: dict[str, str] = {}
        zone = draw(st.sampled_from(["a", "a", "b", "b", "c", None]))
        if zone:
            labels[ZONE] = zone
        rack = draw(st.sampled_from(["r1", "r2", None]))
        if rack:
            labels[RACK] = rack
        disk = draw(st.sampled_from(["ssd", "hdd", None]))
        if disk:
            labels["disk"] = disk
        labels["tier"] = str(draw(st.integers(1, 3)))
        taints = draw(st.lists(st.sampled_from(sorted(TAINTS)), max_size=1, unique=True))
        out.append(
            {
                "index": i,
                "labels": labels,
                "taints": [TAINTS[t] for t in taints],
                "cpu": draw(st.sampled_from(["1", "2", "4", "8"])),
                "memory": draw(st.sampled_from(["2Gi", "8Gi"])),
                "pods": draw(st.sampled_from([2, 3, 110, 110])),
            }
        )
    return out


APPS = st.sampled_from(["a", "b"])
TOPOLOGY = st.sampled_from([HOST, ZONE, RACK])


@st.composite
def label_selector(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(["labels", "in", "exists", "empty"]))
    if kind == "labels":
        return {"matchLabels": {"app": draw(APPS)}}
    if kind == "in":
        values = draw(st.lists(APPS, min_size=1, max_size=2, unique=True))
        return {"matchExpressions": [{"key": "app", "operator": "In", "values": values}]}
    if kind == "exists":
        return {"matchExpressions": [{"key": "app", "operator": "Exists"}]}
    return {}


@st.composite
def affinity_term(draw: st.DrawFn) -> dict[str, Any]:
    term: dict[str, Any] = {"labelSelector": draw(label_selector()), "topologyKey": draw(TOPOLOGY)}
    scope = draw(st.sampled_from(["own", "own", "list", "all", "selector"]))
    if scope == "list":
        term["namespaces"] = [OTHER]
    elif scope == "all":
        term["namespaceSelector"] = {}
    elif scope == "selector":
        term["namespaceSelector"] = {"matchLabels": {"parity-role": "other"}}
    keys = draw(st.sampled_from([None, "matchLabelKeys", "mismatchLabelKeys"]))
    if keys:
        term[keys] = ["ver"]
    return term


@st.composite
def pod_affinity(draw: st.DrawFn) -> dict[str, Any] | None:
    affinity: dict[str, Any] = {}
    for kind in ("podAffinity", "podAntiAffinity"):
        required = [draw(affinity_term())] if draw(st.integers(0, 2)) == 0 else []
        preferred = [
            {"weight": draw(st.integers(1, 100)), "podAffinityTerm": t}
            for t in draw(st.lists(affinity_term(), max_size=1))
        ]
        body: dict[str, Any] = {}
        if required:
            body["requiredDuringSchedulingIgnoredDuringExecution"] = required
        if preferred:
            body["preferredDuringSchedulingIgnoredDuringExecution"] = preferred
        keep: bool = draw(st.booleans())
        if body and keep:
            affinity[kind] = body
    return affinity or None


@st.composite
def node_affinity(draw: st.DrawFn) -> dict[str, Any] | None:
    choice = draw(st.sampled_from(["none", "none", "in", "notin", "exists", "gt"]))
    expr: dict[str, Any]
    if choice == "none":
        return None
    if choice == "in":
        values = draw(st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, max_size=2))
        expr = {"key": ZONE, "operator": "In", "values": sorted(set(values))}
    elif choice == "notin":
        expr = {"key": ZONE, "operator": "NotIn", "values": [draw(st.sampled_from("abc"))]}
    elif choice == "exists":
        expr = {"key": "disk", "operator": draw(st.sampled_from(["Exists", "DoesNotExist"]))}
    else:
        expr = {"key": "tier", "operator": draw(st.sampled_from(["Gt", "Lt"])), "values": ["2"]}
    return {"matchExpressions": [expr]}


@st.composite
def spread_constraint(draw: st.DrawFn) -> dict[str, Any]:
    action = draw(st.sampled_from(["DoNotSchedule", "DoNotSchedule", "ScheduleAnyway"]))
    c: dict[str, Any] = {
        "maxSkew": draw(st.integers(1, 2)),
        "topologyKey": draw(TOPOLOGY),
        "whenUnsatisfiable": action,
        "labelSelector": draw(label_selector()),
    }
    if action == "DoNotSchedule" and draw(st.booleans()):
        c["minDomains"] = draw(st.integers(1, 4))
    for policy, values in (
        ("nodeAffinityPolicy", ["Honor", "Ignore"]),
        ("nodeTaintsPolicy", ["Honor", "Ignore"]),
    ):
        value = draw(st.sampled_from([None, *values]))
        if value:
            c[policy] = value
    if draw(st.booleans()):
        c["matchLabelKeys"] = ["ver"]
    return c


TOLERATIONS = {
    "infra": {"key": "dedicated", "operator": "Equal", "value": "infra", "effect": "NoSchedule"},
    "maint": {"key": "maintenance", "operator": "Exists", "effect": "NoExecute"},
    "all": {"operator": "Exists"},
}


@st.composite
def pod(draw: st.DrawFn, index: int) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "namespace": draw(st.sampled_from(["main", "main", "main", "other"])),
        "labels": {"app": draw(APPS), "ver": draw(st.sampled_from(["1", "2"]))},
        "cpu": draw(st.sampled_from(["100m", "500m", "1", "2"])),
        "memory": draw(st.sampled_from(["64Mi", "1Gi"])),
        "tolerations": [
            TOLERATIONS[t]
            for t in draw(st.lists(st.sampled_from(sorted(TOLERATIONS)), max_size=2, unique=True))
        ],
    }
    if draw(st.integers(0, 4)) == 0:
        spec["node_selector"] = draw(
            st.sampled_from([{"disk": "ssd"}, {ZONE: "a"}, {RACK: "r2"}, {"tier": "1"}])
        )
    term = draw(node_affinity())
    affinity = draw(pod_affinity()) or {}
    if term:
        affinity["nodeAffinity"] = {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [term]}
        }
    spec["affinity"] = affinity
    spread: list[dict[str, Any]] = []
    if draw(st.booleans()):
        spread = draw(st.lists(spread_constraint(), max_size=2, unique_by=_topology))
    spec["spread"] = spread
    spec["name"] = f"p{index}"
    return spec


def _topology(c: dict[str, Any]) -> tuple[str, str]:
    # The API server refuses two constraints with the same key and action.
    return (c["topologyKey"], c["whenUnsatisfiable"])


@st.composite
def examples(draw: st.DrawFn) -> dict[str, Any]:
    # Replicas: a few pod templates, each created up to 4 times, in an order drawn too.
    # Skew limits, anti-affinity among replicas and existing pods' anti-affinity only show
    # when several pods share a selector.
    templates = draw(st.lists(pod(0), min_size=1, max_size=3))
    copies = [draw(st.sampled_from([3, 2, 4, 1])) for _ in templates]
    order = [t for t, n in enumerate(copies) for _ in range(n)]
    if draw(st.booleans()):
        order = draw(st.permutations(order))
    pods = []
    for i, t in enumerate(order):
        spec = copy.deepcopy(templates[t])
        spec["name"] = f"p{i}"
        pods.append(spec)
    count = len(pods)
    # The last pod at most, one example in ten (hypothesis favours 0 and the bounds, so not
    # those): pods failing on a missing claim test little.
    pvc = draw(st.integers(0, 9)) == 5
    for i, spec in enumerate(pods):
        spec["missing_pvc"] = pvc and i == count - 1
    return {"nodes": draw(nodes()), "pods": pods}


def _plain_node(index: int, **labels: str) -> dict[str, Any]:
    return {
        "index": index,
        "labels": labels,
        "taints": [],
        "cpu": "4",
        "memory": "8Gi",
        "pods": 110,
    }


def _plain_pod(index: int, **fields: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "name": f"p{index}",
        "namespace": "main",
        "labels": {"app": "a", "ver": "1"},
        "cpu": "100m",
        "memory": "64Mi",
        "tolerations": [],
        "affinity": {},
        "spread": [],
        "missing_pvc": False,
    }
    spec.update(fields)
    return spec


def issue_table() -> list[dict[str, Any]]:
    """Issue 12's table, as explicit examples: 6 replicas with required anti-affinity on
    hostname over 3 nodes; 4 pods spread maxSkew 1 over 2 zones; a pod whose claim does not
    exist."""
    anti = {
        "podAntiAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": {"matchLabels": {"app": "a"}}, "topologyKey": HOST}
            ]
        }
    }
    spread = {
        "maxSkew": 1,
        "topologyKey": ZONE,
        "whenUnsatisfiable": "DoNotSchedule",
        "labelSelector": {"matchLabels": {"app": "a"}},
    }
    return [
        {
            "nodes": [_plain_node(i) for i in range(3)],
            "pods": [_plain_pod(i, affinity=anti) for i in range(6)],
        },
        {
            "nodes": [_plain_node(i, **{ZONE: z}) for i, z in enumerate("aab")],
            "pods": [_plain_pod(i, spread=[spread]) for i in range(4)],
        },
        {"nodes": [_plain_node(0)], "pods": [_plain_pod(0, missing_pvc=True)]},
    ]


def spread_corners() -> list[dict[str, Any]]:
    """Where upstream's spread rules bite: fewer domains than ``minDomains`` (the global
    minimum counts as 0), ``nodeAffinityPolicy: Ignore`` (a zone the pods may not use still
    counts), ``nodeTaintsPolicy`` (an untolerated node's zone counts unless Honor), and an
    existing pod's anti-affinity against a pod without any (symmetry)."""

    def spread(**extra: Any) -> dict[str, Any]:
        return {
            "maxSkew": 1,
            "topologyKey": ZONE,
            "whenUnsatisfiable": "DoNotSchedule",
            "labelSelector": {"matchLabels": {"app": "a"}},
            **extra,
        }

    zones = [_plain_node(i, **{ZONE: z}) for i, z in enumerate("abc")]
    tainted = copy.deepcopy(zones)
    tainted[2]["taints"] = [TAINTS["infra"]]
    not_c = {"node_selector": {"tier": "1"}}
    for n in zones[:2]:
        n["labels"]["tier"] = "1"
    guard = {
        "podAntiAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": {"matchLabels": {"app": "b"}}, "topologyKey": ZONE}
            ]
        }
    }
    return [
        {
            "nodes": zones[:2],
            "pods": [_plain_pod(i, spread=[spread(minDomains=3)]) for i in range(3)],
        },
        {
            "nodes": zones,
            "pods": [
                _plain_pod(i, spread=[spread(nodeAffinityPolicy=p)], **not_c)
                for i, p in enumerate(["Ignore", "Ignore", "Honor", "Honor", "Ignore"])
            ],
        },
        {
            "nodes": tainted,
            "pods": [
                _plain_pod(i, spread=[spread(nodeTaintsPolicy=p)])
                for i, p in enumerate(["Honor", "Honor", "Ignore", "Honor", "Ignore"])
            ],
        },
        {
            "nodes": [_plain_node(0, **{ZONE: "a"}), _plain_node(1, **{ZONE: "a"})],
            "pods": [
                _plain_pod(0, affinity=guard),
                *(_plain_pod(i, labels={"app": "b", "ver": "1"}) for i in (1, 2, 3)),
            ],
        },
    ]


# -- building the objects -----------------------------------------------------------------


@dataclass
class Round:
    """A namespace pair for one scheduler's pass over an example."""

    core: Any
    scheduler: str
    example: str
    main: str = ""
    other: str = ""

    def __post_init__(self) -> None:
        tag = uuid.uuid4().hex[:6]
        self.main, self.other = f"par-{tag}-main", f"par-{tag}-other"
        for name, role in ((self.main, "main"), (self.other, "other")):
            meta = client.V1ObjectMeta(name=name, labels={"parity-role": role})
            self.core.create_namespace(client.V1Namespace(metadata=meta))

    def namespace(self, which: str) -> str:
        return self.main if which == "main" else self.other

    def close(self) -> None:
        for ns in (self.main, self.other):
            self.core.delete_collection_namespaced_pod(ns, grace_period_seconds=0)
            _ignore_not_found(self.core.delete_namespace, ns)
        # Gone for the schedulers too before the next round: see ``probe``.
        for ns in (self.main, self.other):
            wait_until(partial(self._empty, ns), timeout=30, interval=0.05, what=f"{ns} empty")

    def _empty(self, ns: str) -> bool:
        return not self.core.list_namespaced_pod(ns).items


def _ignore_not_found(delete: Any, *args: Any) -> None:
    try:
        delete(*args)
    except ApiException as error:
        if error.status != 404:
            raise


def _unpinned_manifest(spec: dict[str, Any], rnd: Round, example: str) -> dict[str, Any]:
    affinity = copy.deepcopy(spec["affinity"])
    for kind in ("podAffinity", "podAntiAffinity"):
        body = affinity.get(kind, {})
        terms = list(body.get("requiredDuringSchedulingIgnoredDuringExecution", []))
        terms += [
            w["podAffinityTerm"]
            for w in body.get("preferredDuringSchedulingIgnoredDuringExecution", [])
        ]
        for term in terms:
            if "namespaces" in term:
                term["namespaces"] = [rnd.other]
    # Every pod stays among this example's nodes (nodes of a test that leaked would
    # otherwise take part); a pod's own selector adds to it.
    selector = {EXAMPLE: example, **spec.get("node_selector", {})}
    manifest = pod_manifest(
        spec["name"],
        cpu=spec["cpu"],
        memory=spec["memory"],
        scheduler=rnd.scheduler,
        node_selector=selector,
        tolerations=spec["tolerations"] or None,
        affinity=affinity or None,
        labels=dict(spec["labels"]),
        extra_spec={"topologySpreadConstraints": spec["spread"]} if spec["spread"] else None,
    )
    if spec["missing_pvc"]:
        manifest["spec"]["volumes"] = [
            {"name": "data", "persistentVolumeClaim": {"claimName": "missing"}}
        ]
    return manifest


def _pin(manifest: dict[str, Any], node_index: int) -> dict[str, Any]:
    resources = manifest["spec"]["containers"][0]["resources"]
    resources["requests"][f"{PIN}{node_index}"] = "1"
    resources["limits"][f"{PIN}{node_index}"] = "1"
    return manifest


# -- running one example ------------------------------------------------------------------


@dataclass
class Verdict:
    node: str | None
    message: str = ""
    seconds: float = 0.0


def settle(core: Any, ns: str, name: str) -> Verdict:
    """Wait until the pod is bound or PodScheduled=False; a Pending pod is deleted."""

    def check() -> Verdict | None:
        pod = core.read_namespaced_pod(name, ns)
        if pod.spec.node_name:
            return Verdict(pod.spec.node_name)
        for c in pod.status.conditions or []:
            if c.type == "PodScheduled" and c.status == "False":
                return Verdict(None, c.message or "")
        return None

    started = time.monotonic()
    verdict = wait_until(check, timeout=60, interval=0.05, what=f"{ns}/{name} settled")
    assert verdict is not None
    verdict.seconds = round(time.monotonic() - started, 2)
    if verdict.node is None:
        core.delete_namespaced_pod(name, ns, grace_period_seconds=0)
        wait_until(lambda: not _exists(core, ns, name), timeout=30, interval=0.05, what="deleted")
    return verdict


def _exists(core: Any, ns: str, name: str) -> bool:
    try:
        core.read_namespaced_pod(name, ns)
    except ApiException as error:
        if error.status == 404:
            return False
        raise
    return True


def probe(rnd: Round, node_index: int) -> None:
    """A pod for ``rnd.scheduler`` pinned to the example's last node, bound and deleted.

    Each scheduler sees nodes and pods through one watch per kind, in order: once it has
    bound this pod to the newest node, it has seen every node before it and the previous
    example's nodes gone; once it has seen this pod, the previous round's pods deleted.
    """
    manifest = _pin(
        pod_manifest(
            "probe",
            cpu="1m",
            memory=None,
            scheduler=rnd.scheduler,
            tolerations=[{"operator": "Exists"}],
        ),
        node_index,
    )
    rnd.core.create_namespaced_pod(rnd.main, manifest)
    # Bound at last, even if the scheduler saw the pod before the node (then it is retried
    # when the node arrives).
    wait_until(
        lambda: rnd.core.read_namespaced_pod("probe", rnd.main).spec.node_name,
        timeout=60,
        interval=0.05,
        what=f"{rnd.scheduler} placed the probe",
    )
    rnd.core.delete_namespaced_pod("probe", rnd.main, grace_period_seconds=0)
    wait_until(lambda: not _exists(rnd.core, rnd.main, "probe"), timeout=30, interval=0.05)


@dataclass
class Outcome:
    ours: dict[str, Verdict] = field(default_factory=dict)
    theirs: dict[str, Verdict] = field(default_factory=dict)
    mismatches: list[str] = field(default_factory=list)


def run_example(core: Any, example: dict[str, Any]) -> Outcome:
    tag = uuid.uuid4().hex[:6]
    node_names = [f"par-{tag}-n{n['index']}" for n in example["nodes"]]
    last = len(node_names) - 1
    for name, n in zip(node_names, example["nodes"], strict=True):
        manifest = node_manifest(
            name,
            cpu=n["cpu"],
            memory=n["memory"],
            pods=n["pods"],
            extra={f"{PIN}{n['index']}": "1000"},
            labels={**n["labels"], EXAMPLE: tag},
            taints=n["taints"],
        )
        core.create_node(client.V1Node.from_dict(manifest))
    node_index = {name: i for i, name in enumerate(node_names)}
    outcome = Outcome()
    try:
        ours = Round(core, OURS, tag)
        try:
            probe(ours, last)
            for spec in example["pods"]:
                ns = ours.namespace(spec["namespace"])
                core.create_namespaced_pod(ns, _unpinned_manifest(spec, ours, tag))
                outcome.ours[spec["name"]] = settle(core, ns, spec["name"])
        finally:
            ours.close()
        theirs = Round(core, THEIRS, tag)
        try:
            probe(theirs, last)
            for spec in example["pods"]:
                name = spec["name"]
                ns = theirs.namespace(spec["namespace"])
                mine = outcome.ours[name]
                manifest = _unpinned_manifest(spec, theirs, tag)
                if mine.node is not None:
                    _pin(manifest, node_index[mine.node])
                core.create_namespaced_pod(ns, manifest)
                verdict = settle(core, ns, name)
                outcome.theirs[name] = verdict
                problem = _compare(spec, mine, verdict)
                if problem:
                    outcome.mismatches.append(problem)
                    # The states part here: later verdicts would judge a different cluster.
                    break
        finally:
            theirs.close()
    finally:
        for name in node_names:
            _ignore_not_found(core.delete_node, name)
    return outcome


def _compare(spec: dict[str, Any], mine: Verdict, theirs: Verdict) -> str | None:
    name = spec["name"]
    if mine.node is not None:
        if theirs.node != mine.node:
            return f"{name}: we bound it to {mine.node}, kube-scheduler refuses: {theirs.message}"
        return None
    if theirs.node is not None:
        return f"{name}: we refused it ({mine.message}), kube-scheduler bound it to {theirs.node}"
    if mine.message != theirs.message:
        return (
            f"{name}: both refuse, in other words:\n ours: {mine.message}\n kube: {theirs.message}"
        )
    return None


# -- the test -----------------------------------------------------------------------------


def test_parity_with_kube_scheduler(core_api: Any, workload_scheduler: SchedulerProcess) -> None:
    mismatches: list[str] = []
    runs = [0]
    previous = [time.monotonic()]

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=SEED is None,
        database=None,
        # Shrinking re-runs examples against the live API server: far too slow. The failing
        # example is printed whole instead.
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )
    @given(examples())
    @example(issue_table()[0])
    @example(issue_table()[1])
    @example(issue_table()[2])
    @example(spread_corners()[0])
    @example(spread_corners()[1])
    @example(spread_corners()[2])
    @example(spread_corners()[3])
    def check(example: dict[str, Any]) -> None:
        runs[0] += 1
        started = time.monotonic()
        between = started - previous[0]
        outcome = run_example(core_api, example)
        bound = sum(v.node is not None for v in outcome.ours.values())
        print(
            f"parity example {runs[0]}: {len(example['nodes'])} nodes, {bound} of"
            f" {len(example['pods'])} pods bound, {len(outcome.mismatches)} mismatches,"
            f" {time.monotonic() - started:.1f}s (+{between:.1f}s before)",
            flush=True,
        )
        record = {
            "example": example,
            "mismatches": outcome.mismatches,
            "ours": {n: vars(v) for n, v in outcome.ours.items()},
            "theirs": {n: vars(v) for n, v in outcome.theirs.items()},
            "seconds": round(time.monotonic() - started, 1),
        }
        previous[0] = time.monotonic()
        if TRACE:
            with open(TRACE, "a") as out:
                out.write(json.dumps(record) + "\n")
        if not outcome.mismatches:
            return
        text = json.dumps(record, indent=1)
        if REPORT:
            with open(REPORT, "a") as out:
                out.write(json.dumps(record) + "\n")
            mismatches.extend(outcome.mismatches)
            return
        raise AssertionError(f"mismatch with kube-scheduler:\n{text}")

    if SEED is not None:
        check = seed(int(SEED))(check)
    print(f"parity: {EXAMPLES} generated examples, seed {SEED}", flush=True)
    try:
        check()
    finally:
        print(f"parity: {runs[0]} examples, {len(mismatches)} mismatches (seed {SEED})")
    assert not mismatches, "\n".join(mismatches)
