"""Events and pod conditions on a real API server, when reporting lags behind scheduling."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

from tests.e2e.conftest import NodeFactory
from tests.e2e.k8s import events_for, pod_manifest, wait_until
from tests.e2e.scheduler_process import SchedulerProcess


def _metric(proc: SchedulerProcess, name: str, labels: str) -> float:
    for line in proc.metrics().splitlines():
        if line.startswith(f"{name}{{") and labels in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def _pod_scheduled(core: Any, ns: str, name: str) -> str:
    pod = core.read_namespaced_pod(name, ns)
    return next(
        (c.status for c in pod.status.conditions or [] if c.type == "PodScheduled"), "missing"
    )


def test_a_bound_pod_never_keeps_pod_scheduled_false(
    core_api: Any, namespace: str, node_factory: NodeFactory, kubeconfig: str, tmp_path: Path
) -> None:
    """Reports wait behind a small request budget (5/s); pods reported unschedulable bind
    before their FailedScheduling report is written. The late PodScheduled=False must not
    overwrite the binding's True."""
    name = f"lag-{uuid.uuid4().hex[:6]}"
    zone = {"lag-test": name}
    budget = ("--kube-api-qps", "5", "--kube-api-burst", "5")
    proc = SchedulerProcess(kubeconfig, tmp_path, *budget, name=name).start()
    try:
        names = [f"p-{i}" for i in range(12)]
        for pod in names:
            core_api.create_namespaced_pod(
                namespace, pod_manifest(pod, scheduler=name, node_selector=zone)
            )
        wait_until(
            lambda: (
                _metric(proc, "scheduler_schedule_attempts_total", 'result="unschedulable"')
                >= len(names)
            ),
            what="every pod tried (and its FailedScheduling report queued)",
        )
        node_factory(f"{name}-node", cpu="8", memory="16Gi", labels=zone)

        def scheduled_events() -> bool:
            return all(
                any(e.reason == "Scheduled" for e in events_for(core_api, namespace, pod))
                for pod in names
            )

        # Reports are written in order: once every Scheduled event is there, every
        # FailedScheduling report queued before it has been written too.
        wait_until(scheduled_events, timeout=60, interval=1, what="every Scheduled event")
        time.sleep(2)  # the last few writes (4 at a time) still landing
        conditions = {pod: _pod_scheduled(core_api, namespace, pod) for pod in names}
        assert set(conditions.values()) == {"True"}, conditions
    finally:
        proc.stop()
