"""The real tier's helpers: requests to the real API server (as the admin or a less privileged user),
the kube-apiserver process on the node, the real audit log."""

from __future__ import annotations

import base64
import calendar
import http.client
import json
import re
import shutil
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
            *, agent: str = "kaudit-real-test", timeout: float = 10.0,
            content_type: str = "application/json") -> tuple[int, str]:
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
        headers["Content-Type"] = content_type
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


# --- restart timeline ---------------------------------------------------------------------------------
_KLOG = re.compile(r"^[IWE](\d\d)(\d\d) (\d\d):(\d\d):(\d\d\.\d+)\s")


def klog_time(line: str) -> float | None:
    m = _KLOG.match(line)
    if not m:
        return None
    mon, day, hh, mm, ss = m.groups()
    year = time.gmtime().tm_year
    base = calendar.timegm((year, int(mon), int(day), int(hh), int(mm), 0, 0, 0, 0))
    return base + float(ss)


def kubelet_noticed(node: RealNode, after: float) -> float | None:
    """When the kubelet first logged a file-source change of the kube-apiserver pod after `after`."""
    for line in node.log("kubelet").splitlines():
        if "SyncLoop" in line and 'source="file"' in line and "kube-apiserver" in line:
            t = klog_time(line)
            if t is not None and t >= after - 0.01:
                return t
    return None


TIMELINES: list[dict[str, Any]] = []  # every restart timeline of the session (printed at its end)


def observe_restart(node: RealNode, old_pids: set[int], timeout: float = 150.0) -> dict[str, float]:
    """Absolute times (epoch) at which, polling every 50 ms: the old API server was gone, the new one
    started (its process start time), the new one answered /readyz 200."""
    deadline = time.time() + timeout
    gone = None
    while time.time() < deadline:
        procs = apiservers(node)
        if gone is None and not any(p["pid"] in old_pids for p in procs):
            gone = time.time()
        new = [p for p in procs if p["pid"] not in old_pids]
        if new and node.api_ready():
            started = new[-1]["start"]
            return {"old_gone": gone if gone is not None else started, "started": started, "ready": time.time()}
        time.sleep(0.05)
    raise TimeoutError("no new ready kube-apiserver")


def timeline(node: RealNode, write: float, seen: dict[str, float], what: str, **extra: float) -> dict[str, Any]:
    """Seconds from the manifest write to: the kubelet noticing it (its log), the old API server gone,
    the new one started, the new one ready, and `extra` (absolute times)."""
    noticed = kubelet_noticed(node, write)
    out: dict[str, Any] = {"what": what, "noticed": round(noticed - write, 2) if noticed else None}
    for k, v in {**seen, **extra}.items():
        out[k] = round(v - write, 2)
    TIMELINES.append(out)
    return out


def reset(node: RealNode) -> RealNode:
    """The session's node as kubeadm left it: its original kube-apiserver manifest (a restart when it
    differed), no kaudit state, no audit files or logs."""
    assert node.node is not None
    manifest = node.node.path(MANIFEST)
    original: bytes = node.original_manifest  # type: ignore[attr-defined]
    for leftover in manifest.parent.glob(".*"):
        leftover.unlink()
    if manifest.read_bytes() != original:
        before = time.time()
        manifest.write_bytes(original)
        wait_new_apiserver(node, before)
    for d in ("/var/lib/kaudit", "/etc/kubernetes/audit", "/var/log/kubernetes"):
        p = node.node.path(d)  # the contents only: /var/lib/kaudit itself is a bind mount's source
        for child in p.iterdir() if p.is_dir() else ():
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
    if not node.api_ready():
        wait_new_apiserver(node, 0)
    return node
