"""Fleets: an Ansible inventory as the target, clusters in parallel, one failing cluster not stopping the others;
and what kaudit says about the changes a flavor's own tools will undo (issue 6)."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import NodeFactory
from tests.fleetfiles import inventory_file, known_hosts_file
from tests.kaudit_cli import change, kaudit, on

MANIFEST = "/etc/kubernetes/manifests/kube-apiserver.yaml"


def test_inventory_fleet_in_parallel_one_failing_cluster(node_factory: NodeFactory, tmp_path: Path) -> None:
    a1, a2, b1, c1 = (node_factory() for _ in range(4))
    # Cluster b's API server will not come up with the new configuration, and the kubelet backs off.
    b1.configure(fail_next_start=True, crash_backoff=5)
    inv = inventory_file(tmp_path / "fleet.yml", {"alpha": [a1, a2], "beta": [b1], "gamma": [c1]})
    known = known_hosts_file(tmp_path / "known_hosts", [a1, a2, b1, c1])
    run = kaudit("enable", str(inv), "--profile", "minimal", "--yes", "--parallel", "3", "--output", "json",
                 "--timeout", "3", "--guard-grace", "3", "--known-hosts", str(known), timeout=180)
    nodes = run.json()["nodes"]
    by_cluster = {(r["cluster"], r["action"]) for r in nodes}
    assert ("alpha", "enabled") in by_cluster and ("gamma", "enabled") in by_cluster, nodes
    assert [r["action"] for r in nodes if r["cluster"] == "alpha"] == ["enabled", "enabled"]
    assert [r["action"] for r in nodes if r["cluster"] == "beta"] == ["failed-restored"]
    assert run.code == 1
    for n in (a1, a2, c1):
        assert b"--audit-policy-file" in n.path(MANIFEST).read_bytes()
    assert b"--audit-policy-file" not in b1.path(MANIFEST).read_bytes()
    # `status` over the same inventory sees the fleet as the rollout left it.
    text = kaudit("status", str(inv), "--known-hosts", str(known))
    assert text.code == 0, text.out + text.err
    assert text.out.count("auditing: on") == 3 and text.out.count("auditing: off") == 1


def test_summary_table_and_caveat_in_text_output(node_factory: NodeFactory, tmp_path: Path) -> None:
    n1, n2 = node_factory(), node_factory()
    inv = inventory_file(tmp_path / "two.yml", {"east": [n1], "west": [n2]})
    known = known_hosts_file(tmp_path / "known_hosts", [n1, n2])
    run = kaudit("enable", str(inv), "--profile", "cis", "--yes", "--parallel", "2", "--timeout", "10",
                 "--known-hosts", str(known), timeout=120)
    assert run.code == 0, run.out + run.err
    assert "kubeadm upgrade" in run.out  # what will undo the change on a kubeadm node
    assert "kaudit export --profile cis --format kubeadm --kubernetes-version 1.30" in run.out
    table = run.out[run.out.index("cluster  "):].splitlines()
    assert table[1].split() == ["east", "1", "0", "0", "0"]
    assert table[2].split() == ["west", "1", "0", "0", "0"]


def test_status_reports_a_manifest_reverted_by_the_flavors_tool(node_factory: NodeFactory) -> None:
    node = node_factory()
    original = node.path(MANIFEST).read_bytes()
    assert change(node, "enable", "--profile", "minimal").code == 0
    # `kubeadm upgrade apply` regenerates the manifest from the ClusterConfiguration: kaudit's edit is gone.
    node.path(MANIFEST).write_bytes(original)
    node.wait_ready(10)
    run = on(node, "status", "--output", "json")
    assert run.code == 0
    status = run.node
    assert status["reverted"] is True and status["audit_enabled"] is False
    assert "kubeadm upgrade" in status["problems"][0] and "kaudit export --format kubeadm" in status["problems"][0]
