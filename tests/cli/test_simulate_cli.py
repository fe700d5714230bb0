"""`kaudit simulate` as a user runs it (issue 24): requests no longer recorded apart from stage events
dropped, each rule named beside its hits, no "≥ -"."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.kaudit_cli import kaudit

LEASE = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/worker-1"


def event(i: int, uri: str, user: str, verb: str = "get", stage: str = "ResponseComplete") -> dict[str, Any]:
    ts = f"2026-05-01T10:00:{i:02d}.000000Z"
    return {"kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata", "auditID": f"id-{i}",
            "stage": stage, "requestURI": uri, "verb": verb, "stageTimestamp": ts, "requestReceivedTimestamp": ts,
            "user": {"username": user, "groups": ["system:nodes", "system:authenticated"]}}


def test_minimal_still_records_lease_updates_and_drops_only_their_requestreceived(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    events = []
    for i in range(5):
        events += [event(i, LEASE, "system:node:worker-1", "update", stage) for stage in
                   ("RequestReceived", "ResponseComplete")]
        events.append(event(i, "/healthz", "system:anonymous"))
    log.write_text("".join(json.dumps(e) + "\n" for e in events))

    run = kaudit("simulate", str(log), "-p", "minimal")
    assert run.code == 0, run.err
    gone, _, rest = run.out.partition("[minimal]")[2].partition("would drop")
    assert "would no longer record 5 request(s)" in gone and "/healthz" in gone and "leases" not in gone, run.out
    assert "5 RequestReceived event(s) of requests it still records" in rest, run.out
    assert "system:node:worker-1  update  leases.coordination.k8s.io  RequestReceived" in rest, run.out
    assert "#0 None /healthz*," in run.out and "#2 Metadata (every request)" in run.out, run.out

    doc = json.loads(kaudit("simulate", str(log), "-p", "minimal", "-o", "json").out)
    c = doc["candidates"][0]
    assert c["stopsRecording"]["requests"] == 5 and c["stopsRecording"]["top"][0]["resource"] == "/healthz"
    assert c["stagesDropped"]["byStage"] == {"RequestReceived": 5}
    assert c["stagesDropped"]["top"][0]["resource"] == "leases.coordination.k8s.io"
    assert all(r["summary"] for r in c["rules"])


def test_a_lower_bound_is_never_put_on_a_missing_figure(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    log.write_text(json.dumps(event(1, "/api/v1/namespaces/a/configmaps", "alice", "create")) + "\n")
    policy = tmp_path / "rr.yaml"
    policy.write_text("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: RequestResponse\n")
    run = kaudit("simulate", str(log), "--policy-file", str(policy))
    assert run.code == 0, run.err
    assert "≥ " in run.out and "≥ -" not in run.out, run.out
