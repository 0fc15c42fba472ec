"""Pod groups and gangs: one internal model, whatever API the cluster speaks.

``model`` is that model; ``registry`` keeps policies and members and decides
whether a member may be tried yet; ``placement`` finds nodes for a whole gang
against one view of the cluster, all or nothing.
"""
