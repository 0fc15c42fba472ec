"""The scheduler proper: watch events in, scheduling cycles, binding cycles out.

``event_handlers`` (nodes, pods) and ``group_events`` (Workloads, PodGroups) turn watch
events into cache, queue and registry updates; ``group_sources`` finds which pod-group
APIs to watch. ``scheduler`` is the pod cycle and ``gang_cycle`` the gang cycle beside
it (upstream's ``schedule_one.go`` and ``schedule_one_podgroup.go``), sharing a
``context.CycleContext``; they reach the API only through ``interfaces`` (a binder and
a reporter), so unit tests drive them with fakes.
"""
