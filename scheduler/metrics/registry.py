"""The scheduler's metrics, on a registry of its own (one per scheduler instance).

Names, label sets and buckets follow kube-scheduler v1.35
(``pkg/scheduler/metrics``) so existing dashboards and alerts work; metrics
without an upstream counterpart carry the ``workload_scheduler_`` prefix.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from scheduler.metrics.loop import LoopMonitor

SCHEDULED, UNSCHEDULABLE, ERROR = "scheduled", "unschedulable", "error"


def _exp(start: float, factor: float, count: int) -> list[float]:
    return [start * factor**i for i in range(count)]


class _PendingPods(Collector):
    """``scheduler_pending_pods{queue}`` read from the queue at scrape time."""

    def __init__(self, counts: Callable[[], dict[str, int]]) -> None:
        self._counts = counts

    def collect(self):  # type: ignore[no-untyped-def]
        family = GaugeMetricFamily(
            "scheduler_pending_pods",
            "Number of pending pods, by the queue type.",
            labels=["queue"],
        )
        for queue, count in self._counts().items():
            family.add_metric([queue], count)
        yield family


class _Batching(Collector):
    """Signature-cache use: per-node results reused vs. computed."""

    def __init__(self, counts: Callable[[], tuple[int, int]]) -> None:
        self._counts = counts

    def collect(self):  # type: ignore[no-untyped-def]
        reused, computed = self._counts()
        family = CounterMetricFamily(
            "workload_scheduler_signature_cache_node_results",
            "Per-node filter and score results reused from the signature cache (hit) or "
            "computed (miss).",
            labels=["result"],
        )
        family.add_metric(["hit"], reused)
        family.add_metric(["miss"], computed)
        yield family


class _Reports(Collector):
    """The reporter's backlog and what it had to drop, read at scrape time."""

    def __init__(self, pending: Callable[[], int], dropped: Callable[[], int]) -> None:
        self._pending = pending
        self._dropped = dropped

    def collect(self):  # type: ignore[no-untyped-def]
        yield GaugeMetricFamily(
            "workload_scheduler_reports_pending",
            "Events and status writes waiting to be written (retried through API outages).",
            value=self._pending(),
        )
        yield CounterMetricFamily(
            "workload_scheduler_reports_dropped",
            "Events and status writes dropped, oldest first, because too many were waiting.",
            value=self._dropped(),
        )


class Metrics:
    def __init__(self, profile: str = "workload-scheduler") -> None:
        self.profile = profile
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.schedule_attempts = Counter(
            "scheduler_schedule_attempts",
            "Number of attempts to schedule pods, by the result.",
            ["result", "profile"],
            registry=r,
        )
        self.attempt_duration = Histogram(
            "scheduler_scheduling_attempt_duration_seconds",
            "Scheduling attempt latency in seconds (scheduling algorithm + binding).",
            ["result", "profile"],
            buckets=_exp(0.001, 2, 15),
            registry=r,
        )
        self.algorithm_duration = Histogram(
            "scheduler_scheduling_algorithm_duration_seconds",
            "Scheduling algorithm latency in seconds.",
            buckets=_exp(0.001, 2, 15),
            registry=r,
        )
        self.sli_duration = Histogram(
            "scheduler_pod_scheduling_sli_duration_seconds",
            "E2e latency for a pod being scheduled, from the time the pod enters the "
            "scheduling queue until it is bound.",
            ["attempts"],
            buckets=_exp(0.01, 2, 20),
            registry=r,
        )
        self.pod_attempts = Histogram(
            "scheduler_pod_scheduling_attempts",
            "Number of attempts to successfully schedule a pod.",
            buckets=_exp(1, 2, 5),
            registry=r,
        )
        self.extension_point_duration = Histogram(
            "scheduler_framework_extension_point_duration_seconds",
            "Latency for running all plugins of a specific extension point.",
            ["extension_point", "status", "profile"],
            buckets=_exp(0.0001, 2, 12),
            registry=r,
        )
        self.queue_incoming = Counter(
            "scheduler_queue_incoming_pods",
            "Number of pods added to scheduling queues by event and queue type.",
            ["queue", "event"],
            registry=r,
        )
        self.permit_wait_duration = Histogram(
            "scheduler_permit_wait_duration_seconds",
            "Duration of waiting on permit.",
            ["result"],
            buckets=_exp(0.001, 2, 15),
            registry=r,
        )
        self.cache_size = Gauge(
            "scheduler_cache_size",
            "Number of nodes, pods, and assumed (bound) pods in the scheduler cache.",
            ["type"],
            registry=r,
        )
        self.watch_errors = Counter(
            "workload_scheduler_watch_errors",
            "Watch or list requests that failed and were retried, by resource path.",
            ["resource"],
            registry=r,
        )
        self.bind_errors = Counter(
            "workload_scheduler_bind_errors",
            "Binding requests that failed, by HTTP status reason.",
            ["reason"],
            registry=r,
        )

        self.podgroup_attempts = Counter(
            "scheduler_podgroup_schedule_attempts",
            "Number of attempts to schedule pod groups (gangs), by the result.",
            ["result", "profile"],
            registry=r,
        )
        self.gang_admission = Histogram(
            "workload_scheduler_gang_admission_duration_seconds",
            "From a gang's placement to its last member bound.",
            buckets=_exp(0.01, 2, 16),
            registry=r,
        )
        self.gang_timeouts = Counter(
            "workload_scheduler_gang_timeouts",
            "Gangs not fully bound within their timeout.",
            registry=r,
        )
        self.loop = LoopMonitor(r)
        """Event-loop lag; ``App`` runs ``loop.run()`` as a task of its own."""

    def watch_batching(self, counts: Callable[[], tuple[int, int]]) -> None:
        self.registry.register(_Batching(counts))

    def watch_gangs(self, waiting: Callable[[], int]) -> None:
        gauge = Gauge(
            "workload_scheduler_gangs_waiting",
            "Gangs with members waiting: gated for quorum or not placeable yet.",
            registry=self.registry,
        )
        gauge.set_function(waiting)

    def watch_reports(self, pending: Callable[[], int], dropped: Callable[[], int]) -> None:
        self.registry.register(_Reports(pending, dropped))

    def watch_queue(self, counts: Callable[[], dict[str, int]]) -> None:
        self.registry.register(_PendingPods(counts))

    def attempt(self, result: str, seconds: float) -> None:
        self.schedule_attempts.labels(result, self.profile).inc()
        self.attempt_duration.labels(result, self.profile).observe(seconds)
