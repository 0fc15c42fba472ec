"""API adapters: each turns one API's objects into ``scheduler.gang.model``.

- ``workloads``: Workload objects with ``spec.podGroups`` (native v1alpha1,
  Kubernetes 1.35; and our CRD of the same shape).
- ``podgroups``: standalone PodGroup objects (1.36 v1alpha2, 1.37 v1alpha3 and
  v1beta1); one adapter for every version of that shape.
- ``pods``: which group a pod belongs to, for every source.
- ``discovery``: which of these the cluster serves.
"""
