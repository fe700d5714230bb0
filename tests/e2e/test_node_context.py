"""One place decides a node's flavor and layout (installer/connect.py, open_node), and every command
reads the node through it: a minikube node reached as a plain SSH target keeps kaudit's state where
`minikube://` does, and `backups` reaches every node `status` and `enable` reach (inventories)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import NodeFactory
from tests.corpus_files import MANIFESTS as CORPUS
from tests.fleetfiles import inventory_file, known_hosts_file
from tests.kaudit_cli import change, kaudit, on
from tests.node.node import TestNode

MANIFEST = "/etc/kubernetes/manifests/kube-apiserver.yaml"
MINIKUBE_MANIFEST = CORPUS / "009-minikube-v1.32-port-8443.yaml"
# What minikube puts on every node it starts: the cluster's certificates (kubeadm's certificatesDir).
MINIKUBE_FILES = {"/var/lib/minikube/certs/ca.crt": b"minikube CA\n"}


def _state_files(node: TestNode, state_dir: str) -> list[str]:
    root = node.path(state_dir)
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")) if root.exists() else []


def test_minikube_node_over_plain_ssh_keeps_its_state_in_var_lib_minikube(node_factory: NodeFactory) -> None:
    """`docker@<minikube ip>` instead of `minikube://`: enable, status, backups, rollback and disable all
    use /var/lib/minikube/kaudit, the directory that survives a minikube restart."""
    node = node_factory(MINIKUBE_MANIFEST.read_bytes(), extra_files=MINIKUBE_FILES)
    original = node.path(MANIFEST).read_bytes()

    run = change(node, "enable", "--profile", "minimal", user="docker")
    assert run.code == 0, run.out + run.err
    result = run.node
    assert result["action"] == "enabled" and result["flavor"] == "minikube", result
    assert "minikube start" in result["caveat"]
    assert (node.path("/var/lib/minikube/kaudit/backups") / result["backup"]).is_dir()
    assert node.path("/var/lib/minikube/kaudit/backups/original/manifest").read_bytes() == original
    assert _state_files(node, "/var/lib/kaudit") == []

    status = on(node, "status", "--output", "json", user="docker")
    assert status.code == 0, status.out + status.err
    assert status.node["flavor"] == "minikube" and status.node["last_change"]["id"] == result["backup"]

    listing = on(node, "backups", "--output", "json", user="docker")
    assert listing.code == 0, listing.out + listing.err
    assert sorted(b["id"] for b in listing.node["backups"]) == sorted([result["backup"], "original"])

    back = change(node, "rollback", user="docker")
    assert back.code == 0, back.out + back.err
    assert back.node["action"] == "rolled-back"
    assert node.path(MANIFEST).read_bytes() == original

    assert change(node, "enable", "--profile", "cis", user="docker").code == 0
    off = change(node, "disable", user="docker")
    assert off.code == 0, off.out + off.err
    assert node.path(MANIFEST).read_bytes() == original
    journal = [json.loads(line) for line in node.path("/var/lib/minikube/kaudit/journal").read_text().splitlines()]
    assert [e["op"] for e in journal if e["state"] == "confirmed"] == ["enable", "rollback", "enable", "disable"]
    assert _state_files(node, "/var/lib/kaudit") == []  # nothing was ever written to the default place


def test_an_empty_var_lib_minikube_does_not_make_a_minikube_node(node_factory: NodeFactory) -> None:
    """A kubeadm node with a leftover (or mount-point) /var/lib/minikube stays kubeadm, state in /var/lib/kaudit."""
    node = node_factory()
    assert node.path("/var/lib/minikube").is_dir() and not any(node.path("/var/lib/minikube").iterdir())
    run = change(node, "enable", "--profile", "minimal")
    assert run.code == 0, run.out + run.err
    assert run.node["flavor"] == "kubeadm" and "kubeadm upgrade" in run.node["caveat"]
    assert (node.path("/var/lib/kaudit/backups") / run.node["backup"]).is_dir()
    assert _state_files(node, "/var/lib/minikube/kaudit") == []


def test_backups_of_an_inventory_lists_every_host(node_factory: NodeFactory, tmp_path: Path) -> None:
    a1, a2, b1 = node_factory(), node_factory(), node_factory()
    inv = inventory_file(tmp_path / "fleet.yml", {"alpha": [a1, a2], "beta": [b1]})
    known = known_hosts_file(tmp_path / "known_hosts", [a1, a2, b1])
    run = kaudit("enable", str(inv), "--profile", "minimal", "--yes", "--output", "json", "--timeout", "10",
                 "--guard-grace", "3", "--known-hosts", str(known), timeout=180)
    assert run.code == 0, run.out + run.err
    made = {r["node"]: r["backup"] for r in run.json()["nodes"]}
    assert sorted(made) == ["alpha-cp0", "alpha-cp1", "beta-cp0"]

    listing = kaudit("backups", str(inv), "--output", "json", "--known-hosts", str(known))
    assert listing.code == 0, listing.out + listing.err
    nodes = listing.json()["nodes"]
    assert [n["node"] for n in nodes] == ["alpha-cp0", "alpha-cp1", "beta-cp0"]
    for n in nodes:
        assert n["ok"] and sorted(b["id"] for b in n["backups"]) == sorted([made[n["node"]], "original"]), n

    text = kaudit("backups", str(inv), "--known-hosts", str(known))
    assert text.code == 0, text.out + text.err
    for name, backup in made.items():
        assert f"{name}:\n" in text.out
        [row] = [r for r in text.out.splitlines() if r.startswith(f"  {backup}  ")]
        assert "(taken before: enable auditing with profile minimal)" in row, row

    # One host that cannot be reached: the others are still listed, the exit code says one failed.
    b1.stop()
    partial = kaudit("backups", str(inv), "--output", "json", "--known-hosts", str(known))
    assert partial.code == 2
    by_node = {n["node"]: n for n in partial.json()["nodes"]}
    assert by_node["alpha-cp0"]["ok"] and by_node["alpha-cp1"]["ok"] and not by_node["beta-cp0"]["ok"]
