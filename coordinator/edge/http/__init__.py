"""The HTTP edge: the REST API under /api/v1, Prometheus /metrics, /healthz and /readyz, over the
same domain the gRPC edge calls."""
