"""The ``workload-scheduler`` command: run, dev-cluster, demo."""
