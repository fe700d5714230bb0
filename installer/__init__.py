"""kaudit: Kubernetes API-server audit logging, switched on, changed or undone safely."""

__version__ = "0.1.0"
