"""Controllers that run beside the scheduler, on kopf, while it leads.

- ``jobs``: Jobs that opt in with the ``workload-scheduler.io/gang`` annotation become
  group objects (a PodGroup, a Workload or our Workload CRD), owned by the Job.
"""
