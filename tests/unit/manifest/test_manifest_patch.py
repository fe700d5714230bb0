"""Patcher edge cases beyond the corpus: created keys, conflicts, refusals, diff rendering."""

from __future__ import annotations

import json

import pytest

from installer.manifest.diff import unified_diff
from installer.manifest.parse import ManifestError
from installer.manifest.patch import AuditConfig, patch, unpatch
from installer.manifest.read import ANNOTATION, read
from installer.node import layout

CFG = AuditConfig(policy_file=layout.policy_path(b"p"), profile="cis")

BARE = b"""apiVersion: v1
kind: Pod
metadata:
    name: kube-apiserver   # no annotations, no volumes
    namespace: kube-system
spec:
    hostNetwork: true
    containers:
        -   name: kube-apiserver
            image: registry.k8s.io/kube-apiserver:v1.31.0
            command:
                -   kube-apiserver
                -   --etcd-servers=http://127.0.0.1:2379"""


def test_creates_missing_keys_in_the_file_style_and_removes_them_again() -> None:
    y = patch(BARE, CFG)
    assert unpatch(y) == BARE
    assert patch(y, CFG) == y
    text = y.decode()
    assert "\n    annotations:\n        kaudit.dev/audit: '{" in text
    assert "\n            volumeMounts:\n                -   mountPath: /etc/kubernetes/audit\n" in text
    assert "\n    volumes:\n        -   hostPath:\n" in text
    assert not y.endswith(b"\n")
    record = json.loads(read(y).audit.record and json.dumps(read(y).audit.record))
    assert record["created"] == ["volumeMounts", "volumes", "annotations"]
    assert record["profile"] == "cis" and record["policy"] == layout.sha12(b"p")
    assert record["flags"][0] == "--audit-policy-file"


def test_annotation_is_valid_json_listing_what_was_added() -> None:
    info = read(patch(BARE, CFG))
    assert info.audit.managed and info.audit.profile == "cis"
    assert info.audit.record["volumes"] == ["kaudit-policy", "kaudit-log"]
    assert set(info.audit.record["flags"]) == set(info.audit.flags)


def test_user_added_audit_flag_on_a_managed_manifest_is_foreign() -> None:
    y = patch(BARE, CFG)
    edited = y.replace(b"--etcd-servers=http://127.0.0.1:2379", b"--etcd-servers=http://127.0.0.1:2379\n"
                       b"                -   --audit-log-mode\n                -   blocking")
    assert read(edited).audit.foreign == ["flag --audit-log-mode=blocking"]
    with pytest.raises(ManifestError, match="--audit-log-mode=blocking"):
        patch(edited, CFG)
    adopted = patch(edited, CFG, adopt=True)
    assert "blocking" not in read(adopted).argv  # both items of the `--flag value` form went
    assert read(adopted).audit.record["adopted"] == ["flag --audit-log-mode blocking"]


def test_log_directory_already_mounted_differently_is_refused() -> None:
    x = patch(BARE, CFG)
    cfg = AuditConfig(policy_file=layout.policy_path(b"p"), log_path="/etc/kubernetes/audit/audit.log")
    with pytest.raises(ManifestError, match="read-only"):
        patch(x, cfg)


def test_existing_mount_on_the_same_path_is_refused_with_a_description() -> None:
    src = BARE + b"""
            volumeMounts:
                -   mountPath: /var/log/custom
                    name: logs
                    readOnly: true
    volumes:
        -   name: logs
            hostPath:
                path: /srv/elsewhere
"""
    with pytest.raises(ManifestError, match="already mounted by volumeMount 'logs'"):
        patch(src, AuditConfig(policy_file=layout.policy_path(b"p"), log_path="/var/log/custom/a.log"))


def test_relative_paths_are_refused() -> None:
    with pytest.raises(ManifestError, match="absolute"):
        patch(BARE, AuditConfig(policy_file="policy.yaml"))


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b'{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a"}, "spec": {"containers": '
         b'[{"name": "a", "image": "i", "command": ["kube-apiserver", "--v=2"]}]}}', "JSON"),
        (BARE.replace(b"name: kube-apiserver   #", b"name: &n kube-apiserver   #"), "anchors"),
        (BARE.replace(b"\n", b"\r"), "line breaks"),
    ],
)
def test_unsafe_shapes(data: bytes, match: str) -> None:
    with pytest.raises(ManifestError, match=match):
        patch(data, CFG)


def test_unpatch_of_an_unmanaged_manifest_changes_nothing() -> None:
    assert unpatch(BARE) == BARE


def test_unified_diff_plain_and_coloured() -> None:
    y = patch(BARE, CFG)
    plain = unified_diff(BARE, y, "kube-apiserver.yaml", color=False)
    assert plain.startswith("--- a/kube-apiserver.yaml\n+++ b/kube-apiserver.yaml\n")
    assert "+                -   --audit-policy-file=" in plain and "\x1b[" not in plain
    assert "\\ No newline at end of file" in plain
    coloured = unified_diff(BARE, y, "kube-apiserver.yaml", color=True)
    assert "\x1b[32m+" in coloured
    assert unified_diff(y, y, "x", color=True) == ""


def test_webhook_config_in_another_directory_gets_its_own_read_only_mount() -> None:
    cfg = AuditConfig(policy_file=layout.policy_path(b"p"), webhook_config_file="/etc/falco/webhook.kubeconfig")
    info = read(patch(BARE, cfg))
    wh = next(pc for pc in info.audit.paths if pc.flag == "--audit-webhook-config-file")
    assert wh.host_path == "/etc/falco/webhook.kubeconfig" and wh.read_only is True
    assert info.audit.record["volumes"] == ["kaudit-policy", "kaudit-webhook", "kaudit-log"]
    assert ANNOTATION == "kaudit.dev/audit"
