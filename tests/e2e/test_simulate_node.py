"""`kaudit simulate TARGET`: the log read from a test node after a real `kaudit enable` (the simulator
writes real events with its own, independent policy matcher). One node for the module."""

from __future__ import annotations

import json
from typing import Any

from tests.kaudit_cli import change, on
from tests.node.node import TestNode

SECRET = "dG9wLXNlY3JldC12YWx1ZQ=="


def _traffic(node: TestNode) -> None:
    node.request("/api/v1/namespaces/default/pods", admin=True)
    node.request("/api/v1/namespaces/default/pods", "POST", admin=True,
                 body={"kind": "Pod", "apiVersion": "v1", "metadata": {"name": "web"}})
    node.request("/api/v1/namespaces/kube-system/secrets", "POST", admin=True,
                 body={"kind": "Secret", "apiVersion": "v1", "metadata": {"name": "s"}, "data": {"k": SECRET}})
    node.request("/apis/apps/v1/namespaces/default/deployments/web/scale", "PATCH", user="jane",
                 groups=("dev", "system:authenticated"), body={"spec": {"replicas": 2}})
    node.request("/api/v1/namespaces/team-a", user="bob", groups=("system:authenticated",))
    node.request("/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/cp-1", "PUT",
                 user="system:node:cp-1", groups=("system:nodes", "system:authenticated"), body={"kind": "Lease"})
    node.request("/version")
    node.request("/api/v1/nodes?fieldSelector=metadata.name%3Dcp-1&watch=1", user="system:node:cp-1",
                 groups=("system:nodes", "system:authenticated"))


def test_simulate_a_live_node(module_node: TestNode) -> None:
    node = module_node
    off = on(node, "simulate", "-p", "minimal")
    assert off.code == 2 and "auditing is off" in off.err and "Traceback" not in off.err

    assert change(node, "enable", "--profile", "recommended").code == 0
    _traffic(node)
    recorded = node.audit_events()
    assert recorded, "the simulator wrote no events"

    run = on(node, "simulate", "-p", "recommended", "-p", "minimal", "-o", "events")
    assert run.code == 0, run.err
    rows = [json.loads(line) for line in run.out.splitlines()]
    assert SECRET not in run.out
    mine = [r for r in rows if r["policy"] == "recommended"]
    assert len(mine) == len(recorded)
    # the node's log was written under the same profile: every event is one the candidate writes,
    # at the level the API server (the simulator's own matcher) gave it
    by_id: dict[tuple[str, str], dict[str, Any]] = {(e["auditID"], e["stage"]): e for e in recorded}
    for r in mine:
        ev = by_id[(r["auditID"], r["stage"])]
        assert r["written"] is True, (r, ev)
        assert r["level"] == ev["level"], (r, ev.get("requestURI"))
        assert r["source"].endswith("/var/log/kubernetes/audit/audit.log")
    assert [r["line"] for r in mine] == list(range(1, len(mine) + 1))

    report = on(node, "simulate", "-p", "recommended", "-p", "all-bodies", "-o", "json")
    assert report.code == 0, report.err
    doc = report.json()
    assert SECRET not in report.out
    rec, allb = doc["candidates"]
    # the same profile as the log: the same events and bytes, plus the stages a real API server writes
    # that the simulator does not (ResponseStarted of the watch), counted once per such request
    added = rec["stagesAdded"]
    assert rec["events"] - sum(v["events"] for v in added.values()) == doc["log"]["events"] == len(recorded)
    assert rec["bytes"] - sum(v["bytes"] for v in added.values()) == doc["log"]["bytes"]
    assert not rec["bytesAtLeast"]
    assert allb["startsWriting"]["eventsAtHigherLevel"] > 0
    assert rec["rotation"]["source"] == "profile"

    text = on(node, "simulate", "-p", "minimal")
    assert text.code == 0 and "days of history" in text.out and SECRET not in text.out
