"""Activity processor: Kubernetes audit logs and Events to human-readable activity timelines."""

__version__ = "0.1.0"
