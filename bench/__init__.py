"""Benchmark: workload-scheduler against the real kube-scheduler on the same control plane.

``python -m bench.run --help``; see bench/README.md and docs/benchmarks.md.
"""
