"""kaudit against a real kubeadm node: a real kubelet restarts a real kube-apiserver on the manifest kaudit
wrote, which loads the policy kaudit rendered and writes real audit events."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from tests.kaudit_cli import kaudit
from tests.node.realnode import RealNode
from tests.real import kube
from tests.real.realcli import change

AUDIT_FLAGS = ("audit-policy-file", "audit-log-path", "audit-log-maxage", "audit-log-maxbackup", "audit-log-maxsize")
EVERYTHING = "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: RequestResponse\n"


@pytest.fixture(scope="module")
def ids(real_node: RealNode, tmp_path_factory: pytest.TempPathFactory) -> dict[str, kube.Identity]:
    where = tmp_path_factory.mktemp("ids")
    return {"admin": kube.admin_identity(real_node, where), "viewer": kube.viewer_identity(real_node, where)}


def _events_of(node: RealNode, tag: str, count: int, timeout: float = 15.0) -> dict[int, list[dict[str, Any]]]:
    """The real log's events of the requests sent with tag `tag`, by request index; waits until the
    last request's ResponseComplete is there (or timeout: then whatever was written)."""
    prefix = f"kaudit-real/{tag}/"
    deadline = time.time() + timeout
    while True:
        by_req: dict[int, list[dict[str, Any]]] = {}
        for ev in kube.audit_events(node):
            ua = ev.get("userAgent", "")
            if ua.startswith(prefix):
                by_req.setdefault(int(ua[len(prefix):]), []).append(ev)
        last = by_req.get(count - 1, [])
        if any(e["stage"] == "ResponseComplete" for e in last) or time.time() > deadline:
            return by_req
        time.sleep(0.2)


def _policy_on_node(node: RealNode, argv: list[str]) -> Path:
    assert node.node is not None
    return node.node.path(kube.flags(argv)["audit-policy-file"])


def _enable_and_check(node: RealNode, *args: str) -> dict[str, Any]:
    """Run a changing kaudit command; a new kube-apiserver (new PID, started after the manifest was
    written) carries the audit flags. Returns it."""
    assert node.node is not None
    old = {p["pid"] for p in kube.apiservers(node)}
    run = change(node, *args)
    assert run.code == 0, f"kaudit {args}: exit {run.code}\n{run.out}\n{run.err}"
    written = node.node.path(kube.MANIFEST).stat().st_mtime
    [new] = kube.apiservers(node)
    assert new["pid"] not in old, "the kubelet did not restart the API server"
    assert new["start"] >= written - 0.05, (new["start"], written)
    assert node.api_ready()
    return new


def test_enable_recommended_restarts_the_real_api_server_and_its_events_match_simulate(
        fresh_node: RealNode, ids: dict[str, kube.Identity], tmp_path: Path) -> None:
    node = fresh_node
    assert node.node is not None
    original = node.node.path(kube.MANIFEST).read_bytes()
    new = _enable_and_check(node, "enable", "--profile", "recommended")
    f = kube.flags(new["argv"])
    for flag in AUDIT_FLAGS:
        assert flag in f, (flag, new["argv"])
    assert f["audit-log-path"] == kube.AUDIT_LOG
    assert (f["audit-log-maxage"], f["audit-log-maxbackup"], f["audit-log-maxsize"]) == ("30", "10", "100")

    sent = kube.send_traffic(node, ids, "kaudit-real-rec", "rec")
    assert sent[0][1] == 201 and sent[11][1] == 403, sent  # the viewer is not allowed to list secrets
    real = _events_of(node, "rec", len(sent))
    assert real, "the real API server wrote no events for the test's requests"
    assert "kaudit-real-secret-value" not in node.node.path(kube.AUDIT_LOG).read_text(), "a Secret's body was logged"

    # simulate, on the real log, with the policy the real server loaded: each event the server wrote is
    # one the policy writes, at the same level.
    log = tmp_path / "audit.log"
    log.write_bytes(node.node.path(kube.AUDIT_LOG).read_bytes())
    policy = _policy_on_node(node, new["argv"])
    sim = kaudit("simulate", str(log), "--policy-file", str(policy), "-o", "events", "--kubernetes-version", "1.34")
    assert sim.code == 0, sim.err
    rows = [json.loads(line) for line in sim.out.splitlines()]
    ours = {e["auditID"] for evs in real.values() for e in evs}
    checked = 0
    events = {(e["auditID"], e["stage"]): e for e in kube.audit_events(node)}
    for r in rows:
        if r["auditID"] not in ours:
            continue
        ev = events[(r["auditID"], r["stage"])]
        assert r["written"] is True and r["level"] == ev["level"], (r, ev["requestURI"], ev["user"])
        checked += 1
    assert checked == sum(len(v) for v in real.values())

    # disable: the original bytes, a real restart, no audit flags
    old = _enable_and_check(node, "disable")
    assert node.node.path(kube.MANIFEST).read_bytes() == original
    assert not any(a.startswith("--audit-") for a in old["argv"])
