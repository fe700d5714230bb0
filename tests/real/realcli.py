"""The user's `kaudit` (tests/userinstall.py: the wheel without extras) against the real node."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from tests.kaudit_cli import Run, kaudit
from tests.node.realnode import RealNode
from tests.real import kube


def on(node: RealNode, command: str, *args: str, timeout: float = 300) -> Run:
    """`kaudit COMMAND TARGET ARGS...` with the node's key and known_hosts, as kadmin (NOPASSWD sudo)."""
    assert node.node is not None
    return kaudit(command, node.node.target("kadmin"), "-i", str(node.node.key_path), "--known-hosts",
                  str(node.node.known_hosts), *args, timeout=timeout)


def change(node: RealNode, command: str, *args: str, timeout: float = 120) -> Run:
    """A changing command with --yes and JSON output; the real API server needs a real timeout."""
    return on(node, command, "--yes", "--output", "json", "--timeout", str(timeout), *args, timeout=timeout * 3 + 60)


AUDIT_FLAGS = ("audit-policy-file", "audit-log-path", "audit-log-maxage", "audit-log-maxbackup", "audit-log-maxsize")


def changed(node: RealNode, *args: str, timeout: float = 120) -> tuple[Run, dict[str, Any]]:
    """Run a changing kaudit command that must restart the API server: exit 0, and a new kube-apiserver
    (a PID that was not running, started after the manifest was written) is ready. Returns both."""
    assert node.node is not None
    old = {p["pid"] for p in kube.apiservers(node)}
    run = change(node, *args, timeout=timeout)
    assert run.code == 0, f"kaudit {args}: exit {run.code}\n{run.out}\n{run.err}"
    written = node.node.path(kube.MANIFEST).stat().st_mtime
    procs = kube.apiservers(node)
    assert len(procs) == 1, procs
    new = procs[0]
    assert new["pid"] not in old, f"the kubelet did not restart the API server: {old} -> {procs}"
    assert new["start"] >= written - 0.05, (new["start"], written)
    assert node.api_ready()
    TIMES.append({"command": " ".join(args), **{s["name"]: s["seconds"] for s in run.node.get("steps", [])},
                  "ready_seconds": run.node.get("ready_seconds")})
    return run, new


TIMES: list[dict[str, Any]] = []  # kaudit's own step times per change in this session (for the README)


def events_of(node: RealNode, tag: str, until: Callable[[dict[int, list[dict[str, Any]]]], bool],
              timeout: float = 10.0) -> dict[int, list[dict[str, Any]]]:
    """The real log's events of the requests sent with `tag` (User-Agent kaudit-real/<tag>/<i>), by request
    index, once `until(them)` holds (or after `timeout`: whatever is there)."""
    prefix = f"kaudit-real/{tag}/"
    deadline = time.time() + timeout
    while True:
        by_req: dict[int, list[dict[str, Any]]] = {}
        for ev in kube.audit_events(node):
            ua = ev.get("userAgent", "")
            if ua.startswith(prefix):
                by_req.setdefault(int(ua[len(prefix):]), []).append(ev)
        if until(by_req) or time.time() > deadline:
            return by_req
        time.sleep(0.2)
