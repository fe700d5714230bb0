"""kube://CONTEXT on test nodes (issue 15 item 7): the `kubectl` stand-in lists the control-plane nodes by the
addresses the API would report, and kaudit reaches each one through the user's ~/.ssh/config exactly as if
the address had been typed: status, enable, the inventory `kaudit inventory` prints, disable; an HA context
rolls out one node at a time as one cluster."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import NodeFactory
from tests.kaudit_cli import Run, kaudit
from tests.node.node import TestNode
from tests.standins import kube_node, kubectl_calls, kubectl_env

MANIFEST = "/etc/kubernetes/manifests/kube-apiserver.yaml"
FAST = ("--yes", "--output", "json", "--timeout", "15", "--guard-grace", "5")


def ssh_config_home(tmp_path: Path, hosts: dict[str, TestNode]) -> dict[str, str]:
    """HOME with a ~/.ssh/config giving each name (an address or a host name) its node's port, user, key and
    known_hosts: what an operator's ssh_config does for the addresses the API reports."""
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    blocks = [f"Host {name}\n  HostName {n.host}\n  Port {n.ssh_port}\n  User kadmin\n  IdentityFile {n.key_path}\n"
              f"  UserKnownHostsFile {n.known_hosts}\n" for name, n in hosts.items()]
    (home / ".ssh" / "config").write_text("\n".join(blocks))
    return {"HOME": str(home), "SSH_AUTH_SOCK": ""}


def audited(node: TestNode) -> list[dict[str, object]]:
    return [i for i in node.instances() if any(str(a).startswith("--audit-policy-file=") for a in i["argv"])]


def run(env: dict[str, str], *args: str) -> Run:
    return kaudit(*args, env=env, timeout=180)


def test_a_context_reaches_its_node_by_internal_ip_through_ssh_config(node_factory: NodeFactory,
                                                                      tmp_path: Path) -> None:
    node = node_factory()
    original = node.path(MANIFEST).read_bytes()
    env = {**kubectl_env(tmp_path, {"prod": {"nodes": [
        kube_node("cp-1", node.host, "cp-1", external_ip="203.0.113.7"),
        kube_node("worker-1", "127.0.0.2", "worker-1", control_plane=False),  # not selected: nothing listens there
    ]}}), **ssh_config_home(tmp_path, {node.host: node})}

    status = run(env, "status", "kube://prod", "--output", "json")
    assert status.code == 0, status.out + status.err
    assert status.node["node"] == node.host and status.node["ok"]
    assert "Accepted publickey for kadmin" in node.sshd_log()  # the User from ssh_config, not root

    enable = run(env, "enable", "kube://prod", "--profile", "minimal", *FAST)
    assert enable.code == 0, enable.out + enable.err
    assert (enable.node["node"], enable.node["cluster"], enable.node["action"]) == (node.host, "kube://prod",
                                                                                    "enabled")
    assert len(audited(node)) == 1

    # The inventory `kaudit inventory` prints stands for the same node: enabling through it changes nothing.
    inv = run(env, "inventory", "prod")
    assert inv.code == 0, inv.err
    path = tmp_path / "kube.yml"
    path.write_text(inv.out)
    again = run(env, "enable", str(path), "--profile", "minimal", *FAST)
    assert again.code == 0, again.out + again.err
    assert (again.node["node"], again.node["cluster"], again.node["action"]) == ("cp-1", "prod", "unchanged")
    assert len(audited(node)) == 1

    off = run(env, "disable", "kube://prod", *FAST)
    assert off.code == 0, off.out + off.err
    assert node.path(MANIFEST).read_bytes() == original
    assert all(call[:2] == ["--context", "prod"] for call in kubectl_calls(tmp_path))


def test_an_ha_context_is_one_cluster_changed_one_node_at_a_time(node_factory: NodeFactory, tmp_path: Path) -> None:
    a, b = node_factory(), node_factory()
    # Nodes without an InternalIP: their Hostname address, which ssh_config resolves.
    listed = [kube_node("cp-a", None, "cp-a"), kube_node("cp-b", None, "cp-b")]
    env = {**kubectl_env(tmp_path, {"ha": {"nodes": listed}}), **ssh_config_home(tmp_path, {"cp-a": a, "cp-b": b})}
    enable = run(env, "enable", "kube://ha", "--profile", "minimal", *FAST)
    assert enable.code == 0, enable.out + enable.err
    nodes = enable.json()["nodes"]
    assert [(r["node"], r["cluster"], r["action"]) for r in nodes] == [("cp-a", "kube://ha", "enabled"),
                                                                       ("cp-b", "kube://ha", "enabled")]
    [first], [second] = audited(a), audited(b)
    assert first["ready_at"] is not None and second["started_at"] > first["ready_at"]  # type: ignore[operator]
    assert len(kubectl_calls(tmp_path)) == 1  # one kubectl call for the whole rollout
