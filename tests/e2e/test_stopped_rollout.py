"""An HA rollout that stops part-way says so (its own exit status, how to finish or undo it), `status` flags the
odd node, and a person at a terminal is asked once per cluster (issue 24 item 6)."""

from __future__ import annotations

import shlex
from pathlib import Path

from tests.conftest import NodeFactory
from tests.e2e.test_interactive import _run_on_a_terminal
from tests.kaudit_cli import kaudit
from tests.node.node import TestNode

MANIFEST = "/etc/kubernetes/manifests/kube-apiserver.yaml"


def _three(node_factory: NodeFactory) -> tuple[list[TestNode], list[str]]:
    """Three control-plane nodes of one cluster, one key and one known_hosts for all."""
    nodes = [node_factory() for _ in range(3)]
    pub = Path(str(nodes[0].key_path) + ".pub").read_text()
    for n in nodes[1:]:
        with n.path("/home/.ssh-keys/kadmin").open("a") as f:
            f.write(pub)
    known = nodes[0].known_hosts.parent / "known_hosts.all"
    known.write_text("".join(n.known_hosts.read_text() for n in nodes))
    return nodes, ["-i", str(nodes[0].key_path), "--known-hosts", str(known)]


def test_a_rollout_stopped_part_way_says_how_to_finish_or_undo_it(node_factory: NodeFactory) -> None:
    nodes, conn = _three(node_factory)
    targets = [n.target() for n in nodes]
    originals = [n.path(MANIFEST).read_bytes() for n in nodes]
    nodes[1].configure(fail_next_start=True, crash_backoff=5)  # the second node's new API server fails
    run = kaudit("enable", *targets, "--profile", "minimal", "--yes", "--timeout", "3", "--guard-grace", "3",
                 *conn, timeout=180)
    assert run.code == 4, run.out + run.err
    assert f"{targets[0]}: ok:" in run.out
    assert f"{targets[1]}: FAILED (restored), rollout stopped:" in run.out
    assert f"{targets[2]}: not changed, rollout stopped:" in run.out
    assert f"ROLLOUT STOPPED at {targets[1]}" in run.out and "refused" not in run.out
    finish = next(line for line in run.out.splitlines() if "to finish it:" in line).split("`")[1]
    undo = next(line for line in run.out.splitlines() if "to undo it:" in line).split("`")[1]
    assert shlex.split(finish)[:4] == ["kaudit", "enable", targets[1], targets[2]], finish
    assert "--profile minimal" in finish
    assert shlex.split(undo)[:3] == ["kaudit", "rollback", targets[0]], undo
    # `status` over the cluster sees it mixed, on the odd node.
    status = kaudit("status", *targets, *conn, "--output", "json")
    assert status.code == 0, status.err
    by_node = {n["node"]: n for n in status.json()["nodes"]}
    assert by_node[targets[0]]["differs_from"] == targets[1:]
    assert any("the nodes of this cluster differ" in p and f"kaudit rollback {targets[0]}" in p
               for p in by_node[targets[0]]["problems"])
    text = kaudit("status", *targets, *conn)
    assert "problem: the nodes of this cluster differ" in text.out
    # The printed undo command, run as printed, makes the cluster one again.
    undone = kaudit(*shlex.split(undo)[1:], "--yes", "--timeout", "10", timeout=120)
    assert undone.code == 0, undone.out + undone.err
    assert [n.path(MANIFEST).read_bytes() for n in nodes] == originals
    again = kaudit("status", *targets, *conn, "--output", "json")
    assert all(n["differs_from"] == [] for n in again.json()["nodes"])


def test_one_question_per_cluster_with_the_diff_once(node_factory: NodeFactory) -> None:
    nodes, conn = _three(node_factory)
    targets = [n.target() for n in nodes]
    args = ["enable", *targets, *conn, "--profile", "minimal", "--timeout", "10"]
    code, screen = _run_on_a_terminal(args, b"y\n", timeout=120)
    assert code == 0, screen
    assert screen.count("[y/N]") == 1, screen
    assert f"Apply this change to {', '.join(targets)}?" in screen
    assert f"the change on every node (as on {targets[0]}):" in screen
    assert screen.count("+++ b/etc/kubernetes/manifests/kube-apiserver.yaml") == 1, screen
    assert all(b"--audit-policy-file" in n.path(MANIFEST).read_bytes() for n in nodes)


def test_no_to_the_cluster_question_changes_no_node(node_factory: NodeFactory) -> None:
    nodes, conn = _three(node_factory)
    originals = [n.path(MANIFEST).read_bytes() for n in nodes]
    code, screen = _run_on_a_terminal(["enable", *[n.target() for n in nodes], *conn, "--profile", "minimal"],
                                      b"n\n", timeout=120)
    assert code == 2, screen
    assert screen.count("[y/N]") == 1 and "rollout stopped" not in screen
    assert [n.path(MANIFEST).read_bytes() for n in nodes] == originals


def test_ctrl_c_at_the_cluster_question_changes_nothing_and_prints_no_traceback(node_factory: NodeFactory) -> None:
    nodes, conn = _three(node_factory)
    originals = [n.path(MANIFEST).read_bytes() for n in nodes]
    code, screen = _run_on_a_terminal(["enable", *[n.target() for n in nodes], *conn, "--profile", "minimal"],
                                      b"\x03", timeout=120)
    assert code == 130, screen
    assert "Traceback" not in screen and "before anything changed" in screen, screen
    assert [n.path(MANIFEST).read_bytes() for n in nodes] == originals
