"""Which pod fields we know: a pod that uses one we do not is refused, not misplaced.

``scheduler.model.objects`` ignores unknown fields, so a pod using a placement field
that a newer Kubernetes adds would be placed as if the field were not there. To refuse
it instead (``workload-scheduler does not support pod field spec.X yet``), the raw JSON
of every pending pod is checked once, when it arrives from the API, against the fields
of ``PodSpec`` as of Kubernetes 1.37 (``k8s.io/api`` ``core/v1``):

- every top-level ``spec`` field must be known: we cannot tell whether a new one
  matters for placement, so a pod using one is refused (the irrelevant fields we know,
  ``dnsPolicy``, ``securityContext`` and the rest, are allowed);
- inside the structures placement reads (``affinity`` and every term in it,
  ``topologySpreadConstraints``, ``tolerations``, pod and container ``resources``,
  container ``ports``, ``resourceClaims``, ``schedulingGates``, ``workloadRef``,
  ``schedulingGroup``) every field must be known too;
- elsewhere (a container's probes, env, security context, ...) anything goes.

``volumes`` are not checked here: a volume source kind we do not know never makes a
pod batchable (``signature.batchable``) and the volume plugins decide about it.

``inspect_pod`` runs beside the watch's decode (``Reflector(inspect=...)``) and notes
the field on the pod (``Pod.unknown_field``); the ``UnsupportedFeatures`` plugin refuses
the pod, and such a pod is never batched (``signature.batchable``).

The check is a second decode of the same bytes into structs that forbid unknown
fields and keep nothing (``msgspec.Raw`` for every value not looked into): it skips
over the JSON and allocates almost nothing. ``python -m bench.pod_fields`` measures
it beside the main decode: about half of its cost, for pending pods only (on a
2,600-byte pod from a Deployment: 9.5 us to decode, 5.3 us to check).
"""

from __future__ import annotations

import re
from typing import Final

import msgspec

from scheduler.model.objects import Pod

_Raw = msgspec.Raw
_EMPTY: Final = msgspec.Raw()


class _Known(msgspec.Struct, rename="camel", forbid_unknown_fields=True, kw_only=True):
    pass


class _Open(msgspec.Struct, rename="camel", kw_only=True):
    """A structure where unknown fields do not matter for placement."""


class _NodeSelectorRequirement(_Known):
    key: _Raw = _EMPTY
    operator: _Raw = _EMPTY
    values: _Raw = _EMPTY


class _NodeSelectorTerm(_Known):
    match_expressions: list[_NodeSelectorRequirement] | None = None
    match_fields: list[_NodeSelectorRequirement] | None = None


class _NodeSelector(_Known):
    node_selector_terms: list[_NodeSelectorTerm] | None = None


class _PreferredSchedulingTerm(_Known):
    weight: _Raw = _EMPTY
    preference: _NodeSelectorTerm | None = None


class _NodeAffinity(_Known):
    required_during_scheduling_ignored_during_execution: _NodeSelector | None = None
    preferred_during_scheduling_ignored_during_execution: list[_PreferredSchedulingTerm] | None = (
        None
    )


class _LabelSelectorRequirement(_Known):
    key: _Raw = _EMPTY
    operator: _Raw = _EMPTY
    values: _Raw = _EMPTY


class _LabelSelector(_Known):
    match_labels: _Raw = _EMPTY
    match_expressions: list[_LabelSelectorRequirement] | None = None


class _PodAffinityTerm(_Known):
    label_selector: _LabelSelector | None = None
    namespaces: _Raw = _EMPTY
    topology_key: _Raw = _EMPTY
    namespace_selector: _LabelSelector | None = None
    match_label_keys: _Raw = _EMPTY
    mismatch_label_keys: _Raw = _EMPTY


class _WeightedPodAffinityTerm(_Known):
    weight: _Raw = _EMPTY
    pod_affinity_term: _PodAffinityTerm | None = None


class _PodAffinity(_Known):
    required_during_scheduling_ignored_during_execution: list[_PodAffinityTerm] | None = None
    preferred_during_scheduling_ignored_during_execution: list[_WeightedPodAffinityTerm] | None = (
        None
    )


class _Affinity(_Known):
    node_affinity: _NodeAffinity | None = None
    pod_affinity: _PodAffinity | None = None
    pod_anti_affinity: _PodAffinity | None = None


class _TopologySpreadConstraint(_Known):
    max_skew: _Raw = _EMPTY
    topology_key: _Raw = _EMPTY
    when_unsatisfiable: _Raw = _EMPTY
    label_selector: _LabelSelector | None = None
    min_domains: _Raw = _EMPTY
    node_affinity_policy: _Raw = _EMPTY
    node_taints_policy: _Raw = _EMPTY
    match_label_keys: _Raw = _EMPTY


class _Toleration(_Known):
    key: _Raw = _EMPTY
    operator: _Raw = _EMPTY
    value: _Raw = _EMPTY
    effect: _Raw = _EMPTY
    toleration_seconds: _Raw = _EMPTY


class _ResourceClaim(_Known):
    name: _Raw = _EMPTY
    request: _Raw = _EMPTY


class _ResourceRequirements(_Known):
    limits: _Raw = _EMPTY
    requests: _Raw = _EMPTY
    claims: list[_ResourceClaim] | None = None


class _ContainerPort(_Known):
    name: _Raw = _EMPTY
    host_port: _Raw = _EMPTY
    container_port: _Raw = _EMPTY
    protocol: _Raw = _EMPTY
    host_ip: _Raw = msgspec.field(default=_EMPTY, name="hostIP")


class _Container(_Open):
    resources: _ResourceRequirements | None = None
    ports: list[_ContainerPort] | None = None


class _PodResourceClaim(_Known):
    name: _Raw = _EMPTY
    resource_claim_name: _Raw = _EMPTY
    resource_claim_template_name: _Raw = _EMPTY


class _PodSchedulingGate(_Known):
    name: _Raw = _EMPTY


class _WorkloadReference(_Known):
    name: _Raw = _EMPTY
    pod_group: _Raw = _EMPTY
    pod_group_replica_key: _Raw = _EMPTY


class _PodSchedulingGroup(_Known):
    pod_group_name: _Raw = _EMPTY


class _PodSpec(_Known):
    # What placement reads, looked into.
    affinity: _Affinity | None = None
    topology_spread_constraints: list[_TopologySpreadConstraint] | None = None
    tolerations: list[_Toleration] | None = None
    containers: list[_Container] | None = None
    init_containers: list[_Container] | None = None
    resources: _ResourceRequirements | None = None
    resource_claims: list[_PodResourceClaim] | None = None
    scheduling_gates: list[_PodSchedulingGate] | None = None
    workload_ref: _WorkloadReference | None = None
    """1.35 only (scheduling.k8s.io/v1alpha1)."""
    scheduling_group: _PodSchedulingGroup | None = None
    """1.36 and later."""
    # What placement reads as a whole (a map, a name, a number), or the volume plugins.
    node_selector: _Raw = _EMPTY
    node_name: _Raw = _EMPTY
    scheduler_name: _Raw = _EMPTY
    priority: _Raw = _EMPTY
    priority_class_name: _Raw = _EMPTY
    preemption_policy: _Raw = _EMPTY
    overhead: _Raw = _EMPTY
    volumes: _Raw = _EMPTY
    # Known, and no filter or score upstream reads them.
    ephemeral_containers: _Raw = _EMPTY
    restart_policy: _Raw = _EMPTY
    termination_grace_period_seconds: _Raw = _EMPTY
    active_deadline_seconds: _Raw = _EMPTY
    dns_policy: _Raw = _EMPTY
    service_account_name: _Raw = _EMPTY
    service_account: _Raw = _EMPTY
    automount_service_account_token: _Raw = _EMPTY
    host_network: _Raw = _EMPTY
    """Its containers' hostPorts are defaulted by the API server; NodePorts reads those."""
    host_pid: _Raw = msgspec.field(default=_EMPTY, name="hostPID")
    host_ipc: _Raw = msgspec.field(default=_EMPTY, name="hostIPC")
    share_process_namespace: _Raw = _EMPTY
    security_context: _Raw = _EMPTY
    image_pull_secrets: _Raw = _EMPTY
    hostname: _Raw = _EMPTY
    subdomain: _Raw = _EMPTY
    host_aliases: _Raw = _EMPTY
    dns_config: _Raw = _EMPTY
    readiness_gates: _Raw = _EMPTY
    runtime_class_name: _Raw = _EMPTY
    """Its scheduling constraints and overhead are copied into the pod by admission."""
    enable_service_links: _Raw = _EMPTY
    set_hostname_as_fqdn: _Raw = msgspec.field(default=_EMPTY, name="setHostnameAsFQDN")
    os: _Raw = _EMPTY
    host_users: _Raw = _EMPTY
    hostname_override: _Raw = _EMPTY
    eviction_responders: _Raw = _EMPTY
    """On kubernetes/api master after 1.37 (eviction, not placement)."""


class _PodCheck(msgspec.Struct):
    spec: _PodSpec | None = None


_decoder: Final = msgspec.json.Decoder(_PodCheck)
_UNKNOWN: Final = re.compile(r"^Object contains unknown field `([^`]*)` - at `\$\.?(.*)`$")


def unknown_field(raw: bytes | memoryview) -> str | None:
    """The first pod field in ``raw`` (a pod's JSON) that we do not know where it could
    matter for placement, as a path (``spec.affinity.nodeAffinity.foo``), or None."""
    try:
        _decoder.decode(raw)
    except msgspec.ValidationError as exc:
        match = _UNKNOWN.match(str(exc))
        if match is None:
            return None  # a malformed value: the main decode and the plugins judge it
        name, where = match.groups()
        return f"{where}.{name}" if where else name
    return None


def inspect_pod(raw: msgspec.Raw, pod: Pod) -> None:
    """Note on a pending pod the first field we do not know (``Pod.unknown_field``).
    A pod with a node is not ours to place: it is not checked."""
    if not pod.spec.node_name:
        pod.unknown_field = unknown_field(raw) or ""
