"""API objects as small msgspec structs decoded from raw JSON.

Field names are the API's, in snake_case (``rename="camel"`` maps them back).
Unknown fields are ignored by the decoder, so these stay valid across
Kubernetes versions; only what filters, scores, gangs and bookkeeping read is
declared here.
"""

from __future__ import annotations

from typing import Any

import msgspec


class _Obj(msgspec.Struct, rename="camel", omit_defaults=True, kw_only=True):
    pass


class OwnerReference(_Obj):
    api_version: str = ""
    kind: str = ""
    name: str = ""
    uid: str = ""
    controller: bool = False


class ObjectMeta(_Obj):
    name: str = ""
    namespace: str = ""
    uid: str = ""
    resource_version: str = ""
    generation: int = 0
    labels: dict[str, str] = {}
    annotations: dict[str, str] = {}
    creation_timestamp: str | None = None
    deletion_timestamp: str | None = None
    owner_references: list[OwnerReference] = []


class NodeSelectorRequirement(_Obj):
    key: str
    operator: str
    values: list[str] = []


class NodeSelectorTerm(_Obj):
    match_expressions: list[NodeSelectorRequirement] = []
    match_fields: list[NodeSelectorRequirement] = []


class NodeSelector(_Obj):
    node_selector_terms: list[NodeSelectorTerm] = []


class PreferredSchedulingTerm(_Obj):
    weight: int
    preference: NodeSelectorTerm


class NodeAffinity(_Obj):
    required_during_scheduling_ignored_during_execution: NodeSelector | None = None
    preferred_during_scheduling_ignored_during_execution: list[PreferredSchedulingTerm] = []


class LabelSelectorRequirement(_Obj):
    key: str
    operator: str  # In, NotIn, Exists, DoesNotExist
    values: list[str] = []


class LabelSelector(_Obj):
    """``{}`` selects everything; an absent (None) selector selects nothing."""

    match_labels: dict[str, str] = {}
    match_expressions: list[LabelSelectorRequirement] = []


class PodAffinityTerm(_Obj):
    label_selector: LabelSelector | None = None
    namespaces: list[str] = []
    topology_key: str = ""
    namespace_selector: LabelSelector | None = None
    match_label_keys: list[str] = []
    mismatch_label_keys: list[str] = []


class WeightedPodAffinityTerm(_Obj):
    weight: int
    pod_affinity_term: PodAffinityTerm


class PodAffinity(_Obj):
    """``podAffinity`` and ``podAntiAffinity`` have the same shape."""

    required_during_scheduling_ignored_during_execution: list[PodAffinityTerm] = []
    preferred_during_scheduling_ignored_during_execution: list[WeightedPodAffinityTerm] = []


class Affinity(_Obj):
    node_affinity: NodeAffinity | None = None
    pod_affinity: PodAffinity | None = None
    pod_anti_affinity: PodAffinity | None = None


class TopologySpreadConstraint(_Obj):
    max_skew: int
    topology_key: str
    when_unsatisfiable: str  # DoNotSchedule | ScheduleAnyway
    label_selector: LabelSelector | None = None
    min_domains: int | None = None
    node_affinity_policy: str | None = None  # Honor (default) | Ignore
    node_taints_policy: str | None = None  # Ignore (default) | Honor
    match_label_keys: list[str] = []


class Toleration(_Obj):
    key: str = ""
    operator: str = ""  # "" means Equal
    value: str = ""
    effect: str = ""  # "" matches every effect
    toleration_seconds: int | None = None


class Taint(_Obj):
    key: str
    effect: str
    value: str = ""


class ResourceRequirements(_Obj):
    requests: dict[str, str] = {}
    limits: dict[str, str] = {}


class ContainerPort(_Obj):
    container_port: int = 0
    host_port: int = 0
    host_ip: str = msgspec.field(default="", name="hostIP")
    protocol: str = "TCP"


class Container(_Obj):
    name: str = ""
    image: str = ""
    resources: ResourceRequirements = msgspec.field(default_factory=ResourceRequirements)
    ports: list[ContainerPort] = []
    restart_policy: str | None = None  # "Always" on an init container = sidecar


class WorkloadReference(_Obj):
    """``spec.workloadRef`` (Kubernetes 1.35, scheduling.k8s.io/v1alpha1)."""

    name: str = ""
    pod_group: str = ""
    pod_group_replica_key: str = ""


class PodSchedulingGroup(_Obj):
    """``spec.schedulingGroup`` (Kubernetes 1.36 and later)."""

    pod_group_name: str | None = None


class PodSpec(_Obj):
    node_name: str = ""
    scheduler_name: str = "default-scheduler"
    node_selector: dict[str, str] = {}
    affinity: Affinity | None = None
    tolerations: list[Toleration] = []
    containers: list[Container] = []
    init_containers: list[Container] = []
    overhead: dict[str, str] = {}
    resources: ResourceRequirements | None = None  # pod-level resources
    priority: int = 0
    priority_class_name: str = ""
    preemption_policy: str = ""  # "" (PreemptLowerPriority) | "Never"
    scheduling_gates: list[dict[str, Any]] = []
    topology_spread_constraints: list[TopologySpreadConstraint] = []
    volumes: list[dict[str, Any]] = []
    resource_claims: list[dict[str, Any]] = []
    workload_ref: WorkloadReference | None = None
    scheduling_group: PodSchedulingGroup | None = None


class PodCondition(_Obj):
    type: str
    status: str
    reason: str = ""
    message: str = ""


class PodStatus(_Obj):
    phase: str = ""
    conditions: list[PodCondition] = []
    nominated_node_name: str = ""
    start_time: str | None = None


class Pod(_Obj):
    metadata: ObjectMeta = msgspec.field(default_factory=ObjectMeta)
    spec: PodSpec = msgspec.field(default_factory=PodSpec)
    status: PodStatus = msgspec.field(default_factory=PodStatus)
    unknown_field: str = msgspec.field(default="", name="workload-scheduler.io/unknownField")
    """Not from the API (no Pod has a key by this name): the first field of a pending pod
    we do not know where it may matter for placement (``model.pod_fields``), or ""."""

    @property
    def key(self) -> str:
        return f"{self.metadata.namespace}/{self.metadata.name}"

    @property
    def uid(self) -> str:
        return self.metadata.uid

    @property
    def is_terminal(self) -> bool:
        return self.status.phase in ("Succeeded", "Failed")


class NodeSpec(_Obj):
    unschedulable: bool = False
    taints: list[Taint] = []


class ContainerImage(_Obj):
    names: list[str] = []
    size_bytes: int = 0


class NodeStatus(_Obj):
    allocatable: dict[str, str] = {}
    capacity: dict[str, str] = {}
    images: list[ContainerImage] = []


class Node(_Obj):
    metadata: ObjectMeta = msgspec.field(default_factory=ObjectMeta)
    spec: NodeSpec = msgspec.field(default_factory=NodeSpec)
    status: NodeStatus = msgspec.field(default_factory=NodeStatus)

    @property
    def name(self) -> str:
        return self.metadata.name


class Namespace(_Obj):
    metadata: ObjectMeta = msgspec.field(default_factory=ObjectMeta)


class ServiceSpec(_Obj):
    selector: dict[str, str] | None = None


class Service(_Obj):
    metadata: ObjectMeta = msgspec.field(default_factory=ObjectMeta)
    spec: ServiceSpec = msgspec.field(default_factory=ServiceSpec)


class ControllerSpec(_Obj):
    selector: LabelSelector | None = None


class Controller(_Obj):
    """A ReplicaSet or StatefulSet: only its pod selector is read."""

    metadata: ObjectMeta = msgspec.field(default_factory=ObjectMeta)
    spec: ControllerSpec = msgspec.field(default_factory=ControllerSpec)


class ReplicationControllerSpec(_Obj):
    selector: dict[str, str] | None = None


class ReplicationController(_Obj):
    metadata: ObjectMeta = msgspec.field(default_factory=ObjectMeta)
    spec: ReplicationControllerSpec = msgspec.field(default_factory=ReplicationControllerSpec)


class JobMeta(_Obj):
    name: str = ""
    namespace: str = ""
    uid: str = ""
    resource_version: str = ""
    annotations: dict[str, str] = {}


class JobSpec(_Obj):
    parallelism: int | None = None
    completions: int | None = None
    scheduling: dict[str, Any] | None = None
    """Kubernetes 1.37 ``WorkloadWithJob``: only whether it is set matters here."""


class Job(_Obj):
    """A ``batch/v1`` Job, as far as the scheduler reads it (which gang its pods join)."""

    metadata: JobMeta = msgspec.field(default_factory=JobMeta)
    spec: JobSpec = msgspec.field(default_factory=JobSpec)


class PriorityClass(_Obj):
    """A ``scheduling.k8s.io/v1`` PriorityClass: the value a class name stands for."""

    metadata: ObjectMeta = msgspec.field(default_factory=ObjectMeta)
    value: int = 0
    global_default: bool = False


class ListMeta(_Obj):
    resource_version: str = ""
    continue_: str = msgspec.field(default="", name="continue")


def decode_pod(data: bytes) -> Pod:
    return _pod_decoder.decode(data)


def decode_node(data: bytes) -> Node:
    return _node_decoder.decode(data)


_pod_decoder = msgspec.json.Decoder(Pod)
_node_decoder = msgspec.json.Decoder(Node)
