"""Prometheus metrics, named as kube-scheduler names them where it has a counterpart."""

from scheduler.metrics.registry import Metrics

__all__ = ["Metrics"]
