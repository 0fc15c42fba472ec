"""Watch events on Jobs become Job-index updates.

The scheduler reads Jobs only to know whether their pods are gang members (the
``workload-scheduler.io/gang`` annotation and the group object the Job controller
recorded): a small struct per Job (``scheduler.model.objects.Job``), nothing of the
pod template. When what a Job means for its pods changes, the pods that waited
on it are looked at again.
"""

from __future__ import annotations

from collections.abc import Callable

from scheduler.api.watch import DELETED
from scheduler.gang.jobs import JobEntry, JobIndex, job_entry
from scheduler.model.objects import Job


def entry_of(job: Job) -> JobEntry:
    meta = job.metadata
    return job_entry(
        meta.namespace,
        meta.name,
        meta.uid,
        meta.annotations,
        parallelism=job.spec.parallelism,
        completions=job.spec.completions,
        has_scheduling=job.spec.scheduling is not None,
    )


class JobEvents:
    def __init__(self, index: JobIndex, on_change: Callable[[list[str]], None]) -> None:
        self.index = index
        self.on_change = on_change
        """Called with the uids of Jobs whose pods should be looked at again."""

    def replace(self, items: list[Job]) -> None:
        keep = {(job.metadata.namespace, job.metadata.name) for job in items}
        for ns, name in [k for k in self.index.names() if k not in keep]:
            self.index.delete(ns, name)
        changed = [
            job.metadata.uid
            for job in items
            if self.index.set(job.metadata.namespace, job.metadata.name, entry_of(job))
        ]
        self.on_change(changed)

    def apply(self, event_type: str, job: Job) -> None:
        meta = job.metadata
        if event_type == DELETED:
            self.index.delete(meta.namespace, meta.name)
        elif self.index.set(meta.namespace, meta.name, entry_of(job)):
            self.on_change([meta.uid])
