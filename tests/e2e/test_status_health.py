"""`kaudit status`'s `healthy` and `health`: the rollout's own health gate, per node, for the Ansible collection's
gate (issue 20 item 8). A healthy node, and a node whose API server never gets ready: status says so in the very
words kaudit's rollout refuses its peer with."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import NodeFactory
from tests.fleetfiles import known_hosts_file
from tests.kaudit_cli import kaudit
from tests.node.node import TestNode

MANIFEST = "/etc/kubernetes/manifests/kube-apiserver.yaml"


def _one_key_for_all(nodes: list[TestNode]) -> None:
    pub = Path(str(nodes[0].key_path) + ".pub").read_text()
    for n in nodes[1:]:
        with n.path("/home/.ssh-keys/kadmin").open("a") as f:
            f.write(pub)


def test_status_health_is_the_rollouts_gate(node_factory: NodeFactory, tmp_path: Path) -> None:
    well, sick = node_factory(), node_factory()
    _one_key_for_all([well, sick])
    known = known_hosts_file(tmp_path / "known_hosts", [well, sick])
    sick.configure(never_ready=True, crash_backoff=0.1)
    pid = sick.current_instance()["pid"]  # type: ignore[index]
    sick.run(f"kill -9 {pid}")
    sick.wait_for(lambda: (i := sick.current_instance()) is not None and i["pid"] != pid, 20, what="a restart")
    targets = [well.target(), sick.target()]
    conn = ["-i", str(well.key_path), "--known-hosts", str(known)]

    status = kaudit("status", *targets, *conn, "--output", "json", timeout=120)
    by_node = {n["node"]: n for n in status.json()["nodes"]}
    ok, bad = by_node[well.target()], by_node[sick.target()]
    assert ok["healthy"] is True and ok["health"] is None, ok
    assert bad["ok"] is True and bad["healthy"] is False, bad
    assert bad["health"] == f"{bad['readyz']['url']} answers 500", bad

    # kaudit's rollout refuses the healthy node with the same reason status gives for its sick peer.
    before = well.path(MANIFEST).read_bytes()
    run = kaudit("enable", *targets, *conn, "--profile", "minimal", "--yes", "--output", "json", "--timeout", "5",
                 timeout=120)
    first = run.json()["nodes"][0]
    assert first["action"] == "not-changed", first
    assert first["message"] == f"not changed: {sick.target()} is not healthy ({bad['health']})", first
    assert well.path(MANIFEST).read_bytes() == before


def test_a_node_that_cannot_be_read_is_not_healthy(tmp_path: Path) -> None:
    run = kaudit("status", "kadmin@127.0.0.1:1", "--known-hosts", str(tmp_path / "kh"), "--output", "json", timeout=60)
    [node] = run.json()["nodes"]
    assert node["ok"] is False and node["healthy"] is False
    assert node["health"] == f"cannot be read: {node['error']}"
