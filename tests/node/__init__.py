"""Real test nodes for kaudit: sshd + sudo + users + a kubelet/kube-apiserver simulator (docs/design.md §6)."""

from .node import SUDO_PASSWORD, USERS, TestNode, free_port, missing_requirements

__all__ = ["SUDO_PASSWORD", "USERS", "TestNode", "free_port", "missing_requirements"]
