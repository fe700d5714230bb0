"""Read side of the manifest module: container, flags, host paths, probe, audit info."""

from __future__ import annotations

import pytest

from installer.manifest.parse import ManifestError
from installer.manifest.read import read
from tests.corpus_files import MANIFESTS as CORPUS


def m(prefix: str) -> bytes:
    paths = sorted(CORPUS.glob(f"{prefix}-*.yaml"))
    assert paths, f"no corpus manifest {prefix}-*.yaml in {CORPUS}"
    return paths[0].read_bytes()


POD = b"""apiVersion: v1
kind: Pod
metadata:
  name: kube-apiserver
  namespace: kube-system
spec:
  containers:
  - name: sidecar
    image: busybox
    command: [sleep, "3600"]
  - name: api
    image: registry.k8s.io/kube-apiserver:v1.34.1
    command:
    - kube-apiserver
    - --secure-port
    - "8443"
    - --bind-address=10.1.2.3
    - --profiling
    - --audit-policy-file=/cfg/sub/policy.yaml
    - --audit-log-path=/logs/audit.log
    volumeMounts:
    - {mountPath: /cfg, name: cfg, readOnly: true}
    - {mountPath: /cfg/sub, name: sub, subPath: nested}
    - {mountPath: /logs/audit.log, name: logfile}
    - {mountPath: /empty, name: scratch}
  volumes:
  - {name: cfg, hostPath: {path: /etc/cfg}}
  - {name: sub, hostPath: {path: /srv/sub, type: Directory}}
  - {name: logfile, hostPath: {path: /var/log/a.log, type: FileOrCreate}}
  - {name: scratch, emptyDir: {}}
"""


def test_flags_both_forms_container_by_command_and_version() -> None:
    info = read(POD)
    assert info.container == "api" and info.pod_name == "kube-apiserver" and info.namespace == "kube-system"
    assert info.kubernetes_version == (1, 34)
    assert info.flags["--secure-port"] == "8443"
    assert info.flags["--bind-address"] == "10.1.2.3"
    assert info.flags["--profiling"] == "true"
    assert info.argv[0] == "kube-apiserver"


def test_host_path_mapping() -> None:
    info = read(POD)
    assert info.host_path("/cfg/x.yaml") == "/etc/cfg/x.yaml"
    assert info.host_path("/cfg/sub/p.yaml") == "/srv/sub/nested/p.yaml"  # deepest mount, subPath
    assert info.host_path("/logs/audit.log") == "/var/log/a.log"
    assert info.host_path("/empty/x") is None  # not a hostPath volume
    assert info.host_path("/nowhere/x") is None
    assert info.host_path("relative/x") is None


def test_audit_paths_file_mount_versus_directory_mount() -> None:
    info = read(POD)
    paths = {pc.flag: pc for pc in info.audit.paths}
    assert paths["--audit-policy-file"].host_path == "/srv/sub/nested/policy.yaml"
    assert paths["--audit-policy-file"].mount_is_directory is True
    log = paths["--audit-log-path"]
    assert log.mount_is_directory is False and log.read_only is False  # the file itself: breaks rotation
    assert not info.audit.managed and info.audit.foreign


def test_probe_from_flags_never_assumes_6443_blindly() -> None:
    info = read(POD)
    assert (info.probe.source, info.probe.host, info.probe.port, info.probe.scheme, info.probe.path) == (
        "flags", "10.1.2.3", 8443, "HTTPS", "/readyz")


def test_probe_selection_on_corpus() -> None:
    mk = read(m("009"))  # minikube listens on 8443
    probe = (mk.probe.source, mk.probe.port, mk.probe.scheme, mk.probe.path)
    assert probe == ("readinessProbe", 8443, "HTTPS", "/readyz")
    hk = read(m("018"))  # named probe port "local"
    assert (hk.probe.port, hk.probe.scheme, hk.probe.host) == (8080, "HTTP", "127.0.0.1")
    old = read(m("003"))  # liveness only
    assert old.probe.source == "livenessProbe" and old.probe.path == "/healthz"
    noprobe = read(m("019"))
    assert noprobe.probe.source == "flags" and noprobe.probe.port == 6443
    assert read(m("026")).probe.host == "127.0.0.1"  # --bind-address=0.0.0.0
    assert read(m("029")).probe.port == 443


def test_kops_go_runner_and_hyperkube() -> None:
    kops = read(m("029"))
    assert kops.argv[0] == "/go-runner" and "--log-file" not in kops.flags
    assert kops.flags["--secure-port"] == "443" and kops.kubernetes_version == (1, 35)
    hk = read(m("018"))
    assert hk.flags["--secure-port"] == "16443" and hk.kubernetes_version == (1, 8)
    args = read(m("033"))  # command + separate args
    assert args.flags["--bind-address"] == "0.0.0.0"


AUDITED = ["002", "011", "012", "014", "021", "022", "023", "029", "030", "031", "033", "035", "036"]


@pytest.mark.parametrize("prefix", AUDITED)
def test_audit_info_on_already_audited_corpus(prefix: str) -> None:
    info = read(m(prefix))
    assert not info.audit.managed and info.audit.foreign
    assert info.audit.profile is None and info.audit.policy_sha12 is None
    if prefix != "022":
        assert info.audit.flags
        assert list(info.audit.flags) == [k for k in info.flags if k.startswith("--audit-")]


def test_audit_info_details() -> None:
    p = {pc.flag: pc for pc in read(m("011")).audit.paths}
    assert p["--audit-policy-file"].mount_is_directory is False and p["--audit-policy-file"].read_only is True
    assert p["--audit-log-path"].mount_is_directory is True
    assert read(m("021")).audit.paths[0].host_path is None  # log path with no mount: events lost
    assert [pc.flag for pc in read(m("012")).audit.paths] == ["--audit-policy-file"]  # log to stdout
    assert read(m("012")).audit.flags["--audit-log-path"] == "-"
    kops = {pc.flag for pc in read(m("029")).audit.paths}
    assert "--audit-webhook-config-file" in kops
    assert any("auditlogfile" in f for f in read(m("022")).audit.foreign)


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"a: [1, 2", "not valid YAML"),
        (b"apiVersion: v1\nkind: Service\n", "not a v1 Pod"),
        (b"- 1\n", "not a mapping"),
        (b"", "empty"),
        (b"apiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - name: x\n    command: [etcd]\n", "no container"),
        (POD + b"---\n" + POD, "2 YAML documents"),
        (POD.replace(b"command: [sleep, \"3600\"]", b"command: [kube-apiserver]"), "several kube-apiserver"),
        (b"\xff\xfe", "UTF-8"),
    ],
)
def test_bad_input(data: bytes, match: str) -> None:
    with pytest.raises(ManifestError, match=match):
        read(data)
