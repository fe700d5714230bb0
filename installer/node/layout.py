"""Where kaudit's files live on a node (docs/design.md section 3). Pure values, no I/O."""

from __future__ import annotations

import hashlib
import posixpath
from dataclasses import dataclass

MANIFESTS_DIR = "/etc/kubernetes/manifests"
MANIFEST_NAME = "kube-apiserver.yaml"
KUBELET_CONFIG = "/var/lib/kubelet/config.yaml"
AUDIT_DIR = "/etc/kubernetes/audit"
LOG_PATH = "/var/log/kubernetes/audit/audit.log"
STATE_DIR = "/var/lib/kaudit"
MINIKUBE_STATE_DIR = "/var/lib/minikube/kaudit"
ADMIN_KUBECONFIG = "/etc/kubernetes/admin.conf"


def sha12(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:12]


def policy_path(policy: bytes, audit_dir: str = AUDIT_DIR) -> str:
    """Content-addressed: a new policy is a new file and a new flag value, so the kubelet restarts."""
    return posixpath.join(audit_dir, f"policy-{sha12(policy)}.yaml")


def exported_policy_path(policy: bytes, audit_dir: str = AUDIT_DIR) -> str:
    """The name `kaudit export` gives a policy the operator places by hand: never one kaudit creates
    itself, so a change never removes (or collects) the file a kubeadm/kind configuration names."""
    return posixpath.join(audit_dir, f"exported-policy-{sha12(policy)}.yaml")


def webhook_config_path(kubeconfig: bytes, audit_dir: str = AUDIT_DIR) -> str:
    return posixpath.join(audit_dir, f"webhook-{sha12(kubeconfig)}.kubeconfig")


def exported_webhook_config_path(kubeconfig: bytes, audit_dir: str = AUDIT_DIR) -> str:
    """The name `kaudit export` gives a webhook kubeconfig the operator places by hand (as the policy's)."""
    return posixpath.join(audit_dir, f"exported-webhook-{sha12(kubeconfig)}.kubeconfig")


@dataclass(frozen=True)
class NodeLayout:
    """The paths of one node; the static pod path and state dir differ per flavor and kubelet config."""

    manifests_dir: str = MANIFESTS_DIR
    manifest_name: str = MANIFEST_NAME
    audit_dir: str = AUDIT_DIR
    state_dir: str = STATE_DIR

    @property
    def manifest(self) -> str:
        return posixpath.join(self.manifests_dir, self.manifest_name)

    @property
    def backups_dir(self) -> str:
        return posixpath.join(self.state_dir, "backups")

    @property
    def journal(self) -> str:
        return posixpath.join(self.state_dir, "journal")

    @property
    def lock(self) -> str:
        return posixpath.join(self.state_dir, "lock")


DEFAULT = NodeLayout()
