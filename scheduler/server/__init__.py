"""The scheduler's HTTP endpoints: health for probes, metrics for Prometheus.

``endpoints`` runs the servers; ``auth`` decides who may read ``/metrics`` (TokenReview
and SubjectAccessReview, cached); ``tls`` keeps the serving certificate current.
"""

from scheduler.server.endpoints import serve

__all__ = ["serve"]
