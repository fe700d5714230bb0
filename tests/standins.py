"""Environments that put the `docker` and `minikube` stand-ins (tests/fakes/) in front of a test node, as
the real tools would present it: what a user's shell has on a machine with minikube or kind."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from tests.node.node import TestNode

FAKES = Path(__file__).parent / "fakes"


def minikube_env(node: TestNode, tmp_path: Path) -> dict[str, str]:
    """A docker-driver minikube profile `minikube` whose one node is `node` (the variables to add)."""
    mini = tmp_path / "mk" / ".minikube"
    profile = {"Name": "minikube", "Driver": "docker",
               "KubernetesConfig": {"KubernetesVersion": "v1.32.0", "ClusterName": "minikube"},
               "Nodes": [{"Name": "", "IP": "192.168.49.2", "Port": 8443, "ControlPlane": True, "Worker": True}]}
    (mini / "profiles" / "minikube").mkdir(parents=True)
    (mini / "profiles" / "minikube" / "config.json").write_text(json.dumps(profile))
    (mini / "machines" / "minikube").mkdir(parents=True)
    shutil.copy(node.key_path, mini / "machines" / "minikube" / "id_rsa")  # minikube's machine key
    state = tmp_path / "docker-state.json"
    state.write_text(json.dumps([{"name": "minikube", "labels": {}, "status": "Up 3 minutes",
                                  "ports": {"22/tcp": f"127.0.0.1:{node.ssh_port}"}}]))
    return {"PATH": f"{FAKES}{os.pathsep}{os.environ['PATH']}", "MINIKUBE_HOME": str(tmp_path / "mk"),
            "FAKE_DOCKER_STATE": str(state), "FAKE_MINIKUBE_LOG": str(tmp_path / "minikube.log"),
            "HOME": str(tmp_path)}  # no ~/.ssh here: minikube's key and its throwaway known_hosts only
