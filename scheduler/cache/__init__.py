"""The scheduler's view of the cluster: nodes, the pods on them, and our assumptions."""
