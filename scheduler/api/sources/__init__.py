"""API adapters: each turns one API's objects into ``scheduler.gang.model``.

- ``shapes``: the JSON shapes of Workload objects (native v1alpha1, Kubernetes
  1.35, and our CRD of the same shape) and standalone PodGroup objects (1.36
  v1alpha2, 1.37 v1alpha3 and v1beta1), as far as scheduling reads them.
- ``policies``: those objects -> ``GroupObject``, validated, with a message for
  a broken one.
- ``discovery``: which of these APIs the cluster serves.

Which group a pod belongs to is read from the pod alone: ``scheduler.gang.membership``.
"""
