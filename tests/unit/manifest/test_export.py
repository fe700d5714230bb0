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




# --- export is the equivalent of enable (issue 20 item 1) -----------------------------------------

BARE_MANIFEST = b"""apiVersion: v1
kind: Pod
metadata:
  name: kube-apiserver
  namespace: kube-system
spec:
  hostNetwork: true
  containers:
  - name: kube-apiserver
    image: registry.k8s.io/kube-apiserver:v1.31.0
    command:
    - kube-apiserver
    - --etcd-servers=http://127.0.0.1:2379
"""
WEBHOOK_KUBECONFIG = """apiVersion: v1
kind: Config
clusters:
- name: falco
  cluster:
    server: https://falco.example:9765/k8s-audit
contexts:
- name: default
  context:
    cluster: falco
current-context: default
"""
LOG_PATHS = (layout.LOG_PATH, "/var/log/audit/k8s/audit.log", "-")
ROTATIONS = ((None, None, None), (7, 0, 1))
WEBHOOKS = ((False, None), (True, None), (True, "batch"), (True, "blocking"), (True, "blocking-strict"))
COMBINATIONS = [
    (log_path, rotation, log_format, log_compress, webhook, mode)
    for log_path in LOG_PATHS for rotation in ROTATIONS for log_format in (None, "json", "legacy")
    for log_compress in (None, True, False) for webhook, mode in WEBHOOKS
]


def _enable_side(inp: Any) -> tuple[dict[str, str], set[tuple[str, str, str, bool, str]]]:
    """The audit flags, and (volume, hostPath, mountPath, readOnly, type) of what `enable`'s patch adds."""
    from installer.change.plans import plan_enable
    from installer.manifest.read import load
    from installer.node.facts import NodeFacts

    facts = NodeFacts(static_pod_path=layout.MANIFESTS_DIR, manifest_path=f"{layout.MANIFESTS_DIR}/kube-apiserver.yaml",
                      manifest=BARE_MANIFEST, manifest_problem=None, now=0.0, free_kb=None)
    info = plan_enable(facts, load(BARE_MANIFEST), inp).after.info
    ours = set(info.audit.record["volumes"])
    vols = {v.name: v for v in info.volumes}
    mounts = {(m.name, vols[m.name].host_path or "", m.mount_path, m.read_only, vols[m.name].type)
              for m in info.mounts if m.name in ours}
    return {k: v for k, v in info.flags.items() if k.startswith("--audit-")}, mounts


def _as_enable_names(value: str) -> str:
    """An exported file's node path as enable names it: only the file names differ, by design."""
    directory, name = posixpath.split(value)
    if name.startswith("kaudit-policy-") or name.startswith("kaudit-webhook-"):  # minikube's file sync
        directory, name = layout.AUDIT_DIR, name.removeprefix("kaudit-")
    return posixpath.join(directory, name.removeprefix("exported-")) if directory else value


def _export_side(args: list[str], fmt: str) -> tuple[list[dict[str, str]], list[set[tuple[str, str, str, bool, str]]]]:
    """The flags and mounts of each configuration `kaudit export ARGS --format FMT` prints (kind: each patch)."""
    from typer.testing import CliRunner

    from installer.cli import app

    result = CliRunner().invoke(app, ["export", *args, "--format", fmt])
    assert result.exit_code == 0, (args, result.output, result.exception)
    if fmt == "minikube":
        extra = [line.removeprefix("# ").strip().rstrip(" \\") for line in result.stdout.splitlines()
                 if "--extra-config=" in line]
        flags = dict(line.removeprefix("--extra-config=apiserver.").split("=", 1) for line in extra)
        return [{f"--{k}": _as_enable_names(v) for k, v in flags.items()}], []
    first = yaml_load(result.stdout.split("\n---\n")[0])  # the configuration; the policy and webhook follow
    configs = [yaml_load(p) for p in first["kubeadmConfigPatches"]] if fmt == "kind" else [first]
    flag_sets, mount_sets = [], []
    for config in configs:
        flags = check_cluster_configuration(config, config["apiVersion"])
        flag_sets.append({f"--{k}": _as_enable_names(v) for k, v in flags.items()})
        mount_sets.append({(m["name"], m["hostPath"], m["mountPath"], m["readOnly"], m["pathType"])
                           for m in config["apiServer"]["extraVolumes"]})
    return flag_sets, mount_sets


SMALL_POLICY = "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n"  # quick to check


@pytest.mark.parametrize(("log_path", "rotation", "log_format", "log_compress", "webhook", "mode"), COMBINATIONS)
def test_export_yields_exactly_what_enable_writes(
    tmp_path: Path, log_path: str, rotation: tuple[int | None, int | None, int | None], log_format: str | None,
    log_compress: bool | None, webhook: bool, mode: str | None,
) -> None:
    """Every combination of enable's backend options: the `kaudit export` command enable prints to make it
    permanent yields exactly the audit flags, volumes and mounts enable's patch writes (kubeadm v1beta3 and
    v1beta4, both of kind's patches; minikube, which can mount nothing, the flags)."""
    from installer.policy.source import PolicySource

    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text(SMALL_POLICY)
    source = PolicySource.from_options(profile=None, sets=[], policy_file=str(policy_file))
    _check_equivalence(tmp_path, source, log_path, rotation, log_format, log_compress, webhook, mode)


@pytest.mark.parametrize("webhook", [False, True])
def test_export_of_a_profile_with_variables_is_what_enable_writes(tmp_path: Path, webhook: bool) -> None:
    """The profile's own rotation defaults and its variables reach both sides alike."""
    from installer.policy.source import PolicySource

    source = PolicySource.from_options(profile="cis", sets=["exclude_namespaces=ci,dev"], policy_file=None)
    _check_equivalence(tmp_path, source, layout.LOG_PATH, (None, 3, None), "json", True, webhook,
                       "blocking" if webhook else None)


def _check_equivalence(tmp_path: Path, source: Any, log_path: str, rotation: tuple[int | None, int | None, int | None],
                       log_format: str | None, log_compress: bool | None, webhook: bool, mode: str | None) -> None:
    import shlex

    from installer.change.plans import EnableInput, export_args

    kubeconfig = tmp_path / "falco webhook.kubeconfig"  # a space: the printed command quotes it
    kubeconfig.write_text(WEBHOOK_KUBECONFIG)
    inp = EnableInput(
        policy=source, log_path=log_path, maxage=rotation[0], maxbackup=rotation[1],
        maxsize=rotation[2], log_format=log_format, log_compress=log_compress,
        webhook_config=kubeconfig.read_bytes() if webhook else None, webhook_mode=mode,
        webhook_source=str(kubeconfig) if webhook else None,
    )
    flags, mounts = _enable_side(inp)
    args = shlex.split(export_args(inp))
    for fmt, version in (("kubeadm", "1.30"), ("kubeadm", "1.34"), ("kind", "1.36")):
        flag_sets, mount_sets = _export_side([*args, "--kubernetes-version", version], fmt)
        assert all(f == flags for f in flag_sets), (fmt, version, flag_sets, flags)
        assert all(m == mounts for m in mount_sets), (fmt, version, mount_sets, mounts)
    if log_path == "-":
        [minikube_flags], _ = _export_side(args, "minikube")
        assert minikube_flags == flags
