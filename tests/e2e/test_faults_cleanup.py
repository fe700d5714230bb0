"""Leftovers of a failed apply, and a policy file replaced behind kaudit's back (issue 7)."""

from __future__ import annotations

import hashlib
import json
import time

from tests.conftest import NodeFactory
from tests.faults import MANIFEST, guard_done, healthy_with, lock_free, manifest_of, tally
from tests.kaudit_cli import change, on
from tests.node.node import TestNode


def backups(node: TestNode) -> list[str]:
    run = on(node, "backups", "--output", "json")
    assert run.code == 0, run.out + run.err
    doc = run.json()
    node_doc = doc["nodes"][0] if "nodes" in doc else doc
    return sorted(b["id"] for b in node_doc.get("backups", []))


def journal(node: TestNode) -> list[dict[str, object]]:
    p = node.path("/var/lib/kaudit/journal")
    return [json.loads(line) for line in p.read_text().splitlines()] if p.exists() else []


def test_failed_apply_leaves_no_backup_nor_open_journal_entry(node_factory: NodeFactory) -> None:
    node = node_factory(linger=0.1, restart_delay=0.1)
    before = manifest_of(node)
    # The audit dir exists but is read-only: the backup is made, then the upload fails.
    node.run("mkdir -p /etc/kubernetes/audit && mount --bind /etc/kubernetes/audit /etc/kubernetes/audit && "
             "mount -o remount,bind,ro /etc/kubernetes/audit")
    try:
        run = change(node, "enable", "--profile", "minimal", timeout=3)
        assert run.code == 2 and "the manifest was not changed" in run.node["message"], run.out + run.err
        guard_done(node)
        assert manifest_of(node) == before
        assert backups(node) == [], "the failed run's backup is still listed"
        assert not [p.name for p in node.path("/var/lib/kaudit/backups").iterdir()] \
            if node.path("/var/lib/kaudit/backups").exists() else True
        states = [(r["id"], r["state"]) for r in journal(node)]
        assert [s for _, s in states] == ["begin", "failed"] and states[0][0] == states[1][0], states
        assert not node.path("/var/lib/kaudit/guard.pid").exists()
        assert lock_free(node)
        healthy_with(node, before)
    finally:
        node.run("umount /etc/kubernetes/audit")
    # A second failure mode: the manifests directory is read-only (the backup and the policy upload
    # succeed, the write fails): the uploaded policy goes too, and the next run is not blocked.
    node.run("mount --bind /etc/kubernetes/manifests /etc/kubernetes/manifests && "
             "mount -o remount,bind,ro /etc/kubernetes/manifests")
    try:
        run = change(node, "enable", "--profile", "minimal", timeout=3)
        assert run.code == 2 and "the manifest was not changed" in run.node["message"], run.out + run.err
        assert backups(node) == []
        assert not list(node.path("/etc/kubernetes/audit").glob("policy-*"))
        assert journal(node)[-1]["state"] == "failed"
    finally:
        node.run("umount /etc/kubernetes/manifests")
    run = change(node, "enable", "--profile", "minimal", timeout=10)
    assert run.code == 0, run.out + run.err
    assert len(backups(node)) == 2  # this run's and the pinned original, nothing of the failed ones
    tally("apply fails after the backup (read-only audit dir / manifests dir)", 2, 2, 0)


def test_replaced_policy_is_repaired_without_restart(node_factory: NodeFactory) -> None:
    node = node_factory(linger=0.1, restart_delay=0.1)
    assert change(node, "enable", "--profile", "minimal", timeout=10).code == 0
    enabled = manifest_of(node)
    inst = node.current_instance()
    assert inst is not None
    policy = next(node.path("/etc/kubernetes/audit").glob("policy-*.yaml"))
    good = policy.read_bytes()
    time.sleep(1.1)  # the file's mtime (whole seconds) is after the instance's start
    policy.write_bytes(b"apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: None\n")
    dry = change(node, "enable", "--profile", "minimal", "--dry-run", timeout=10)
    assert dry.code == 0 and dry.node["action"] == "dry-run" and policy.name in dry.node["message"], dry.out
    assert policy.read_bytes() != good
    run = change(node, "enable", "--profile", "minimal", timeout=10)
    assert run.code == 0, run.out + run.err
    r = run.node
    assert r["action"] == "repaired" and policy.name in r["message"] and "nothing restarted" in r["message"], r
    assert "uses the right policy" in r["message"], r
    assert policy.read_bytes() == good and policy.stat().st_mode & 0o777 == 0o600
    assert manifest_of(node) == enabled
    cur = node.current_instance()
    assert cur is not None and cur["pid"] == inst["pid"], "the API server was restarted"
    # Converged: the next run has nothing to do; a removed file is put back the same way.
    again = change(node, "enable", "--profile", "minimal", timeout=10)
    assert again.code == 0 and again.node["action"] == "unchanged", again.out
    policy.unlink()
    run = change(node, "enable", "--profile", "minimal", timeout=10)
    assert run.code == 0 and run.node["action"] == "repaired" and policy.read_bytes() == good, run.out
    assert hashlib.sha256(good).hexdigest().startswith(policy.name.split("-")[1].split(".")[0])
    assert node.path(MANIFEST).read_bytes() == enabled
    assert not node.path("/var/lib/kaudit/guard.pid").exists() and lock_free(node)
    tally("policy file replaced / removed, then enable again (repaired)", 2, 2, 0)
