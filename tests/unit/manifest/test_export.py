"""`kaudit export`: the declarative equivalents, checked field by field.

kubeadm ClusterConfiguration fields as the kubeadm API reference documents them:
- v1beta3: https://kubernetes.io/docs/reference/config-api/kubeadm-config.v1beta3/
  (ClusterConfiguration.apiServer: APIServer = ControlPlaneComponent{extraArgs map[string]string,
  extraVolumes []HostPathMount} + certSANs, timeoutForControlPlane)
- v1beta4: https://kubernetes.io/docs/reference/config-api/kubeadm-config.v1beta4/
  (ControlPlaneComponent{extraArgs []Arg{name, value}, extraVolumes []HostPathMount, extraEnvs}
  + certSANs; v1beta4 was introduced, and made kubeadm's default, in 1.31)
- HostPathMount (both): name [Required] string, hostPath [Required] string, mountPath [Required]
  string, readOnly bool, pathType core/v1.HostPathType.
kind: https://kind.sigs.k8s.io/docs/user/configuration/ (kubeadmConfigPatches, extraMounts with
hostPath, containerPath, readOnly); minikube: `--extra-config=apiserver.<flag>=<value>` and file
sync from ~/.minikube/files (https://minikube.sigs.k8s.io/docs/handbook/filesync/).
"""

from __future__ import annotations

import os
import posixpath
import subprocess
from pathlib import Path
from typing import Any

import pytest

from installer.errors import InputError
from installer.manifest import export
from installer.manifest.patch import AuditConfig
from installer.node import layout
from installer.policy import profiles
from tests.paths import FAKES

HOST_PATH_TYPES = {"", "DirectoryOrCreate", "Directory", "FileOrCreate", "File", "Socket", "CharDevice", "BlockDevice"}
HOST_PATH_MOUNT = {"name", "hostPath", "mountPath", "readOnly", "pathType"}
HOST_PATH_MOUNT_REQUIRED = {"name", "hostPath", "mountPath"}
API_SERVER_FIELDS = {
    "kubeadm.k8s.io/v1beta3": {"extraArgs", "extraVolumes", "certSANs", "timeoutForControlPlane"},
    "kubeadm.k8s.io/v1beta4": {"extraArgs", "extraVolumes", "extraEnvs", "certSANs"},
}
ARG_FIELDS = {"name", "value"}
AUDIT_PATH_FLAGS = ("audit-policy-file", "audit-log-path")


def yaml_load(text: str) -> Any:
    from ruamel.yaml import YAML

    return YAML(typ="safe", pure=True).load(text)


@pytest.fixture(scope="module")
def rendered() -> profiles.RenderedPolicy:
    return profiles.render("recommended")


def settings(rendered: profiles.RenderedPolicy, version: tuple[int, int] | None, **kw: Any) -> export.Settings:
    log = rendered.profile.log
    return export.Settings(
        policy=rendered.text, profile="recommended", kubernetes_version=version,
        maxage=log.maxage, maxbackup=log.maxbackup, maxsize=log.maxsize, **kw,
    )


def check_cluster_configuration(doc: dict[str, Any], api_version: str) -> dict[str, str]:
    """Validate a ClusterConfiguration against the reference's fields; return the flags it sets."""
    assert doc["apiVersion"] == api_version
    assert doc["kind"] == "ClusterConfiguration"
    assert set(doc) == {"apiVersion", "kind", "apiServer"}
    api_server = doc["apiServer"]
    assert set(api_server) <= API_SERVER_FIELDS[api_version]
    args = api_server["extraArgs"]
    if api_version.endswith("v1beta4"):
        assert isinstance(args, list)
        for arg in args:
            assert set(arg) == ARG_FIELDS, arg  # both required
            assert isinstance(arg["name"], str) and isinstance(arg["value"], str)
            assert not arg["name"].startswith("-")
        flags = {a["name"]: a["value"] for a in args}
        assert len(flags) == len(args)
    else:
        assert isinstance(args, dict)
        assert all(isinstance(k, str) and isinstance(v, str) and not k.startswith("-") for k, v in args.items())
        flags = dict(args)
    mounts = api_server["extraVolumes"]
    assert isinstance(mounts, list)
    names = [m["name"] for m in mounts]
    assert len(set(names)) == len(names)
    for m in mounts:
        assert set(m) <= HOST_PATH_MOUNT and set(m) >= HOST_PATH_MOUNT_REQUIRED, m
        assert all(isinstance(m[k], str) and m[k].startswith("/") for k in ("hostPath", "mountPath"))
        assert isinstance(m.get("readOnly", False), bool)
        assert m.get("pathType", "") in HOST_PATH_TYPES
    for flag in AUDIT_PATH_FLAGS:
        path = flags[flag]
        if path == "-":
            continue
        mount = next(m for m in mounts if path.startswith(m["mountPath"].rstrip("/") + "/"))
        assert mount["pathType"] == "DirectoryOrCreate"  # directories: a mounted log file breaks rotation
        assert mount["readOnly"] is (flag == "audit-policy-file")
    return flags


@pytest.mark.parametrize(
    ("version", "api_version"),
    [
        ((1, 24), "kubeadm.k8s.io/v1beta3"),
        ((1, 30), "kubeadm.k8s.io/v1beta3"),
        ((1, 31), "kubeadm.k8s.io/v1beta4"),
        ((1, 34), "kubeadm.k8s.io/v1beta4"),
        (None, "kubeadm.k8s.io/v1beta4"),
    ],
)
def test_kubeadm_cluster_configuration(
    rendered: profiles.RenderedPolicy, version: tuple[int, int] | None, api_version: str
) -> None:
    result = export.export("kubeadm", settings(rendered, version))
    config, policy_file = result.files
    flags = check_cluster_configuration(yaml_load(config.text), api_version)
    # The exported name is never one kaudit creates itself, so no later change collects it (issue 24 item 1).
    node_policy = layout.exported_policy_path(rendered.text.encode())
    assert posixpath.basename(node_policy) != posixpath.basename(layout.policy_path(rendered.text.encode()))
    # exactly the flags kaudit's live edit puts into the manifest (the policy's name aside)
    expected = AuditConfig(policy_file=node_policy, profile="recommended").flags()
    assert list(flags.items()) == [(k.removeprefix("--"), v) for k, v in expected]
    assert flags["audit-log-path"] == layout.LOG_PATH
    assert (flags["audit-log-maxage"], flags["audit-log-maxbackup"], flags["audit-log-maxsize"]) == ("30", "10", "100")
    assert policy_file.text == rendered.text
    assert policy_file.path == posixpath.basename(node_policy)
    assert node_policy in config.text  # the comment says where to place it


def test_kubeadm_before_v1beta3_and_log_options(rendered: profiles.RenderedPolicy) -> None:
    old = export.export("kubeadm", settings(rendered, (1, 20)))
    assert yaml_load(old.files[0].text)["apiVersion"] == "kubeadm.k8s.io/v1beta2"
    with pytest.raises(InputError):
        export.export("kubeadm", settings(rendered, (1, 14)))
    stdout = export.export("kubeadm", settings(rendered, (1, 30), log_path="-"))
    doc = yaml_load(stdout.files[0].text)
    flags = check_cluster_configuration(doc, "kubeadm.k8s.io/v1beta3")
    assert flags["audit-log-path"] == "-" and "audit-log-maxage" not in flags
    assert [m["name"] for m in doc["apiServer"]["extraVolumes"]] == ["kaudit-policy"]
    custom = export.export("kubeadm", settings(rendered, (1, 34), log_path="/var/log/audit/k8s/audit.log"))
    doc = yaml_load(custom.files[0].text)
    check_cluster_configuration(doc, "kubeadm.k8s.io/v1beta4")
    assert doc["apiServer"]["extraVolumes"][1]["hostPath"] == "/var/log/audit/k8s"
    with pytest.raises(InputError, match="absolute"):
        export.export("kubeadm", settings(rendered, (1, 34), log_path="audit.log"))
    with pytest.raises(InputError, match="read-only"):
        export.export("kubeadm", settings(rendered, (1, 34), log_path="/etc/kubernetes/audit/audit.log"))


@pytest.mark.parametrize(
    ("version", "api_versions"),
    [
        ((1, 30), ["kubeadm.k8s.io/v1beta3"]),
        ((1, 35), ["kubeadm.k8s.io/v1beta3"]),
        ((1, 36), ["kubeadm.k8s.io/v1beta3", "kubeadm.k8s.io/v1beta4"]),
        (None, ["kubeadm.k8s.io/v1beta3", "kubeadm.k8s.io/v1beta4"]),
    ],
)
def test_kind_config(
    rendered: profiles.RenderedPolicy, version: tuple[int, int] | None, api_versions: list[str]
) -> None:
    result = export.export("kind", settings(rendered, version))
    config, policy_file = result.files
    doc = yaml_load(config.text)
    assert (doc["kind"], doc["apiVersion"]) == ("Cluster", "kind.x-k8s.io/v1alpha4")
    patches = [yaml_load(p) for p in doc["kubeadmConfigPatches"]]
    assert [p["apiVersion"] for p in patches] == api_versions
    flag_sets = [check_cluster_configuration(p, p["apiVersion"]) for p in patches]
    assert all(f == flag_sets[0] for f in flag_sets)
    [control_plane] = doc["nodes"]
    assert control_plane["role"] == "control-plane"
    mounts = {m["containerPath"]: m for m in control_plane["extraMounts"]}
    volumes = patches[0]["apiServer"]["extraVolumes"]
    for volume in volumes:  # every directory the API server mounts exists in the node container
        assert volume["hostPath"] in mounts
        assert set(mounts[volume["hostPath"]]) <= {"hostPath", "containerPath", "readOnly", "selinuxRelabel",
                                                   "propagation"}
    policy_dir = posixpath.dirname(flag_sets[0]["audit-policy-file"])
    assert policy_file.path == f"{mounts[policy_dir]['hostPath'].removeprefix('./')}/" + posixpath.basename(
        flag_sets[0]["audit-policy-file"]
    )
    assert mounts[posixpath.dirname(layout.LOG_PATH)]["hostPath"] == "./kind-audit-logs"


def test_minikube(rendered: profiles.RenderedPolicy, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MINIKUBE_HOME", raising=False)
    result = export.export("minikube", settings(rendered, (1, 34)))
    script, policy_file = result.files
    extra = [line.strip().rstrip(" \\") for line in script.text.splitlines() if "--extra-config=" in line]
    flags = dict(line.removeprefix("--extra-config=apiserver.").split("=", 1) for line in extra)
    assert flags == {"audit-policy-file": f"/etc/ssl/certs/{policy_file.path}", "audit-log-path": "-"}
    assert policy_file.path == f"kaudit-policy-{layout.sha12(rendered.text.encode())}.yaml"
    assert f'cp {policy_file.path} "$HOME/.minikube/files/etc/ssl/certs/{policy_file.path}"' in script.text
    with pytest.raises(InputError, match="mounts no writable host directory"):
        export.export("minikube", settings(rendered, (1, 34), log_path="/var/log/kubernetes/audit/audit.log"))
    monkeypatch.setenv("MINIKUBE_HOME", "/srv/mk")
    assert export.minikube_files_dir() == "/srv/mk/.minikube/files"
    monkeypatch.setenv("MINIKUBE_HOME", "/srv/mk/.minikube")
    assert export.minikube_files_dir() == "/srv/mk/.minikube/files"


def test_minikube_script_runs_against_a_fake_home(
    rendered: profiles.RenderedPolicy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The printed script places the policy where minikube's file sync picks it up."""
    monkeypatch.setenv("MINIKUBE_HOME", str(tmp_path / "home"))
    result = export.export("minikube", settings(rendered, None))
    out = tmp_path / "out"
    result.write(str(out))
    fakes = FAKES
    stub = tmp_path / "bin"
    stub.mkdir()
    (stub / "minikube").write_text('#!/bin/sh\nprintf "%s\\n" "$@" > "$MINIKUBE_HOME/args"\n')
    (stub / "minikube").chmod(0o755)
    env = {**os.environ, "PATH": f"{stub}{os.pathsep}{fakes}{os.pathsep}/usr/bin:/bin"}
    subprocess.run(["sh", "minikube-audit.sh"], cwd=out, env=env, check=True)
    synced = tmp_path / "home" / ".minikube" / "files" / "etc" / "ssl" / "certs" / result.files[1].path
    assert synced.read_text() == rendered.text
    args = (tmp_path / "home" / "args").read_text().split()
    assert args[0] == "start" and f"--extra-config=apiserver.audit-policy-file=/etc/ssl/certs/{synced.name}" in args


