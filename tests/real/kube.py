"""The real tier's helpers: requests to the real API server (as the admin or a less privileged user),
the kube-apiserver process on the node, the real audit log."""

from __future__ import annotations

import base64
import http.client
import json
import ssl
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.node.realnode import RealNode

MANIFEST = "/etc/kubernetes/manifests/kube-apiserver.yaml"
AUDIT_LOG = "/var/log/kubernetes/audit/audit.log"
VIEWER = ("kaudit-viewer", "kaudit-viewers")  # CN, O of the less privileged user's client certificate


@dataclass(frozen=True)
class Identity:
    name: str
    cert: Path
    key: Path


def admin_identity(node: RealNode, where: Path) -> Identity:
    """The admin kubeconfig's client certificate, as files."""
    doc = yaml.safe_load(node.kubeconfig.read_text())
    user = doc["users"][0]["user"]
    where.mkdir(parents=True, exist_ok=True)
    cert, key = where / "admin.crt", where / "admin.key"
    cert.write_bytes(base64.b64decode(user["client-certificate-data"]))
    key.write_bytes(base64.b64decode(user["client-key-data"]))
    key.chmod(0o600)
    return Identity("kubernetes-admin", cert, key)


def viewer_identity(node: RealNode, where: Path) -> Identity:
    """A client certificate signed by the cluster CA for a user no RBAC rule names (403 on most things)."""
    assert node.node is not None
    pki = node.node.path("/etc/kubernetes/pki")
    where.mkdir(parents=True, exist_ok=True)
    key, csr, cert = where / "viewer.key", where / "viewer.csr", where / "viewer.crt"
    subprocess.run(["openssl", "req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr),
                    "-subj", f"/O={VIEWER[1]}/CN={VIEWER[0]}"], check=True, capture_output=True)
    subprocess.run(["openssl", "x509", "-req", "-in", str(csr), "-CA", str(pki / "ca.crt"), "-CAkey",
                    str(pki / "ca.key"), "-CAcreateserial", "-CAserial", str(where / "ca.srl"), "-days", "2",
                    "-out", str(cert)], check=True, capture_output=True)
    return Identity(VIEWER[0], cert, key)


def request(node: RealNode, who: Identity | None, method: str, path: str, body: dict[str, Any] | None = None,
            *, agent: str = "kaudit-real-test", timeout: float = 10.0) -> tuple[int, str]:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if who is not None:
        ctx.load_cert_chain(str(who.cert), str(who.key))
    conn = http.client.HTTPSConnection(node.node_addr, 6443, context=ctx, timeout=timeout)
    headers = {"User-Agent": agent, "Accept": "application/json"}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    try:
        conn.request(method, path, body=data, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.read().decode(errors="replace")
    finally:
        conn.close()


# The requests every profile test sends, as (who, method, path, body). Deterministic: the same
# requests in the baseline and under each profile, told apart by their User-Agent (kaudit-real/<i>).
def traffic(ns: str) -> list[tuple[str, str, str, dict[str, Any] | None]]:
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "probe", "namespace": ns},
          "data": {"k": "v"}}
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "probe", "namespace": ns},
              "stringData": {"token": "kaudit-real-secret-value"}}
    nsdoc = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}
    return [
        ("admin", "POST", "/api/v1/namespaces", nsdoc),
        ("admin", "GET", "/api/v1/namespaces/default", None),
        ("admin", "GET", f"/api/v1/namespaces/{ns}/pods", None),
        ("admin", "POST", f"/api/v1/namespaces/{ns}/configmaps", cm),
        ("admin", "GET", f"/api/v1/namespaces/{ns}/configmaps/probe", None),
        ("admin", "POST", f"/api/v1/namespaces/{ns}/secrets", secret),
        ("admin", "GET", f"/api/v1/namespaces/{ns}/secrets/probe", None),
        ("admin", "GET", "/api/v1/nodes", None),
        ("admin", "GET", "/apis/apps/v1/namespaces/kube-system/deployments", None),
        ("admin", "GET", "/version", None),
        ("admin", "GET", "/healthz", None),
        ("viewer", "GET", f"/api/v1/namespaces/{ns}/secrets", None),
        ("viewer", "GET", "/api/v1/namespaces/default/pods", None),
        ("viewer", "GET", "/api/v1/nodes", None),
        ("viewer", "POST", f"/api/v1/namespaces/{ns}/configmaps", cm),
        ("admin", "DELETE", f"/api/v1/namespaces/{ns}/secrets/probe", None),
        ("admin", "DELETE", f"/api/v1/namespaces/{ns}/configmaps/probe", None),
        ("admin", "DELETE", f"/api/v1/namespaces/{ns}", None),
    ]


def send_traffic(node: RealNode, ids: dict[str, Identity], ns: str, tag: str) -> list[tuple[str, int]]:
    """Send traffic(ns); returns (User-Agent, status) per request."""
    out = []
    for i, (who, method, path, body) in enumerate(traffic(ns)):
        agent = f"kaudit-real/{tag}/{i}"
        status, _ = request(node, ids[who], method, path, body, agent=agent)
        out.append((agent, status))
    return out


# --- the kube-apiserver process on the node -----------------------------------------------------------
def apiservers(node: RealNode) -> list[dict[str, Any]]:
    """Running kube-apiserver processes in the node's PID namespace: pid, start (epoch), argv."""
    script = r"""
btime=$(awk '/^btime/ {print $2}' /proc/stat); hz=$(getconf CLK_TCK)
for d in /proc/[0-9]*; do
  [ "$(cat $d/comm 2>/dev/null)" = kube-apiserver ] || continue
  st=$(cut -d' ' -f22 $d/stat 2>/dev/null) || continue
  printf '%s %s %s ' "${d#/proc/}" "$btime" "$hz"; echo "$st"
  tr '\0' '\n' < $d/cmdline | base64 -w0; echo
done
"""
    out = node.run(script, check=False).stdout.splitlines()
    procs = []
    for head, argv in zip(out[0::2], out[1::2], strict=False):
        pid, btime, hz, st = head.split()
        procs.append({"pid": int(pid), "start": int(btime) + int(st) / int(hz),
                      "argv": base64.b64decode(argv).decode().split("\n")})
    return sorted(procs, key=lambda p: p["start"])


def wait_new_apiserver(node: RealNode, after: float, timeout: float = 150.0) -> dict[str, Any]:
    """A kube-apiserver started after `after` (epoch), answering /readyz 200."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        procs = [p for p in apiservers(node) if p["start"] > after - 1]
        if procs and node.api_ready():
            return procs[-1]
        time.sleep(0.3)
    raise TimeoutError(f"no new ready kube-apiserver after {timeout}s; running: {apiservers(node)}")


def audit_events(node: RealNode, path: str = AUDIT_LOG) -> list[dict[str, Any]]:
    assert node.node is not None
    p = node.node.path(path)
    if not p.exists():
        return []
    return [json.loads(line) for line in p.read_text().splitlines() if line.strip()]


def flags(argv: list[str]) -> dict[str, str]:
    out = {}
    for a in argv[1:]:
        if a.startswith("--") and "=" in a:
            k, v = a[2:].split("=", 1)
            out[k] = v
    return out
