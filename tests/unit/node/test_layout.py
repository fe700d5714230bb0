"""A node's layout is a value every reader is given (issue 20 item 7): the kubelet config and the admin
kubeconfig are its fields, no layout is made up by default, and the flavors' facts live in their values."""

from __future__ import annotations

import dataclasses
import subprocess
import typing
from pathlib import Path

import pytest

from installer.errors import InputError
from installer.manifest.export import FORMATS
from installer.manifest.read import Probe
from installer.node import facts, health, layout
from installer.targets import flavors
from installer.transport import Result, Transport


class ThisMachine(Transport):
    """The node scripts run here, as this user (the paths they read are the test's)."""

    def _run(self, command: str, stdin: bytes | None, timeout: float | None) -> Result:
        proc = subprocess.run(command, shell=True, input=stdin, capture_output=True, timeout=timeout, check=False)
        return Result(proc.returncode, proc.stdout, proc.stderr)


def test_a_layout_names_every_path_it_has() -> None:
    with pytest.raises(TypeError):
        layout.NodeLayout()  # type: ignore[call-arg]
    assert {f.name for f in dataclasses.fields(layout.NodeLayout)} >= {"kubelet_config", "admin_kubeconfig"}
    assert layout.KUBEADM.kubelet_config == "/var/lib/kubelet/config.yaml"
    assert layout.KUBEADM.admin_kubeconfig == "/etc/kubernetes/admin.conf"
    assert dataclasses.replace(layout.KUBEADM, state_dir="/var/lib/minikube/kaudit") == layout.MINIKUBE


def test_each_flavor_has_its_layout_and_the_flavors_are_the_export_formats() -> None:
    assert (flavors.KUBEADM.layout, flavors.KIND.layout, flavors.MINIKUBE.layout) == (
        layout.KUBEADM, layout.KUBEADM, layout.MINIKUBE)
    assert tuple(flavors.FLAVORS) == typing.get_args(flavors.FlavorName) == FORMATS
    with pytest.raises(InputError, match="kubeadm, minikube, kind"):
        flavors.get("k3s")


def test_gather_reads_the_kubelet_config_its_layout_names(tmp_path: Path) -> None:
    (tmp_path / "pods").mkdir()
    (tmp_path / "pods" / "kube-apiserver.yaml").write_text("kind: Pod\n")
    (tmp_path / "kubelet.yaml").write_text(f"staticPodPath: {tmp_path / 'pods'}\n")
    node = dataclasses.replace(layout.KUBEADM, manifests_dir="/nonexistent", state_dir=str(tmp_path / "state"),
                               audit_dir=str(tmp_path / "audit"), kubelet_config=str(tmp_path / "kubelet.yaml"))
    found = facts.gather(ThisMachine(), node)
    assert (found.static_pod_path, found.manifest) == (str(tmp_path / "pods"), b"kind: Pod\n")


def test_the_probe_takes_the_admin_kubeconfig_of_the_nodes_layout() -> None:
    node = dataclasses.replace(layout.KUBEADM, admin_kubeconfig="/etc/rancher/admin.conf")
    probe = Probe("https", "10.0.0.1", 6443, "/readyz", "readinessProbe")
    assert health.admin_kubeconfig_for(probe, node) == "/etc/rancher/admin.conf"
    assert health.admin_kubeconfig_for(dataclasses.replace(probe, to_itself=False), node) == ""
