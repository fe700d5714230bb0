"""Flavors: discovery of kind and minikube nodes, flavor detection, persistence caveats.

Discovery runs against stand-in `minikube` and `docker` scripts (tests/fakes/) put first on PATH.
They answer from a real minikube profile tree (MINIKUBE_HOME/.minikube/profiles/<p>/config.json,
machines/<m>/id_rsa, as minikube lays it out) and a container list, printing what the real
commands print: `minikube profile list -o json`, `minikube -p P ip -n NODE`,
`minikube -p P ssh-key -n NODE`, `docker ps ... --format`, `docker port NODE 22/tcp`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from installer.errors import InputError, KauditError, NodeError
from installer.node import layout
from installer.targets import flavors
from installer.targets.connect import open_transport
from installer.targets.parse import Cluster, parse_target
from installer.transport.ssh import SSHOptions
from tests.paths import FAKES


def _node(name: str, ip: str, control_plane: bool) -> dict[str, Any]:
    return {
        "Name": name, "IP": ip, "Port": 8443, "KubernetesVersion": "v1.34.0", "ContainerRuntime": "docker",
        "ControlPlane": control_plane, "Worker": True,
    }


def make_profile(home: Path, profile: str, driver: str, nodes: list[dict[str, Any]]) -> None:
    """The files minikube itself writes for a profile (the fields discovery reads, and some around them)."""
    mini = home / ".minikube"
    config = {
        "Name": profile, "KeepContext": False, "EmbedCerts": False, "Memory": 3072, "CPUs": 2, "DiskSize": 20000,
        "Driver": driver, "HyperkitVpnKitSock": "", "ContainerVolumeMounts": None,
        "KubernetesConfig": {
            "KubernetesVersion": "v1.34.0", "ClusterName": profile, "Namespace": "default",
            "APIServerHAVIP": "192.168.49.254" if sum(n["ControlPlane"] for n in nodes) > 1 else "",
            "APIServerName": "minikubeCA", "ContainerRuntime": "docker", "NetworkPlugin": "cni",
            "ServiceCIDR": "10.96.0.0/12", "ExtraOptions": None,
        },
        "Nodes": nodes, "Addons": {"default-storageclass": True, "storage-provisioner": True},
        "MultiNodeRequested": len(nodes) > 1, "StaticIP": "", "SSHIPAddress": "", "SSHUser": "root", "SSHKey": "",
        "SSHPort": 22,
    }
    pdir = mini / "profiles" / profile
    pdir.mkdir(parents=True)
    (pdir / "config.json").write_text(json.dumps(config, indent="\t"))
    for n in nodes:
        machine = profile if not n["Name"] else f"{profile}-{n['Name']}"
        mdir = mini / "machines" / machine
        mdir.mkdir(parents=True)
        (mdir / "id_rsa").write_text("-----BEGIN RSA PRIVATE KEY-----\n(test)\n-----END RSA PRIVATE KEY-----\n")
        (mdir / "id_rsa.pub").write_text("ssh-rsa AAAA test\n")
        (mdir / "config.json").write_text(json.dumps({"DriverName": driver, "Driver": {"MachineName": machine}}))


@pytest.fixture
def fake_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """PATH with only the stand-ins and the basic system tools; MINIKUBE_HOME and the docker state in tmp."""
    monkeypatch.setenv("PATH", f"{FAKES}{os.pathsep}/usr/bin{os.pathsep}/bin")
    monkeypatch.setenv("MINIKUBE_HOME", str(tmp_path / "mk"))
    monkeypatch.setenv("FAKE_MINIKUBE_LOG", str(tmp_path / "minikube.log"))
    monkeypatch.setenv("FAKE_DOCKER_STATE", str(tmp_path / "docker.json"))
    monkeypatch.delenv("KIND_EXPERIMENTAL_PROVIDER", raising=False)
    (tmp_path / "docker.json").write_text("[]")
    return tmp_path


def containers(tmp: Path, items: list[dict[str, Any]]) -> None:
    (tmp / "docker.json").write_text(json.dumps(items))


def kind_node(cluster: str, name: str, role: str, status: str = "Up 3 minutes") -> dict[str, Any]:
    labels = {flavors.KIND_CLUSTER_LABEL: cluster, flavors.KIND_ROLE_LABEL: role}
    return {"name": name, "labels": labels, "status": status}


# --- minikube ----------------------------------------------------------------------------------


def test_minikube_docker_driver_uses_published_ssh_port(fake_path: Path) -> None:
    make_profile(fake_path / "mk", "minikube", "docker", [_node("", "192.168.49.2", True)])
    containers(fake_path, [{"name": "minikube", "labels": {}, "status": "Up 1 minute",
                            "ports": {"22/tcp": "127.0.0.1:32772"}}])
    [spec] = flavors.discover(parse_target("minikube://"))
    assert spec.target.raw == "minikube://minikube/minikube"
    assert (spec.via, spec.host, spec.port, spec.user) == ("ssh", "127.0.0.1", 32772, "docker")
    assert spec.key_file == str(fake_path / "mk" / ".minikube" / "machines" / "minikube" / "id_rsa")
    assert spec.layout.state_dir == layout.MINIKUBE_STATE_DIR == "/var/lib/minikube/kaudit"
    assert "ssh-key -n minikube" in (fake_path / "minikube.log").read_text()


def test_minikube_vm_driver_uses_minikube_ip_and_port_22(fake_path: Path) -> None:
    make_profile(fake_path / "mk", "dev", "kvm2", [_node("", "192.168.39.10", True)])
    [spec] = flavors.discover(parse_target("minikube://dev"))
    assert (spec.host, spec.port, spec.user) == ("192.168.39.10", 22, "docker")
    assert "-p dev ip -n dev" in (fake_path / "minikube.log").read_text()


def test_minikube_ha_profile_yields_every_control_plane_not_workers(fake_path: Path) -> None:
    nodes = [_node("", "192.168.39.2", True), _node("m02", "192.168.39.3", True),
             _node("m03", "192.168.39.4", True), _node("m04", "192.168.39.5", False)]
    make_profile(fake_path / "mk", "ha", "kvm2", nodes)
    specs = flavors.discover(parse_target("minikube://ha"))
    assert [s.target.node for s in specs] == ["ha", "ha-m02", "ha-m03"]
    assert [s.host for s in specs] == ["192.168.39.2", "192.168.39.3", "192.168.39.4"]
    assert specs[1].key_file is not None and specs[1].key_file.endswith("machines/ha-m02/id_rsa")
    # one node, by minikube's short name or by machine name
    assert [s.target.node for s in flavors.discover(parse_target("minikube://ha/m02"))] == ["ha-m02"]
    assert [s.target.node for s in flavors.discover(parse_target("minikube://ha/ha-m03"))] == ["ha-m03"]
    with pytest.raises(InputError, match="m04 is not a control-plane node"):
        flavors.discover(parse_target("minikube://ha/m04"))
    with pytest.raises(InputError, match="no node m09"):
        flavors.discover(parse_target("minikube://ha/m09"))
    expanded = flavors.expand_cluster(Cluster("ha", [parse_target("minikube://ha")]))
    assert [t.raw for t in expanded.nodes] == ["minikube://ha/ha", "minikube://ha/ha-m02", "minikube://ha/ha-m03"]
    with pytest.raises(InputError, match="has 3 control-plane nodes"):
        flavors.resolve_node(parse_target("minikube://ha"))


def test_minikube_unknown_stopped_and_none_driver(fake_path: Path) -> None:
    make_profile(fake_path / "mk", "minikube", "docker", [_node("", "192.168.49.2", True)])
    with pytest.raises(InputError, match=r"no minikube profile named nope .profiles: minikube"):
        flavors.discover(parse_target("minikube://nope"))
    (fake_path / "mk" / ".minikube" / "profiles" / "minikube" / "fake-status").write_text("Stopped")
    with pytest.raises(NodeError, match="minikube start -p minikube"):
        flavors.discover(parse_target("minikube://"))
    make_profile(fake_path / "mk", "bare", "none", [_node("", "10.0.0.5", True)])
    [spec] = flavors.discover(parse_target("minikube://bare"))
    assert spec.via == "local"


def test_missing_commands_are_named(fake_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(fake_path / "empty"))
    with pytest.raises(InputError, match=r"^the minikube command is not installed or not on PATH"):
        flavors.discover(parse_target("minikube://"))
    with pytest.raises(InputError, match=r"^the docker command is not installed or not on PATH"):
        flavors.discover(parse_target("kind://"))
    monkeypatch.setenv("KIND_EXPERIMENTAL_PROVIDER", "podman")
    with pytest.raises(InputError, match=r"^the podman command is not installed"):
        flavors.discover(parse_target("kind://"))


def test_minikube_docker_driver_needs_docker(fake_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_profile(fake_path / "mk", "minikube", "docker", [_node("", "192.168.49.2", True)])
    only = tmp_path / "only-minikube"
    only.mkdir()
    (only / "minikube").symlink_to(FAKES / "minikube")
    monkeypatch.setenv("PATH", f"{only}{os.pathsep}/usr/bin{os.pathsep}/bin")
    if any(Path(d, "docker").exists() for d in ("/usr/bin", "/bin")):
        pytest.skip("a docker binary in /usr/bin would answer")
    with pytest.raises(InputError, match=r"the docker command is not installed.*publishes the node's SSH port"):
        flavors.discover(parse_target("minikube://"))


# --- kind ----------------------------------------------------------------------------------------


def test_kind_control_planes_by_label(fake_path: Path) -> None:
    containers(fake_path, [
        kind_node("dev", "dev-control-plane", "control-plane"),
        kind_node("dev", "dev-control-plane3", "control-plane"),
        kind_node("dev", "dev-control-plane2", "control-plane"),
        kind_node("dev", "dev-worker", "worker"),
        kind_node("dev", "dev-external-load-balancer", "external-load-balancer"),
        kind_node("other", "other-control-plane", "control-plane"),
    ])
    specs = flavors.discover(parse_target("kind://dev"))
    assert [s.container for s in specs] == ["dev-control-plane", "dev-control-plane2", "dev-control-plane3"]
    assert {(s.via, s.engine, s.flavor) for s in specs} == {("docker", "docker", "kind")}
    assert specs[0].target.raw == "kind://dev/dev-control-plane"
    [one] = flavors.discover(parse_target("kind://dev/dev-control-plane2"))
    assert one.container == "dev-control-plane2"
    with pytest.raises(InputError, match="dev-worker is not a control-plane node"):
        flavors.discover(parse_target("kind://dev/dev-worker"))
    with pytest.raises(InputError, match="no kind cluster named kind"):
        flavors.discover(parse_target("kind://"))


def test_kind_stopped_node_is_refused(fake_path: Path) -> None:
    containers(fake_path, [kind_node("kind", "kind-control-plane", "control-plane", "Exited (137) 2 hours ago")])
    with pytest.raises(NodeError, match=r"kind-control-plane is not running \(Exited"):
        flavors.discover(parse_target("kind://"))


def test_connect_kind_node_reports_engine_failure_in_one_line(fake_path: Path) -> None:
    containers(fake_path, [kind_node("kind", "kind-control-plane", "control-plane")])
    transport = open_transport(parse_target("kind://"), SSHOptions())
    assert transport.name == "kind://kind/kind-control-plane"
    with pytest.raises(NodeError) as exc:
        transport.run("true")
    assert "Cannot connect to the Docker daemon" in str(exc.value)
    assert "\n" not in str(exc.value)


# --- detection and caveats ---------------------------------------------------------------------------


KUBEADM_MANIFEST = b"""apiVersion: v1
kind: Pod
metadata:
  name: kube-apiserver
  namespace: kube-system
spec:
  containers:
  - name: kube-apiserver
    image: registry.k8s.io/kube-apiserver:v1.34.0
    command:
    - kube-apiserver
    - --advertise-address=10.0.0.11
    - --secure-port=6443
    - --client-ca-file=/etc/kubernetes/pki/ca.crt
"""


def _manifest(*flags: str) -> bytes:
    return KUBEADM_MANIFEST + b"".join(f"    - {f}\n".encode() for f in flags)


def test_flavor_from_node_facts() -> None:
    hints = flavors.NodeHints("cp1", frozenset({"/kind/version"}))
    assert flavors.flavor_evidence(hints) == (flavors.KIND, "/kind/version exists on the node")
    for mark in ("/var/lib/minikube/certs", "/var/lib/minikube/binaries"):
        hints = flavors.NodeHints("minikube-m02", frozenset({mark}))
        assert flavors.flavor_evidence(hints) == (flavors.MINIKUBE, f"{mark} exists on the node")
    assert flavors.flavor_evidence(flavors.NodeHints("cp1"))[0] is flavors.KUBEADM
    # Not evidence: kubeadm control planes are often named like kind's, and an empty /var/lib/minikube
    # can be a leftover (or, on the test nodes, a mount point).
    assert flavors.flavor_evidence(flavors.NodeHints("k8s-control-plane2"))[0] is flavors.KUBEADM
    assert flavors.flavor_evidence(flavors.NodeHints("cp1", frozenset({"/var/lib/minikube"})))[0] \
        is flavors.KUBEADM


def test_gather_hints_on_this_machine() -> None:
    from installer.transport.local import LocalTransport

    if os.geteuid() != 0:
        pytest.skip("LocalTransport needs root or passwordless sudo")
    hints, opening = flavors.gather_hints(LocalTransport())
    assert hints.hostname
    assert hints.paths <= set(flavors.HINT_PATHS)
    assert opening.layout == flavors.flavor_evidence(hints)[0].layout
    assert opening.facts.now > 0


@pytest.mark.parametrize(
    ("flavor", "words"),
    [
        (flavors.KUBEADM, ["kubeadm upgrade", "kubeadm-config", "ClusterConfiguration", "--format kubeadm"]),
        (flavors.MINIKUBE, ["minikube start", "/var/lib/minikube/kaudit", "--extra-config", "--format minikube"]),
        (flavors.KIND, ["kind create cluster", "kubeadmConfigPatches", "extraMounts", "--format kind"]),
    ],
)
def test_caveats_say_what_undoes_the_edit_and_how_to_keep_it(flavor: flavors.Flavor, words: list[str]) -> None:
    text = flavor.caveat()
    for word in words:
        assert word in text
    assert "\n" not in text
    assert f"--format {flavor.name}" in flavor.reverted_message()


def test_flavor_of_target_and_layouts() -> None:
    assert flavors.flavor_of_target(parse_target("kind://")) is flavors.KIND
    assert flavors.flavor_of_target(parse_target("minikube://")) is flavors.MINIKUBE
    assert flavors.flavor_of_target(parse_target("admin@cp1")) is flavors.KUBEADM
    assert flavors.KUBEADM.layout.state_dir == layout.STATE_DIR
    assert flavors.get("kind") is flavors.KIND
    with pytest.raises(KauditError):
        flavors.get("k3s")
