"""Pod groups and gangs: one internal model, whatever API the cluster speaks.

``model`` is that model and ``membership`` reads which group a pod names;
``registry`` keeps policies and members and decides whether a member may be
tried yet; ``placement`` finds nodes for a whole gang against one view of the
cluster, all or nothing; ``messages`` and ``status`` say what happened. Builds on
``framework`` and ``cache``; never imports ``api`` (whose ``sources`` adapt each
API's objects into this model).
"""
