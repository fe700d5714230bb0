"""Each of kaudit's profiles on a real kubeadm node: the real kubelet restarts the real kube-apiserver on the
manifest kaudit wrote; the server loads the policy kaudit rendered; for every request the test sends (as the
admin and as a user RBAC knows nothing of), the level and stages the real server wrote are exactly what
`kaudit simulate -o events --policy-file` predicts from a baseline log of the same requests recorded at
RequestResponse with every stage. Then disable / rollback / rollback --to original, byte for byte.

One node for the module; each change is a real restart (about 40 s here: see tests/node/README.md).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.kaudit_cli import kaudit
from tests.node.realnode import RealNode
from tests.real import kube
from tests.real.kube import reset
from tests.real.realcli import AUDIT_FLAGS, changed, events_of

PROFILES = ("minimal", "recommended", "cis", "security", "write-bodies", "all-bodies")
EVERYTHING = "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: RequestResponse\n"
SECRET = "kaudit-real-secret-value"


def test_the_profiles_under_test_are_kaudits_profiles() -> None:
    run = kaudit("profiles")
    assert run.code == 0, run.err
    assert tuple(re.findall(r"^(\S+)$", run.out, re.M)) == PROFILES


@pytest.fixture(scope="module")
def baseline(real_node: RealNode, ids: dict[str, kube.Identity],
             tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, int]]:
    """A log of the test's requests at RequestResponse, every stage; and auditID -> request index."""
    node = reset(real_node)
    where = tmp_path_factory.mktemp("baseline")
    policy = where / "everything.yaml"
    policy.write_text(EVERYTHING)
    changed(node, "enable", "--policy-file", str(policy), "--force")
    sent = kube.send_traffic(node, ids, "kaudit-real-base", "base")
    real = events_of(node, "base", lambda by: len(by) == len(sent) and all(
        {e["stage"] for e in evs} >= {"RequestReceived", "ResponseComplete"} for evs in by.values()))
    assert sorted(real) == list(range(len(sent))), f"baseline: events for requests {sorted(real)} of {len(sent)}"
    log = where / "baseline.log"
    events = [e for evs in real.values() for e in evs]
    log.write_text("".join(json.dumps(e) + "\n" for e in events))
    index = {e["auditID"]: int(e["userAgent"].rsplit("/", 1)[1]) for e in events}
    return log, index


def _predicted(baseline: tuple[Path, dict[str, int]], policy: Path) -> dict[int, dict[str, str]]:
    """Request index -> {stage: level} that kaudit simulate says `policy` writes."""
    log, index = baseline
    sim = kaudit("simulate", str(log), "--policy-file", str(policy), "-o", "events", "--kubernetes-version", "1.34")
    assert sim.code == 0, sim.err
    out: dict[int, dict[str, str]] = {i: {} for i in set(index.values())}
    for line in sim.out.splitlines():
        row = json.loads(line)
        if row["written"]:
            out[index[row["auditID"]]][row["stage"]] = row["level"]
    return out


@pytest.mark.parametrize("profile", PROFILES)
def test_profile_on_the_real_node(profile: str, real_node: RealNode, ids: dict[str, kube.Identity],
                                  baseline: tuple[Path, dict[str, int]]) -> None:
    node = real_node
    assert node.node is not None
    run, new = changed(node, "enable", "--profile", profile)
    assert run.node["action"] in ("enabled", "switched"), run.node
    f = kube.flags(new["argv"])
    assert all(flag in f for flag in AUDIT_FLAGS), new["argv"]
    assert f["audit-log-path"] == kube.AUDIT_LOG
    policy = node.node.path(f["audit-policy-file"])

    predicted = _predicted(baseline, policy)
    tag = profile
    sent = kube.send_traffic(node, ids, f"kaudit-real-{profile}", tag)
    assert sent[0][1] == 201 and sent[11][1] == 403, sent  # the viewer may not list secrets

    def complete(by: dict[int, list[dict[str, Any]]]) -> bool:
        return all(set(want) <= {e["stage"] for e in by.get(i, [])} for i, want in predicted.items())

    real = events_of(node, tag, complete)
    actual = {i: {e["stage"]: e["level"] for e in real.get(i, [])} for i in range(len(sent))}
    requests = kube.traffic("ns")
    diff = {f"{i} {requests[i][0]} {requests[i][1]} {requests[i][2]}": (predicted[i], actual[i])
            for i in range(len(sent)) if predicted[i] != actual[i]}
    assert not diff, f"{profile}: simulate (left) and the real API server (right) disagree: {diff}"
    assert SECRET not in node.node.path(kube.AUDIT_LOG).read_text(), f"{profile} logged a Secret's value"


def test_disable_rollback_and_rollback_to_original_are_byte_exact_real_restarts(real_node: RealNode) -> None:
    node = real_node
    assert node.node is not None
    manifest = node.node.path(kube.MANIFEST)
    original: bytes = node.original_manifest  # type: ignore[attr-defined]
    audited = manifest.read_bytes()
    assert audited != original

    _, new = changed(node, "disable")
    assert manifest.read_bytes() == original
    assert not any(a.startswith("--audit-") for a in new["argv"])

    _, new = changed(node, "rollback")  # undoes the disable
    assert manifest.read_bytes() == audited
    assert "audit-policy-file" in kube.flags(new["argv"])
    assert node.node.path(kube.flags(new["argv"])["audit-policy-file"]).exists()

    _, new = changed(node, "rollback", "--to", "original")
    assert manifest.read_bytes() == original
    assert not any(a.startswith("--audit-") for a in new["argv"])
