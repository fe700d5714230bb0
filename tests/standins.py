"""Stand-ins for what surrounds a node. Environments that put the `docker`, `minikube` and `kubectl`
stand-ins (tests/fakes/) in front of a test node, as the real tools would present it: what a user's
shell has on a machine with minikube, kind or a kubeconfig. And a loopback HTTPS server that records
the credentials it is sent."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

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


def kube_node(name: str, internal_ip: str | None = None, hostname: str | None = None, *,
              control_plane: bool = True, external_ip: str | None = None) -> dict[str, Any]:
    """A Node object as `kubectl get nodes -o json` prints it (the fields kube:// reads, and a few it must skip)."""
    labels = {"kubernetes.io/hostname": hostname or name, "kubernetes.io/os": "linux"}
    if control_plane:
        labels["node-role.kubernetes.io/control-plane"] = ""
    addresses = [{"type": "ExternalIP", "address": external_ip}] if external_ip else []
    if internal_ip:
        addresses.append({"type": "InternalIP", "address": internal_ip})
    if hostname:
        addresses.append({"type": "Hostname", "address": hostname})
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": labels, "uid": f"uid-{name}", "resourceVersion": "4242"},
            "spec": {"podCIDR": "10.244.0.0/24"},
            "status": {"addresses": addresses,
                       "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}],
                       "nodeInfo": {"kubeletVersion": "v1.30.2", "osImage": "Debian GNU/Linux 12"}}}


def kubectl_env(tmp_path: Path, contexts: dict[str, dict[str, Any]], current: str | None = None) -> dict[str, str]:
    """The `kubectl` stand-in first on PATH, answering for `contexts` (tests/fakes/kubectl documents a context's
    spec); its calls are logged to tmp_path/kubectl.log (one JSON argv per line)."""
    state = tmp_path / "kube-contexts.json"
    state.write_text(json.dumps({"current-context": current or next(iter(contexts), None), "contexts": contexts}))
    return {"PATH": f"{FAKES}{os.pathsep}{os.environ['PATH']}", "FAKE_KUBECTL_CONTEXTS": str(state),
            "FAKE_KUBECTL_LOG": str(tmp_path / "kubectl.log")}


def kubectl_calls(tmp_path: Path) -> list[list[str]]:
    log = tmp_path / "kubectl.log"
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def docker_unavailable() -> str | None:
    if shutil.which("docker") is None:
        return "no docker command on PATH"
    try:
        proc = subprocess.run(["docker", "info"], capture_output=True, text=True, timeout=20, check=False)
    except subprocess.TimeoutExpired:
        return "`docker info` did not answer within 20 s"
    if proc.returncode != 0:
        lines = (proc.stderr or proc.stdout).strip().splitlines()
        return f"no Docker engine: `docker info` failed ({lines[-1] if lines else proc.returncode})"
    return None


class Recorder401:
    """An HTTPS server on loopback that answers 401 and keeps every Authorization header it is sent."""

    def __init__(self) -> None:
        import http.server
        import ssl
        import tempfile
        import threading

        from tests.node import seed

        cert, key = seed.make_tls()
        self.dir = tempfile.mkdtemp()
        (crt, k) = (f"{self.dir}/c.pem", f"{self.dir}/k.pem")
        open(crt, "wb").write(cert)  # noqa: SIM115 (two small files)
        open(k, "wb").write(key)  # noqa: SIM115
        self.ca = cert
        self.requests: list[str | None] = []
        seen = self.requests

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                seen.append(self.headers.get("Authorization"))
                self.send_response(401)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(crt, k)
        self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
