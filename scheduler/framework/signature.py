"""Pod signatures: pods with equal signatures get equal filter and score results on
every node, so one evaluation can serve a whole batch of them.

The signature hashes (blake2b, 16 bytes) a canonical encoding of everything the
filter and score plugins read:

* ``spec.schedulerName`` and ``spec.nodeName``;
* the effective requests and the non-zero requests used by scores (so container
  layout, overhead and pod-level resources count only through their totals);
* ``spec.nodeSelector``;
* required and preferred node affinity;
* tolerations (sorted; ``tolerationSeconds`` left out, no filter reads it);
* host ports;
* ``spec.priority``;
* the container and init container images (ImageLocality).

Name, namespace, labels, annotations, owner and the workload reference / scheduling
group are deliberately left out: gang members differ only there and must batch.

There is no signature (``None``: schedule the pod on its own) when the pod's fit
depends on other pods or on objects the plugins here do not model:

* ``affinity.podAffinity`` or ``affinity.podAntiAffinity`` present;
* any ``topologySpreadConstraints``;
* any ``resourceClaims`` (DRA);
* a field we do not know (``Pod.unknown_field``, ``model.pod_fields``);
* a volume of any kind other than configMap, secret, emptyDir, downwardAPI and
  projected (PVCs, ephemeral and inline volumes bring zone/attach limits).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any, Final

import msgspec

from scheduler.framework.images import pod_images
from scheduler.model.objects import Pod, Toleration

_BATCHABLE_VOLUME_KEYS: Final = frozenset(
    {"name", "configMap", "secret", "emptyDir", "downwardAPI", "projected"}
)
_DIGEST_SIZE: Final = 16


def batchable(pod: Pod) -> bool:
    """Whether plain per-node checks decide this pod's placement (see module doc)."""
    if pod.unknown_field:
        return False  # refused by UnsupportedFeatures, on its own
    spec = pod.spec
    affinity = spec.affinity
    if affinity is not None and (
        affinity.pod_affinity is not None or affinity.pod_anti_affinity is not None
    ):
        return False
    if spec.topology_spread_constraints or spec.resource_claims:
        return False
    return all(_BATCHABLE_VOLUME_KEYS.issuperset(volume) for volume in spec.volumes)


def _toleration(t: Toleration) -> tuple[str, str, str, str]:
    # An empty operator means Equal; write it one way so both spellings batch.
    return (t.key, t.operator or "Equal", t.value, t.effect)


def signature_of(
    pod: Pod,
    requests: Mapping[str, int],
    non_zero: Mapping[str, int],
    host_ports: frozenset[tuple[str, str, int]],
) -> bytes | None:
    """The signature from already computed requests and ports (``make_pod_info``)."""
    if not batchable(pod):
        return None
    spec = pod.spec
    affinity = spec.affinity
    node_affinity = affinity.node_affinity if affinity is not None else None
    parts: list[Any] = [
        spec.scheduler_name,
        spec.node_name,
        spec.priority,
        sorted(requests.items()),
        sorted(non_zero.items()),
        sorted(spec.node_selector.items()),
        node_affinity,
        sorted({_toleration(t) for t in spec.tolerations}),
        sorted(host_ports),
        sorted(pod_images(pod)),
    ]
    encoded = msgspec.json.encode(parts, order="sorted")
    return hashlib.blake2b(encoded, digest_size=_DIGEST_SIZE).digest()
