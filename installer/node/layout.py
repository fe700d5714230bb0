"""Where kaudit's files live on a node (docs/design.md section 3). Pure values, no I/O.

A node's layout is a `NodeLayout` value, decided once per node (targets.connect.node_context, from its
flavor: targets.flavors) and handed to every reader; a NodeLayout names every path. The path constants
here are the kubeadm layout's parts, and the defaults of settings that are not layout (the audit log's path).
"""

from __future__ import annotations

import hashlib
import posixpath
from dataclasses import dataclass, replace

MANIFESTS_DIR = "/etc/kubernetes/manifests"
MANIFEST_NAME = "kube-apiserver.yaml"
AUDIT_DIR = "/etc/kubernetes/audit"
LOG_PATH = "/var/log/kubernetes/audit/audit.log"
STATE_DIR = "/var/lib/kaudit"
MINIKUBE_STATE_DIR = "/var/lib/minikube/kaudit"


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
    """The paths of one node; the state dir differs per flavor, the static pod path also per kubelet config."""

    manifests_dir: str  # where the static pod manifests are unless the kubelet config says otherwise
    manifest_name: str
    audit_dir: str  # kaudit's content-addressed policies and webhook configs
    state_dir: str  # kaudit's journal, backups, lock and guard
    kubelet_config: str  # the kubelet's config file (its staticPodPath)
    admin_kubeconfig: str  # the credentials the readiness probe uses where anonymous auth is off

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


KUBEADM = NodeLayout(manifests_dir=MANIFESTS_DIR, manifest_name=MANIFEST_NAME, audit_dir=AUDIT_DIR,
                     state_dir=STATE_DIR, kubelet_config="/var/lib/kubelet/config.yaml",
                     admin_kubeconfig="/etc/kubernetes/admin.conf")
# minikube runs kubeadm's layout, but only a few directories survive a VM restart (/var/lib/minikube does).
MINIKUBE = replace(KUBEADM, state_dir=MINIKUBE_STATE_DIR)
