"""A pod's scheduling facts, computed once when it enters the scheduler.

Requests follow kube-scheduler (component-helpers ``PodRequests``):

* regular containers and sidecars (init containers with ``restartPolicy: Always``)
  run together, so they add up;
* a regular init container runs alone, next to the sidecars started before it;
  the pod needs the largest such step if it exceeds the steady state;
* pod-level ``spec.resources.requests`` replace the container-derived cpu/memory;
* ``spec.overhead`` (the RuntimeClass's cost) comes on top.
"""

from __future__ import annotations

from collections.abc import Mapping

from scheduler.framework.labels import SelectorError
from scheduler.framework.node_selectors import compile_preferred, compile_required
from scheduler.framework.pod_affinity import PodAffinityTerms, compile_pod_affinity
from scheduler.framework.signature import signature_of
from scheduler.framework.spread_constraints import SpreadError, compile_constraints
from scheduler.framework.types import PodInfo, ResourceList
from scheduler.model.objects import Container, Pod
from scheduler.model.quantity import CPU, EPHEMERAL_STORAGE, MEMORY, QuantityError, to_int

DEFAULT_MILLI_CPU_REQUEST = 100
"""What scores count for a container without a cpu request (kube-scheduler's value)."""
DEFAULT_MEMORY_REQUEST = 200 * 1024 * 1024
"""What scores count for a container without a memory request (200Mi)."""

_NON_ZERO_DEFAULTS: Mapping[str, int] = {
    CPU: DEFAULT_MILLI_CPU_REQUEST,
    MEMORY: DEFAULT_MEMORY_REQUEST,
}
# Only these may be set at pod level (PodLevelResources in v1.35).
_POD_LEVEL_RESOURCES = (CPU, MEMORY)
_FIRST = (CPU, MEMORY, EPHEMERAL_STORAGE)
_ANY_IP = "0.0.0.0"
_SIDECAR = "Always"


class InvalidPodError(ValueError):
    """A pod whose spec cannot be evaluated (e.g. a malformed quantity).

    Carries the pod key and the offending field so the caller can say so in an Event.
    """

    def __init__(self, pod_key: str, field: str, detail: str) -> None:
        super().__init__(f"pod {pod_key}: {field}: {detail}")
        self.pod_key = pod_key
        self.field = field
        self.detail = detail


def _parse(pod: Pod, path: str, amounts: Mapping[str, str]) -> dict[str, int]:
    parsed: dict[str, int] = {}
    for resource, text in amounts.items():
        try:
            parsed[resource] = to_int(resource, text)
        except QuantityError:
            raise InvalidPodError(
                pod.key, f"{path}[{resource}]", f"invalid quantity {text!r}"
            ) from None
    return parsed


def _container(
    pod: Pod, path: str, container: Container, defaults: Mapping[str, int] | None
) -> dict[str, int]:
    amounts = _parse(pod, f"{path}.resources.requests", container.resources.requests)
    if defaults:
        # Only a missing request gets the default; an explicit "0" stays 0.
        for resource, amount in defaults.items():
            if resource not in amounts:
                amounts[resource] = amount
    return amounts


def _add(total: dict[str, int], amounts: Mapping[str, int]) -> None:
    for resource, amount in amounts.items():
        total[resource] = total.get(resource, 0) + amount


def _raise_to(total: dict[str, int], amounts: Mapping[str, int]) -> None:
    for resource, amount in amounts.items():
        if resource not in total or amount > total[resource]:
            total[resource] = amount


def _pod_level_requests(pod: Pod) -> dict[str, str]:
    resources = pod.spec.resources
    if resources is None:
        return {}
    requests = resources.requests
    return {r: requests[r] for r in _POD_LEVEL_RESOURCES if r in requests}


def _aggregate(pod: Pod, defaults: Mapping[str, int] | None) -> dict[str, int]:
    """Requests per resource, zero amounts kept (their presence matters for defaults)."""
    spec = pod.spec
    total: dict[str, int] = {}
    for i, container in enumerate(spec.containers):
        _add(total, _container(pod, f"spec.containers[{i}]", container, defaults))
    sidecars: dict[str, int] = {}
    init_peak: dict[str, int] = {}
    for i, container in enumerate(spec.init_containers):
        amounts = _container(pod, f"spec.initContainers[{i}]", container, defaults)
        if container.restart_policy == _SIDECAR:
            # Keeps running beside the app containers; the init steps after it too.
            _add(total, amounts)
            _add(sidecars, amounts)
        else:
            _add(amounts, sidecars)
            _raise_to(init_peak, amounts)
    _raise_to(total, init_peak)
    total.update(_parse(pod, "spec.resources.requests", _pod_level_requests(pod)))
    if spec.overhead:
        _add(total, _parse(pod, "spec.overhead", spec.overhead))
    return total


def _ordered(amounts: Mapping[str, int]) -> ResourceList:
    """Non-zero amounts, cpu, memory and ephemeral-storage first, then by name: the
    order NodeResourcesFit reports insufficient resources in."""
    ordered: ResourceList = {}
    for resource in _FIRST:
        amount = amounts.get(resource, 0)
        if amount:
            ordered[resource] = amount
    for resource in sorted(amounts.keys() - _FIRST):
        amount = amounts[resource]
        if amount:
            ordered[resource] = amount
    return ordered


def pod_requests(pod: Pod) -> ResourceList:
    """Effective requests as NodeResourcesFit counts them; zero amounts omitted.

    Raises ``InvalidPodError`` on a malformed quantity.
    """
    return _ordered(_aggregate(pod, None))


def _non_zero(pod: Pod, requests: Mapping[str, int]) -> ResourceList:
    defaults = _NON_ZERO_DEFAULTS
    if _pod_level_requests(pod):
        # With pod-level requests upstream defaults only a resource that no
        # container, the pod level nor the overhead names at all.
        defaults = {r: a for r, a in defaults.items() if r not in requests}
    amounts = _aggregate(pod, defaults) if defaults else requests
    return {CPU: amounts.get(CPU, 0), MEMORY: amounts.get(MEMORY, 0)}


def non_zero_requests(pod: Pod) -> ResourceList:
    """cpu and memory as scores count them: a container without a cpu (memory)
    request counts as 100m (200Mi). Raises ``InvalidPodError``."""
    return _non_zero(pod, _aggregate(pod, None))


def host_ports(pod: Pod) -> frozenset[tuple[str, str, int]]:
    """(host IP, protocol, port) for every hostPort the pod holds while it runs.

    As upstream (``GetHostPorts``): app containers and sidecars; a regular init
    container's ports are released before the app starts, so they are not counted.
    """
    ports: set[tuple[str, str, int]] = set()
    spec = pod.spec
    for containers, sidecars_only in ((spec.init_containers, True), (spec.containers, False)):
        for container in containers:
            if sidecars_only and container.restart_policy != _SIDECAR:
                continue
            for port in container.ports:
                if port.host_port > 0:
                    ports.add((port.host_ip or _ANY_IP, port.protocol or "TCP", port.host_port))
    return frozenset(ports)


def pod_affinity_terms(pod: Pod) -> PodAffinityTerms | None:
    """Compiled inter-pod affinity; raises ``InvalidPodError`` on a malformed selector."""
    try:
        return compile_pod_affinity(pod)
    except SelectorError as exc:
        raise InvalidPodError(pod.key, "spec.affinity", str(exc)) from None


def check_spread_constraints(pod: Pod) -> None:
    """Raises ``InvalidPodError`` on a malformed topology spread selector, once, so that
    scheduling attempts never meet one."""
    constraints = pod.spec.topology_spread_constraints
    if constraints:
        try:
            compile_constraints(pod, constraints, "DoNotSchedule")
            compile_constraints(pod, constraints, "ScheduleAnyway")
        except SpreadError as exc:
            raise InvalidPodError(pod.key, "spec.topologySpreadConstraints", str(exc)) from None


def make_pod_info(pod: Pod) -> PodInfo:
    """Everything plugins read about ``pod``, computed once.

    Raises ``InvalidPodError`` (naming the pod and field) on a malformed quantity.
    """
    raw = _aggregate(pod, None)
    requests = _ordered(raw)
    non_zero = _non_zero(pod, raw)
    ports = host_ports(pod)
    check_spread_constraints(pod)
    return PodInfo(
        pod=pod,
        requests=requests,
        non_zero_requests=non_zero,
        host_ports=ports,
        signature=signature_of(pod, requests, non_zero, ports),
        node_affinity=compile_required(pod),
        node_preference=compile_preferred(pod),
        pod_affinity=pod_affinity_terms(pod),
    )
