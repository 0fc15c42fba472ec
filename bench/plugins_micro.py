"""A micro-benchmark of the pod cycle (filter, score, pick) on an in-memory cluster.

It drives ``pick_node`` over the ``mixed`` workload's pods (bench.workloads) on a
``ClusterCache`` of N nodes, with batching and the node walk as the scheduler uses them, and
prints the CPU time per pod of each kind. No API server: this isolates the plugins'
cost (InterPodAffinity, PodTopologySpread) from the rest of the scheduler.

    python -m bench.plugins_micro --nodes 200 --pods 2000 [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import random
import time
from collections import defaultdict

import msgspec

from bench import workloads
from scheduler.cache.cluster_cache import ClusterCache
from scheduler.framework.batching import SignatureCache
from scheduler.framework.cycle import NodeWalk, Profile, pick_node
from scheduler.framework.podinfo import make_pod_info
from scheduler.model.objects import Node, Pod


def _kind(manifest: dict[str, object]) -> str:
    spec = manifest["spec"]
    assert isinstance(spec, dict)
    if "topologySpreadConstraints" in spec:
        return "spread"
    if "podAntiAffinity" in spec.get("affinity", {}):
        return "anti-affinity"
    return "other"


def run(node_count: int, pod_count: int) -> dict[str, tuple[int, float]]:
    """Kind -> (pods, CPU seconds) for one pass over the workload."""
    cache = ClusterCache()
    cache.set_namespace("default", {"kubernetes.io/metadata.name": "default"})
    for manifest in workloads.nodes(node_count):
        cache.set_node(msgspec.convert(manifest, Node))
    profile = Profile.default(cluster=cache)
    batch = SignatureCache()
    walk = NodeWalk()
    rng = random.Random(1)
    totals: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])
    for i, manifest in enumerate(workloads.mixed(pod_count, node_count).pods):
        manifest["metadata"]["namespace"] = "default"
        manifest["metadata"]["uid"] = f"uid-{i}"
        manifest["spec"]["schedulerName"] = "workload-scheduler"
        info = make_pod_info(msgspec.convert(manifest, Pod))
        start = time.process_time()
        node, _ = pick_node(profile, info, cache.nodes(), rng, batch, walk)
        if node is not None:
            cache.assume(info, node.name)
        spent = time.process_time() - start
        entry = totals[_kind(manifest)]
        entry[0] += 1
        entry[1] += spent
    return {k: (int(v[0]), v[1]) for k, v in totals.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=200)
    parser.add_argument("--pods", type=int, default=2000)
    parser.add_argument("--profile", action="store_true", help="print cProfile's top entries")
    args = parser.parse_args()
    profiler = cProfile.Profile() if args.profile else None
    if profiler:
        profiler.enable()
    result = run(args.nodes, args.pods)
    if profiler:
        profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
    pods = sum(n for n, _ in result.values())
    cpu = sum(s for _, s in result.values())
    for kind, (n, seconds) in sorted(result.items()):
        print(f"{kind:14} {n:6} pods {1000 * seconds / n:8.3f} ms/pod")
    print(f"{'all':14} {pods:6} pods {1000 * cpu / pods:8.3f} ms/pod (cycle only)")


if __name__ == "__main__":
    main()
